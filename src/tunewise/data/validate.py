"""Validate every record against the task's schema before anything else touches it.

Policy `fail` stops at the first bad records with a message naming file, line, field and value
(up to five of them, so a systematic problem shows as such). Policy `skip` keeps going: each
rejected record goes to `rejected.jsonl` with its line and reason, and is counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunewise.data.load import parse_record
from tunewise.data.schemas import Schema
from tunewise.errors import DataError

SHOWN = 5  # problems listed in a `fail` message


def place(path: str | Path, line: int) -> str:
    """How a message names a record: its line, or its index in a JSON list."""
    kind = "record" if str(path).lower().endswith(".json") else "line"
    return f"{path}, {kind} {line}"


def describe(problem: tuple[str, str, Any]) -> str:
    field, what, value = problem
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"field '{field}' {what} (got {text})"


def check_record(raw: Any, schema: Schema) -> tuple[dict[str, Any] | None, str]:
    """(record with canonical field names, '') when valid, else (record or None, reason)."""
    record, problem = parse_record(raw)
    if record is None:
        return None, problem
    record = schema.rename(record)
    found = schema.check(record, schema)
    return record, describe(found) if found else ""


def raise_or_collect(
    path: str | Path, bad: list[tuple[int, Any, str]], on_error: str
) -> list[dict[str, Any]]:
    """Rejected records as rejected.jsonl objects; DataError under `fail` when there are any."""
    if bad and on_error == "fail":
        shown = [f"{place(path, line)}: {reason}" for line, _, reason in bad[:SHOWN]]
        which = f", the first {SHOWN}" if len(bad) > SHOWN else ""
        raise DataError(
            f"{len(bad)} invalid record(s){which}: "
            + "; ".join(shown)
            + ". Fix them, or set on_error: skip to set them aside in rejected.jsonl."
        )
    out = []
    for line, raw, reason in bad:
        try:
            record: Any = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            record = raw  # malformed line: kept verbatim
        out.append({"line": line, "reason": reason, "record": record})
    return out
