"""Load any supported file with the `datasets` builder for its format.

Files are read by `datasets`' own builders (text, csv, parquet), so they land in Arrow files on
disk that are memory-mapped: a file larger than memory streams through the pipeline. JSONL is
read as lines and parsed record by record in the pipeline's first `map`, so a malformed line
becomes a rejected record with its line number instead of failing the whole file.

Formats with their own reader modules (CoNLL, SQuAD, Alpaca, ShareGPT) are dispatched to them.
Format detection, file checks, JSON lists and UTF-8 reporting are `tunewise.data.readers`'; lines
that are not UTF-8 become rejected records with their line number (`Source.bad_lines`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunewise.data import readers
from tunewise.data.readers import ALL_FORMATS, json_list, require_file, utf8_error
from tunewise.errors import DataError

FORMATS = ALL_FORMATS
# Rows above this go through `map` in several processes; below it, process start-up dominates.
PARALLEL_ROWS = 50_000


def detect_format(path: Path, declared: str | None = "auto") -> str:
    """`readers.detect_format` over every format this loader reads."""
    return readers.detect_format(path, declared, ALL_FORMATS)


def num_proc_for(n_rows: int, requested: int | None = None) -> int | None:
    """Worker processes for `datasets.map`: all cores for big inputs, none for small ones."""
    import os

    if requested:
        return requested if requested > 1 else None
    return (os.cpu_count() or 1) if n_rows >= PARALLEL_ROWS else None


@dataclass
class Source:
    """A loaded file: the Arrow dataset as its builder made it, and how rows map to records.

    kind "lines": one JSON object per row of a `text` column (JSONL); "text": one text per row;
    "columns": one record per row (CSV, TSV, Parquet); "records": `line` and `record` (JSON)
    columns (JSON lists, formats with their own readers). Line of row i: i + offset.
    """

    path: Path
    ds: Any
    kind: str
    offset: int = 0
    bad_lines: dict[int, str] = field(default_factory=dict)  # line → why it was not decodable

    def __len__(self) -> int:
        return len(self.ds)

    def parse(self, batch: dict[str, list], indices: list[int]) -> list[tuple[int, Any, str]]:
        """(line, record dict or raw text, problem) per row; problem "blank" for empty lines."""
        if self.kind == "records":
            return list(zip(batch["line"], batch["record"], [""] * len(indices), strict=True))
        lines = [i + self.offset for i in indices]
        bad = self.bad_lines
        if self.kind == "columns":
            names = list(batch)
            rows = zip(*batch.values(), strict=True)
            return [
                (ln, dict(zip(names, r, strict=True)), bad.get(ln, ""))
                for ln, r in zip(lines, rows, strict=True)
            ]
        out = []
        for line, raw in zip(lines, batch["text"], strict=True):
            if line in bad:
                out.append((line, raw, bad[line]))
            elif not raw.strip():
                out.append((line, raw, "blank"))  # separates nothing; not a record
            elif self.kind == "text":
                out.append((line, {"text": raw}, ""))
            else:
                out.append((line, raw, ""))
        return out


def load_source(path: str | Path, fmt: str | None = "auto") -> Source:
    """Read the file with the `datasets` builder for its format (Arrow, memory-mapped)."""
    path = Path(path)
    require_file(path)
    fmt = detect_format(path, fmt)
    if fmt in ("jsonl", "text"):
        # Undecodable lines are read with replacement characters and flagged by line number,
        # so `on_error: skip` sets them aside instead of failing the whole file.
        bad = readers.bad_utf8_lines(path)
        errors = "replace" if bad else "strict"
        ds = _load("text", path, encoding="utf-8-sig", encoding_errors=errors)
        source = Source(path, ds, "lines" if fmt == "jsonl" else "text", 1, bad)
    elif fmt in ("csv", "tsv"):
        bad = readers.bad_utf8_lines(path)
        ds = _delimited(path, fmt, "replace" if bad else "strict")
        source = Source(path, ds, "columns", 2, bad)  # line 1 is the header
    elif fmt == "parquet":
        source = Source(path, _load("parquet", path), "columns", 0)
    elif fmt == "json":
        source = Source(path, _json(path), "records")
    else:
        source = Source(path, _external(path, fmt), "records")
    if len(source) == 0:
        raise DataError(f"Data file '{path}' holds no records.")
    return source


def _load(builder: str, path: Path, **kwargs: Any) -> Any:
    from datasets import load_dataset

    try:
        return load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as exc:  # the builders raise many types (pandas, pyarrow, UnicodeError)
        raise DataError(f"{path}: cannot be read as {builder} ({exc}).") from None


def parse_record(raw: Any) -> tuple[dict[str, Any] | None, str]:
    """(record, '') for a JSON object (or a dict), else (None, what is wrong)."""
    if isinstance(raw, dict):
        return raw, ""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__} {_short(value)}"
    return value, ""


def _delimited(path: Path, fmt: str, errors: str = "strict") -> Any:
    # Everything as text (labels like "007" survive), empty cells as "" not NaN. TSV files (GLUE
    # style) use quote characters as text, so they are not parsed as quoting (csv.QUOTE_NONE).
    import csv

    from datasets import Features, Value

    extra = {"sep": "\t", "quoting": 3} if fmt == "tsv" else {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh, delimiter="\t" if fmt == "tsv" else ","), [])
    except UnicodeDecodeError:
        raise utf8_error(path) from None
    except csv.Error as exc:
        raise DataError(f"{path}: the header row is not valid {fmt.upper()} ({exc}).") from None
    if not header:
        raise DataError(f"{path}: no header row (the first line names the columns).")
    features = Features({name: Value("string") for name in header})
    return _load(
        "csv",
        path,
        features=features,
        keep_default_na=False,
        encoding="utf-8-sig",
        encoding_errors=errors,
        **extra,
    )


def _json(path: Path) -> Any:
    """A JSON list of records (or {"data": [...]}); indices are 0-based record numbers."""
    data = json_list(path)
    return _from_records(list(range(len(data))), data)


def _external(path: Path, fmt: str) -> Any:
    """CoNLL / SQuAD / chat formats through their own reader modules (imported lazily)."""
    import importlib

    module_name, functions = {
        "conll": ("tunewise.tasks.token_classification.conll", ("read_conll",)),
        "squad": ("tunewise.tasks.extractive_qa.squad", ("read_qa",)),
        "alpaca": ("tunewise.tasks.generation.readers", ("read_instructions",)),
        "sharegpt": ("tunewise.tasks.generation.readers", ("read_chats",)),
    }[fmt]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise DataError(f"{path}: the {fmt} reader ({module_name}) is not available.") from None
    reader = next((getattr(module, f) for f in functions if hasattr(module, f)), None)
    if reader is None:
        raise DataError(f"{path}: {module_name} has no reader for {fmt}.")
    records = list(reader(path))
    lines, values = [], []
    for index, rec in enumerate(records):
        rec = dict(rec)
        line = rec.pop("line", None)
        rec.pop("where", None)
        lines.append(line if isinstance(line, int) else index)
        values.append(rec)
    return _from_records(lines, values)


def _from_records(lines: list[int], records: list[Any]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "line": lines,
            "record": [json.dumps(r, ensure_ascii=False, default=str) for r in records],
        }
    )


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
