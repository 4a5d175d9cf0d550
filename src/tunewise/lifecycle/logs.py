"""Reading what `tunewise serve --log-requests DIR` writes.

The contract with the server:
    DIR/requests-*.jsonl   {"id", "time", "route", "run", "task", "input": {task input fields},
                            "prediction": {...}, "score": float | null, "latency_ms"}
    DIR/feedback.jsonl     {"id", "time", "label": corrected label / answer / output}
Files are read in name order (rotation appends a counter or timestamp). A line that is not a
JSON object with an `id` (e.g. the half-written last line of a killed server) is skipped and
counted, with its file and line, so one torn line never blocks a collection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunewise.errors import DataError


@dataclass
class Logs:
    requests: list[dict[str, Any]]  # in log order, one per id (the last one logged wins)
    feedback: dict[str, Any]  # id → corrected label (the last feedback for an id wins)
    bad_lines: list[str] = field(default_factory=list)  # "file:line: why"
    n_feedback_unmatched: int = 0  # feedback for ids no request file holds


def _lines(path: Path, bad: list[str]) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                bad.append(f"{path.name}:{number}: not JSON ({exc.msg})")
                continue
            if not isinstance(record, dict) or record.get("id") in (None, ""):
                bad.append(f"{path.name}:{number}: not an object with an 'id'")
                continue
            yield record


def request_files(directory: str | Path) -> list[Path]:
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"Request log directory '{directory}' does not exist.")
    files = sorted(root.glob("requests-*.jsonl"))
    if not files:
        raise DataError(
            f"'{directory}' holds no request logs (requests-*.jsonl); start the server with "
            "`tunewise serve RUN --log-requests DIR`."
        )
    return files


def read_logs(directory: str | Path) -> Logs:
    """Every logged request and every feedback label under `directory`."""
    bad: list[str] = []
    by_id: dict[str, dict[str, Any]] = {}
    for path in request_files(directory):
        for record in _lines(path, bad):
            if not isinstance(record.get("input"), (dict, str)):
                bad.append(f"{path.name}: request {record['id']}: no 'input'")
                continue
            by_id.pop(str(record["id"]), None)  # keep log order of the last occurrence
            by_id[str(record["id"])] = record
    feedback: dict[str, Any] = {}
    path = Path(directory) / "feedback.jsonl"
    if path.is_file():
        for record in _lines(path, bad):
            if "label" not in record:
                bad.append(f"feedback.jsonl: id {record['id']}: no 'label'")
                continue
            feedback[str(record["id"])] = record["label"]
    unmatched = sum(1 for k in feedback if k not in by_id)
    return Logs(list(by_id.values()), feedback, bad, unmatched)


def input_of(request: dict[str, Any]) -> dict[str, Any]:
    """The request's input as a record of the task's input fields (a bare text → {"text"})."""
    value = request["input"]
    return {"text": value} if isinstance(value, str) else dict(value)
