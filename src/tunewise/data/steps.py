"""One input file through validate → clean → measure → filter → deduplicate.

The rows stay a `datasets.Dataset` (Arrow, memory-mapped when read from disk) and every per-record
step is a batched `map`, in several processes for big inputs. Only small per-record numbers (hash
keys, LSH band hashes, label codes) come into the main process as numpy arrays.
"""

from __future__ import annotations

import atexit
import itertools
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunewise.data import dedup, filters
from tunewise.data.clean import clean_rows
from tunewise.data.load import load_rows, num_proc_for
from tunewise.data.options import PrepareConfig
from tunewise.data.schemas import Schema
from tunewise.data.validate import describe, split_valid, validate


def column(ds: Any, name: str) -> np.ndarray:
    """A whole column as numpy (works on datasets with or without an indices mapping)."""
    if ds._indices is not None:
        ds = ds.flatten_indices()
    return ds.data.column(name).to_numpy(zero_copy_only=False)


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


@dataclass
class Processed:
    """One file after the per-file steps; `rows` has the feature columns used later."""

    path: str
    rows: Any
    counts: dict[str, Any]
    rejected: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[list[dict[str, Any]]] = field(default_factory=list)
    duplicate_examples: list[dict[str, Any]] = field(default_factory=list)
    groups: np.ndarray | None = None


def features(
    rows: Any, schema: Schema, options: PrepareConfig, num_proc: int | None, tokenizer: Any = None
) -> Any:
    """Columns the later steps need: _text, _label, _key, _chars, _tokens, _lang, _bands, _empty."""
    d, f = options.dedup, options.filter
    hasher = dedup.BandHasher(d.threshold, d.num_perm, d.ngram) if d.near else None

    def compute(batch: dict[str, list]) -> dict[str, list]:
        records = [json.loads(r) for r in batch["record"]]
        texts = [schema.text_of(r) for r in records]
        chars, tokens = filters.measure(texts, tokenizer)
        out: dict[str, list] = {
            "_text": texts,
            "_label": [schema.label_key(r) for r in records],
            "_key": np.array([dedup.exact_key(t) for t in texts], dtype=np.uint64),
            "_chars": chars,
            "_tokens": tokens,
            # cleaning can empty a field (a text that was only an emoji): check again
            "_empty": [describe(p) if (p := schema.check(r, schema)) else "" for r in records],
        }
        if f.languages:
            out["_lang"] = filters.language_of(texts)
        if hasher is not None:
            out["_bands"] = hasher.batch(texts)
        return out

    return rows.map(
        compute, batched=True, num_proc=num_proc_for(len(rows), num_proc), desc="measuring"
    )


