"""Validate every record against the task's schema before anything else touches it.

Policy `fail` stops at the first bad records with a message naming file, line, field and value
(up to five of them, so a systematic problem shows as such). Policy `skip` keeps going: each
rejected record goes to `rejected.jsonl` with its line and reason, and is counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunewise.data.load import num_proc_for
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


def validate(rows: Any, schema: Schema, path: str | Path, num_proc: int | None = None) -> Any:
    """Rows with the record renamed to canonical fields and a `reason` ('' when valid)."""

    def check(batch: dict[str, list]) -> dict[str, list]:
        records, reasons = [], []
        for raw, error in zip(batch["record"], batch["error"], strict=True):
            if error:
                records.append(raw)
                reasons.append(error)
                continue
            record = json.loads(raw)
            if not isinstance(record, dict):
                records.append(raw)
                reasons.append(f"expected an object, got {type(record).__name__}")
                continue
            record = schema.rename(record)
            problem = schema.check(record, schema)
            records.append(json.dumps(record, ensure_ascii=False) if not problem else raw)
            reasons.append(describe(problem) if problem else "")
        return {"record": records, "reason": reasons}

    return rows.map(
        check,
        batched=True,
        remove_columns=["error"],
        num_proc=num_proc_for(len(rows), num_proc),
        desc="validating",
    )


def split_valid(checked: Any, path: str | Path, on_error: str) -> tuple[Any, list[dict]]:
    """(valid rows, rejected records); raises DataError under `fail` when any is bad."""
    import numpy as np

    reasons = checked.data.column("reason").to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(reasons != "")
    if len(bad) and on_error == "fail":
        shown = [f"{place(path, checked[int(i)]['line'])}: {reasons[i]}" for i in bad[:SHOWN]]
        more = f" (and {len(bad) - SHOWN} more)" if len(bad) > SHOWN else ""
        raise DataError(
            f"{len(bad)} invalid record(s){more}: "
            + "; ".join(shown)
            + ". Fix them, or set on_error: skip to set them aside in rejected.jsonl."
        )
    rejected = [_rejected(checked[int(i)]) for i in bad]
    valid = checked.select(np.flatnonzero(reasons == "")) if len(bad) else checked
    return valid.remove_columns(["reason"]), rejected


def _rejected(row: dict[str, Any]) -> dict[str, Any]:
    try:
        record: Any = json.loads(row["record"])
    except json.JSONDecodeError:
        record = row["record"]  # malformed line: kept verbatim
    return {"line": row["line"], "reason": row["reason"], "record": record}
