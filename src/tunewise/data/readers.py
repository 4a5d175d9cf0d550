"""Read JSONL / JSON / CSV / TSV files into records that remember their line number.

The stdlib parsers are used on purpose: they let every error name the file and line, which
`datasets`' Arrow loaders do not. Records go into a `datasets.Dataset` right after validation.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunewise.errors import DataError

FORMATS = ("jsonl", "json", "csv", "tsv")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv"}


def detect_format(path: Path, declared: str | None = "auto") -> str:
    if declared and declared != "auto":
        return declared
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"Cannot tell the format of '{path}' from its extension; set data.format "
            f"(one of {', '.join(FORMATS)})."
        )
    return fmt


def read_records(path: str | Path, fmt: str | None = "auto") -> list[tuple[int, dict[str, Any]]]:
    """All records of a file as (line number or record index, record) pairs."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Data file '{path}' does not exist (looked from {Path.cwd()}).")
    fmt = detect_format(path, fmt)
    if fmt not in FORMATS:  # task formats (conll, squad, ...) are read by their task
        raise DataError(
            f"{path}: data.format '{fmt}' is not a record format; this task reads "
            f"{', '.join(FORMATS)} (conll and squad belong to token_classification and "
            "extractive_qa)."
        )
    reader = {"jsonl": _jsonl, "json": _json, "csv": _delimited, "tsv": _delimited}[fmt]
    try:
        records = list(reader(path, "\t" if fmt == "tsv" else ","))
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded); re-save it as UTF-8."
        ) from None
    if not records:
        raise DataError(f"Data file '{path}' holds no records.")
    return records


def _jsonl(path: Path, _: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8-sig") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {line_no}: not valid JSON ({exc.msg}).") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}, line {line_no}: expected a JSON object, got {record!r}.")
            yield line_no, record


def _json(path: Path, _: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON at line {exc.lineno} ({exc.msg}).") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of records (or {{'data': [...]}}).")
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            raise DataError(f"{path}, record {index}: expected an object, got {record!r}.")
        yield index, record


def _delimited(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:  # -sig: Excel's byte-order mark
        # TSV files (GLUE style) use quote characters as text, so they are not parsed as quoting.
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        reader = csv.DictReader(fh, delimiter=delimiter, quoting=quoting)
        if not reader.fieldnames:
            return
        for record in reader:
            if None in record:
                raise DataError(
                    f"{path}, line {reader.line_num}: more fields than the header's "
                    f"{len(reader.fieldnames)} ({', '.join(reader.fieldnames)})."
                )
            yield reader.line_num, record


def where(path: str | Path, number: int) -> str:
    """How an error names a record: its line in line formats, its index in a JSON list."""
    return f"record {number}" if detect_format(Path(path), "auto") == "json" else f"line {number}"


def fingerprint(path: str | Path) -> str:
    """sha256 of the file's bytes: identifies exactly which data a run saw."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