def process(
    path: str | Path,
    schema: Schema,
    options: PrepareConfig,
    fmt: str | None = "auto",
    tokenizer: Any = None,
) -> Processed:
    n_proc = options.num_proc
    rows = load_rows(path, fmt, n_proc)
    counts: dict[str, Any] = {"n_input": len(rows)}
    valid, rejected = split_valid(validate(rows, schema, path, n_proc), path, options.on_error)
    counts["n_rejected"] = len(rejected)
    cleaned, counts["cleaned"] = clean_rows(valid, schema, options.clean, n_proc)
    rows = features(cleaned, schema, options, n_proc, tokenizer)
    out = Processed(str(path), rows, counts, rejected)

    # records that cleaning emptied, then length / language bounds
    why = np.array(
        [f"empty after cleaning: {w}" if w else "" for w in column(rows, "_empty")], dtype=object
    )
    if filters.active(options.filter):
        langs = column(rows, "_lang") if options.filter.languages else None
        bounds = filters.reasons(
            column(rows, "_chars"), column(rows, "_tokens"), langs, options.filter
        )
        why = np.where(why == "", bounds, why)
    counts["n_emptied"] = int(sum(str(w).startswith("empty after") for w in why))
    counts["n_filtered"] = int(np.sum(why != "")) - counts["n_emptied"]
    out.removed += _removed(rows, why != "", why, "filter", path)
    rows = keep(rows, why == "")

    # duplicates
    d = options.dedup
    labels = column(rows, "_label")
    found = dedup.find_duplicates(
        column(rows, "_key") if d.exact else np.arange(len(rows), dtype=np.uint64),
        labels,
        _bands(rows) if d.near else None,
        lambda idx: _texts(rows, idx),
        d.threshold,
        d.ngram,
    )
    counts["n_exact_duplicates"] = int(found.exact.sum())
    counts["n_near_duplicates"] = int(found.near.sum())
    counts["n_candidate_pairs"] = found.candidate_pairs
    counts["n_conflicting_groups"] = len(found.conflicts)
    out.conflicts = [_describe_group(rows, g, path) for g in found.conflicts[:20]]
    out.duplicate_examples = _duplicate_examples(rows, found, path)
    drop = np.zeros(len(rows), dtype=bool)
    if d.remove:
        drop |= found.exact | found.near
    if d.conflicts == "drop" and found.conflicts:
        drop[np.concatenate([np.asarray(g) for g in found.conflicts])] = True
    counts["n_conflicts_dropped"] = int(drop.sum() - (found.exact | found.near)[drop].sum())
    lines = column(rows, "line")
    reason = np.full(len(rows), "", dtype=object)
    for i in np.flatnonzero(drop).tolist():
        kind = "exact duplicate" if found.exact[i] else "near duplicate" if found.near[i] else ""
        origin = f"{_where(path)}{lines[found.group[i]]}"
        reason[i] = f"{kind} of {origin}" if kind else f"conflicting labels with {origin}"
    out.removed += _removed(rows, drop, reason, "dedup", path)
    out.groups = found.group[~drop]
    out.rows = keep(rows, ~drop)
    # group ids must index the kept rows: renumber by position of each group's first kept member
    _, out.groups = np.unique(out.groups, return_inverse=True)
    counts["n_output"] = len(out.rows)
    return out


def _where(path: str | Path) -> str:
    return "record " if str(path).lower().endswith(".json") else "line "


def _bands(rows: Any) -> np.ndarray:
    """The packed LSH band hashes as an (n, bands) uint64 matrix."""
    table = rows.data if rows._indices is None else rows.flatten_indices().data
    packed = table.column("_bands").combine_chunks()
    if not len(packed):
        return np.zeros((0, 1), dtype=np.uint64)
    width = len(packed[0].as_py()) // 8
    # one buffer copy: the binary column's data, cut at its offsets (all the same width)
    return dedup.unpack_bands(packed.to_pylist(), width)


def _texts(rows: Any, idx: np.ndarray) -> list[str]:
    import pyarrow as pa

    table = rows.data if rows._indices is None else rows.flatten_indices().data
    return table.column("_text").take(pa.array(np.asarray(idx, dtype=np.int64))).to_pylist()


def _removed(rows: Any, mask: np.ndarray, why: np.ndarray, step: str, path: Any) -> list[dict]:
    idx = np.flatnonzero(mask)
    if not len(idx):
        return []
    lines = column(rows, "line")[idx]
    texts = _texts(rows, idx)
    return [
        {"line": int(line), "step": step, "reason": str(why[i]), "text": text}
        for i, line, text in zip(idx.tolist(), lines.tolist(), texts, strict=True)
    ]


def _describe_group(rows: Any, members: list[int], path: Any) -> list[dict[str, Any]]:
    lines = column(rows, "line")
    labels = column(rows, "_label")
    texts = _texts(rows, np.asarray(members))
    return [
        {"line": int(lines[m]), "label": str(labels[m]), "text": t}
        for m, t in zip(members, texts, strict=True)
    ]


def _duplicate_examples(rows: Any, found: dedup.Duplicates, path: Any, n: int = 10) -> list[dict]:
    out = []
    lines = column(rows, "line")
    for kind, mask in (("exact", found.exact), ("near", found.near)):
        idx = np.flatnonzero(mask)[:n]
        if not len(idx):
            continue
        originals = found.group[idx]
        for (i, o), (t, u) in zip(
            zip(idx.tolist(), originals.tolist(), strict=True),
            zip(_texts(rows, idx), _texts(rows, originals), strict=True),
            strict=True,
        ):
            out.append(
                {
                    "kind": kind,
                    "line": int(lines[i]),
                    "text": t,
                    "of_line": int(lines[o]),
                    "of_text": u,
                }
            )
    return out
