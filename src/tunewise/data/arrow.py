"""Arrow-level helpers for the pipeline: whole columns as numpy without Python objects, and
row filtering into new memory-mapped files."""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def column(ds: Any, name: str) -> np.ndarray:
    """A whole column as numpy (works on datasets with or without an indices mapping)."""
    if ds._indices is not None:
        ds = ds.flatten_indices()
    return ds.data.column(name).to_numpy(zero_copy_only=False)


def table(ds: Any) -> Any:
    """The Arrow table behind a dataset, with any indices mapping applied."""
    return ds.data if ds._indices is None else ds.flatten_indices().data


def equals(ds: Any, name: str, value: str) -> np.ndarray:
    """Boolean mask of a string column == value, computed in Arrow (no Python strings)."""
    import pyarrow.compute as pc

    return pc.equal(table(ds).column(name), value).to_numpy(zero_copy_only=False)


def codes(ds: Any, name: str) -> np.ndarray:
    """Integer codes of a string column (equal strings, equal codes), computed in Arrow."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(table(ds).column(name)).combine_chunks()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def keep(ds: Any, mask: np.ndarray) -> Any:
    """Rows where mask is true, as a memory-mapped dataset without an indices mapping.

    Filtered batch by batch into a new Arrow file: `select(...).flatten_indices()` would gather
    one Arrow slice per kept run of rows and cast each separately (seconds per 100k rows).
    """
    import pyarrow as pa
    from datasets import Dataset

    mask = np.asarray(mask, dtype=bool)
    if mask.all():
        return ds
    table = ds.data if ds._indices is None else ds.flatten_indices().data
    path = _workdir() / f"keep-{next(_counter)}.arrow"
    start = 0
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=65_536):
            part = mask[start : start + batch.num_rows]
            start += batch.num_rows
            writer.write_batch(batch.filter(pa.array(part)))
    return Dataset.from_file(str(path), info=ds.info.copy())


_counter = itertools.count()


def _workdir() -> Path:
    """A per-process scratch directory for intermediate Arrow files, removed at exit."""
    global _WORKDIR
    if _WORKDIR is None:
        _WORKDIR = Path(tempfile.mkdtemp(prefix="tunewise-data-"))
        atexit.register(shutil.rmtree, _WORKDIR, True)
    return _WORKDIR


_WORKDIR: Path | None = None


def band_matrix(rows: Any) -> np.ndarray:
    """The packed LSH band hashes as an (n, bands) uint64 matrix, read from Arrow's buffers."""
    column = table(rows).column("_bands").combine_chunks()
    if not len(column):
        return np.zeros((0, 1), dtype=np.uint64)
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset :]
    width = int(offsets[1] - offsets[0]) // 8
    data = np.frombuffer(column.buffers()[2], dtype=np.uint8)
    start = int(offsets[0])
    flat = data[start : start + len(column) * width * 8].view("<u8")
    return flat.reshape(len(column), width)


def texts_at(rows: Any, idx: np.ndarray) -> list[str]:
    return take(rows, "_text", idx)


def take(rows: Any, name: str, idx: np.ndarray) -> list[Any]:
    import pyarrow as pa

    table = rows.data if rows._indices is None else rows.flatten_indices().data
    return table.column(name).take(pa.array(np.asarray(idx, dtype=np.int64))).to_pylist()
