"""Reading inputs record by record and finding where an interrupted output stopped, for
`batch_predict`. The line formats are read by `tunewise.data.readers.iter_lines`, which keeps
each record's line number and, here, turns a bad line into a reject instead of an error."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from tunewise.data.readers import Item, detect_format, iter_lines, read_records
from tunewise.errors import DataError


# -- reading ---------------------------------------------------------------------------------------
def iter_items(path: Path, fmt: str | None = "auto") -> Iterator[Item]:
    """Records of a JSONL / CSV / TSV file one at a time (a JSON list is read whole)."""
    if not path.is_file():
        raise DataError(f"Input file '{path}' does not exist (looked from {Path.cwd()}).")
    fmt = detect_format(path, fmt)
    if fmt in ("jsonl", "csv", "tsv"):
        yield from iter_lines(path, fmt, on_error="yield")  # bad lines become rejects
    elif fmt == "json":
        for index, record in read_records(path, "json"):
            yield Item(index, record)
    else:
        raise DataError(f"{path}: predict reads JSONL, CSV, TSV or JSON files, not '{fmt}'.")


def count_records(path: Path) -> int | None:
    """Roughly how many records a file holds (newlines, less a CSV header), for the ETA; read
    in 1 MiB blocks, never whole."""
    try:
        fmt = detect_format(path, "auto")
        with path.open("rb") as fh:
            lines = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    except (OSError, DataError):
        return None
    return max(lines - (1 if fmt in ("csv", "tsv") else 0), 0) if fmt != "json" else None


# -- resume --------------------------------------------------------------------------------------
def last_done_line(path: Path) -> int | None:
    """The input line of the last complete line of an output or rejects file; a torn last line
    (no newline: the writer was killed mid-line) is cut off first."""
    if not path.is_file():
        return None
    with path.open("rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        end = _rfind_newline(fh, size)
        if end < size:
            fh.truncate(end)  # the torn tail
        if end == 0:
            return None
        start = _rfind_newline(fh, end - 1)
        fh.seek(start)
        text = fh.read(end - start).decode("utf-8", errors="replace")
    try:
        return int(json.loads(text)["line"])
    except (ValueError, KeyError, TypeError):
        raise DataError(
            f"{path}: its last line has no input line number ('line'), so --resume cannot tell "
            "where to continue; was it written by `tunewise predict`? Choose another --output."
        ) from None


def _rfind_newline(fh: IO[bytes], end: int) -> int:
    """Position just after the last b'\\n' before `end` (0 if none)."""
    pos = end
    while pos > 0:
        start = max(0, pos - 65536)
        fh.seek(start)
        block = fh.read(pos - start)
        hit = block.rfind(b"\n")
        if hit >= 0:
            return start + hit + 1
        pos = start
    return 0
