"""The one place data files are opened: format detection, file checks, text decoding, and the
record readers that remember line numbers.

Two ways in share everything here: `read_records` (stdlib parsers, every error names the file
and line; the tasks read their splits with it; its line reader `iter_lines` can also hand bad
lines back instead of raising, which is how `predict --input` turns them into rejects) and
`tunewise.data.load.load_source` (the same formats through `datasets`' Arrow builders,
memory-mapped, for `data prepare`). Both detect the format with `detect_format`, check the path
with `require_file`, parse JSON lists with `json_list` and name undecodable bytes by line with
`bad_utf8_lines`.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tunewise.errors import DataError

# Every format tunewise reads, and the extensions that name them.
ALL_FORMATS = (
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
EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".txt": "text",
    ".conll": "conll",
}
FORMATS = ("jsonl", "json", "csv", "tsv")  # what `read_records` reads (records with fields)

# A CSV cell may be a whole document; the stdlib's default limit is 128 KiB.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def require_file(path: Path, what: str = "Data file") -> None:
    """A readable file, or a DataError that says what the path is instead."""
    if path.is_dir():
        raise DataError(f"{what} '{path}' is a directory; give the file inside it.")
    if not path.is_file():
        raise DataError(f"{what} '{path}' does not exist (looked from {Path.cwd()}).")


def detect_format(
    path: Path, declared: str | None = "auto", formats: tuple[str, ...] = FORMATS
) -> str:
    """The declared format, else the one `path`'s extension names among `formats`."""
    if declared and declared != "auto":
        if declared not in ALL_FORMATS:
            raise DataError(f"Unknown data format '{declared}'; known: {', '.join(ALL_FORMATS)}.")
        return declared
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None or fmt not in formats:
        raise DataError(
            f"Cannot tell the format of '{path}' from its extension; set data.format "
            f"(one of {', '.join(formats)})."
        )
    return fmt


def bad_utf8_lines(path: Path, limit: int = 1000) -> dict[int, str]:
    """{line number: why} for lines that are not UTF-8 ({} for a clean file: checked in
    1 MiB blocks first, line by line only when that fails)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        return {}
    except UnicodeDecodeError:
        pass
    bad: dict[int, str] = {}
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad[number] = (
                    f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                )
                if len(bad) >= limit:
                    break
    return bad


def utf8_error(path: Path) -> DataError:
    bad = bad_utf8_lines(path, limit=5)
    shown = "; ".join(f"line {n}: {why}" for n, why in bad.items()) or "an incomplete character"
    return DataError(
        f"{path}: {shown}. Re-save the file as UTF-8, or (data prepare) set on_error: skip to "
        "set those lines aside."
    )


def json_list(path: Path) -> list[Any]:
    """A JSON list of records (or {"data": [...]})."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON at line {exc.lineno} ({exc.msg}).") from None
    except UnicodeDecodeError:
        raise utf8_error(path) from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of records (or {{'data': [...]}}).")
    return data


def read_records(path: str | Path, fmt: str | None = "auto") -> list[tuple[int, dict[str, Any]]]:
    """All records of a file as (line number or record index, record) pairs."""
    path = Path(path)
    require_file(path)
    fmt = detect_format(path, fmt)
    if fmt not in FORMATS:  # task formats (conll, squad, ...) are read by their task
        raise DataError(
            f"{path}: data.format '{fmt}' is not a record format; this task reads "
            f"{', '.join(FORMATS)} (conll and squad belong to token_classification and "
            "extractive_qa)."
        )
    try:
        if fmt == "json":
            records = list(_json(path))
        else:
            items = iter_lines(path, fmt, on_error="raise")
            records = [(item.line, item.record) for item in items if item.record is not None]
    except UnicodeDecodeError:
        raise utf8_error(path) from None
    except csv.Error as exc:
        raise DataError(f"{path}: not valid {fmt.upper()} ({exc}).") from None
    if not records:
        raise DataError(f"Data file '{path}' holds no records.")
    return records


@dataclass
class Item:
    """One record of a line format: its line number, the record, or why the line is none."""

    line: int
    record: dict[str, Any] | None = None
    reason: str | None = None
    raw: str = ""


def iter_lines(
    path: Path, fmt: str, on_error: Literal["raise", "yield"] = "raise"
) -> Iterator[Item]:
    """The records of a JSONL, CSV or TSV file one at a time, with their file line numbers
    (hand-written over the stdlib parsers: `datasets`' loaders do not keep line numbers).

    on_error "raise": a bad line is a DataError naming the file and line, and bytes that are not
    UTF-8 raise UnicodeDecodeError. "yield": a bad line is an Item with the reason and the raw
    line, and undecodable bytes read as U+FFFD, so a long job goes on past them.
    """
    keep_going = on_error == "yield"
    errors = "replace" if keep_going else "strict"
    if fmt == "jsonl":
        yield from _jsonl(path, keep_going, errors)
    elif fmt in ("csv", "tsv"):
        yield from _delimited(path, "\t" if fmt == "tsv" else ",", keep_going, errors)
    else:
        raise ValueError(f"iter_lines reads jsonl, csv or tsv, not {fmt!r}")


def _jsonl(path: Path, keep_going: bool, errors: str) -> Iterator[Item]:
    with path.open(encoding="utf-8-sig", errors=errors) as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                reason = f"not valid JSON ({exc.msg})"
            else:
                if isinstance(record, dict):
                    yield Item(line_no, record)
                    continue
                # An error shows the value; a yielded reason its type (the raw line goes with it).
                got = type(record).__name__ if keep_going else repr(record)
                reason = f"expected a JSON object, got {got}"
            if not keep_going:
                raise DataError(f"{path}, line {line_no}: {reason}.")
            yield Item(line_no, reason=reason, raw=line.rstrip("\n"))


def _json(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for index, record in enumerate(json_list(path)):
        if not isinstance(record, dict):
            raise DataError(f"{path}, record {index}: expected an object, got {record!r}.")
        yield index, record


def _delimited(path: Path, delimiter: str, keep_going: bool, errors: str) -> Iterator[Item]:
    # -sig: Excel's byte-order mark
    with path.open(encoding="utf-8-sig", errors=errors, newline="") as fh:
        # TSV files (GLUE style) use quote characters as text, so they are not parsed as quoting.
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        reader = csv.DictReader(fh, delimiter=delimiter, quoting=quoting)
        if not reader.fieldnames:
            return
        for record in reader:
            if None not in record:
                yield Item(reader.line_num, dict(record))
                continue
            reason = f"more fields than the header's {len(reader.fieldnames)}"
            if not keep_going:
                names = ", ".join(reader.fieldnames)
                raise DataError(f"{path}, line {reader.line_num}: {reason} ({names}).")
            yield Item(reader.line_num, reason=reason, raw=str(record[None])[:200])


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
