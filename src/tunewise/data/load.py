"""Load any supported file as a `datasets.Dataset` of (line, record) rows.

Files are read by `datasets`' own builders (text, csv, parquet), so they land in Arrow files on
disk that are memory-mapped: a file larger than memory streams through the pipeline. Each row
keeps the record as a JSON string (`record`), which survives mixed value types that a typed
Arrow column would reject, and the `line` it came from so every message can name it. A line that
cannot be parsed becomes a row with an `error`, for validation to reject or fail on.

Formats with their own reader modules (CoNLL, SQuAD, Alpaca, ShareGPT) are dispatched to them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunewise.errors import DataError

FORMATS = (
    "jsonl",
    "json",
    "csv",
    "tsv",
    "parquet",
    "text",
    "conll",
    "squad",
    "alpaca",
    "sharegpt",
)
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".txt": "text",
    ".conll": "conll",
}
# Rows above this go through `map` in several processes; below it, process start-up dominates.
PARALLEL_ROWS = 50_000


def detect_format(path: Path, declared: str | None = "auto") -> str:
    if declared and declared != "auto":
        if declared not in FORMATS:
            raise DataError(f"Unknown data format '{declared}'; known: {', '.join(FORMATS)}.")
        return declared
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"Cannot tell the format of '{path}' from its extension; give the format "
            f"(one of {', '.join(FORMATS)})."
        )
    return fmt


def num_proc_for(n_rows: int, requested: int | None = None) -> int | None:
    """Worker processes for `datasets.map`: all cores for big inputs, none for small ones."""
    import os

    if requested:
        return requested if requested > 1 else None
    return (os.cpu_count() or 1) if n_rows >= PARALLEL_ROWS else None


def load_rows(path: str | Path, fmt: str | None = "auto", num_proc: int | None = None) -> Any:
    """The file as a Dataset with columns `line` (int), `record` (JSON text), `error` (str)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Data file '{path}' does not exist (looked from {Path.cwd()}).")
    fmt = detect_format(path, fmt)
    if fmt in ("jsonl", "text"):
        rows = _lines(path, fmt, num_proc)
    elif fmt in ("csv", "tsv"):
        rows = _delimited(path, fmt, num_proc)
    elif fmt == "parquet":
        rows = _parquet(path, num_proc)
    elif fmt == "json":
        rows = _json(path)
    else:
        rows = _external(path, fmt)
    if len(rows) == 0:
        raise DataError(f"Data file '{path}' holds no records.")
    return rows


def _load(builder: str, path: Path, **kwargs: Any) -> Any:
    from datasets import load_dataset

    try:
        return load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as exc:  # the builders raise many types (pandas, pyarrow, UnicodeError)
        raise DataError(f"{path}: cannot be read as {builder} ({exc}).") from None


def _lines(path: Path, fmt: str, num_proc: int | None) -> Any:
    ds = _load("text", path, encoding="utf-8-sig", encoding_errors="strict")

    def parse(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        out: dict[str, list] = {"line": [], "record": [], "error": []}
        for i, raw in zip(indices, batch["text"], strict=True):
            out["line"].append(i + 1)
            if fmt == "text":
                out["record"].append(
                    json.dumps({"text": raw}, ensure_ascii=False) if raw.strip() else ""
                )
                out["error"].append("")
                continue
            out["record"].append(raw)
            out["error"].append(_json_problem(raw))
        return out

    rows = ds.map(
        parse,
        batched=True,
        with_indices=True,
        remove_columns=ds.column_names,
        num_proc=num_proc_for(len(ds), num_proc),
        desc="parsing lines",
    )
    # Blank lines separate nothing and are not records (the stdlib reader agrees). Rare, so the
    # indices mapping `select` leaves has few gaps; flattening it is cheap.
    import pyarrow.compute as pc

    blank = pc.equal(pc.utf8_trim_whitespace(rows.data.column("record")), "").to_numpy(
        zero_copy_only=False
    )
    if not blank.any():
        return rows
    return rows.select([i for i, b in enumerate(blank.tolist()) if not b]).flatten_indices()


def _json_problem(raw: str) -> str:
    if not raw.strip():
        return ""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(value, dict):
        return f"expected a JSON object, got {type(value).__name__} {_short(value)}"
    return ""


def _delimited(path: Path, fmt: str, num_proc: int | None) -> Any:
    # Everything as text (labels like "007" survive), empty cells as "" not NaN. TSV files (GLUE
    # style) use quote characters as text, so they are not parsed as quoting (csv.QUOTE_NONE).
    import csv

    from datasets import Features, Value

    extra = {"sep": "\t", "quoting": 3} if fmt == "tsv" else {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh, delimiter="\t" if fmt == "tsv" else ","), [])
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte {exc.start}); re-save it as UTF-8."
        ) from None
    if not header:
        raise DataError(f"{path}: no header row (the first line names the columns).")
    features = Features({name: Value("string") for name in header})
    ds = _load("csv", path, features=features, keep_default_na=False, encoding="utf-8-sig", **extra)
    # The header is line 1; a quoted field spanning lines would shift later numbers (CSV only).
    return _to_rows(ds, offset=2, num_proc=num_proc)


def _parquet(path: Path, num_proc: int | None) -> Any:
    return _to_rows(_load("parquet", path), offset=0, num_proc=num_proc)


def _to_rows(ds: Any, offset: int, num_proc: int | None) -> Any:
    def encode(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        names = list(batch)
        records = [
            dict(zip(names, values, strict=True)) for values in zip(*batch.values(), strict=True)
        ]
        return {
            "line": [i + offset for i in indices],
            "record": [json.dumps(r, ensure_ascii=False, default=str) for r in records],
            "error": [""] * len(records),
        }

    return ds.map(
        encode,
        batched=True,
        with_indices=True,
        remove_columns=ds.column_names,
        num_proc=num_proc_for(len(ds), num_proc),
        desc="encoding rows",
    )


def _json(path: Path) -> Any:
    """A JSON list of records (or {"data": [...]}); indices are 0-based record numbers."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON at line {exc.lineno} ({exc.msg}).") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}).") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of records (or {{'data': [...]}}).")
    return _from_records(
        list(range(len(data))),
        data,
        ["" if isinstance(r, dict) else f"expected an object, got {_short(r)}" for r in data],
    )


def _external(path: Path, fmt: str) -> Any:
    """CoNLL / SQuAD / chat formats through their own reader modules (imported lazily)."""
    import importlib

    module_name, functions = {
        "conll": ("tunewise.data.conll", ("read_conll", "read_records")),
        "squad": ("tunewise.data.squad", ("read_qa", "read_squad_json")),
        "alpaca": ("tunewise.data.chat", ("read_alpaca", "read_chat", "read_records")),
        "sharegpt": ("tunewise.data.chat", ("read_sharegpt", "read_chat", "read_records")),
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
        where = rec.pop("where", None) or rec.pop("line", None)
        lines.append(where if isinstance(where, int) else index)
        values.append(rec)
    return _from_records(lines, values, [""] * len(values))


def _from_records(lines: list[int], records: list[Any], errors: list[str]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "line": lines,
            "record": [json.dumps(r, ensure_ascii=False, default=str) for r in records],
            "error": errors,
        }
    )


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
