"""Request logs as `tunewise serve --log-requests DIR` writes them (the server is not needed:
the tests write the files of the contract directly)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_logs(
    directory: Path,
    requests: list[dict[str, Any]],
    feedback: dict[str, Any],
    per_file: int = 5,
    task: str = "classification",
) -> Path:
    """requests: {"input": ..., "prediction": ..., "score": ...} (ids r0, r1, ... assigned);
    feedback: id → label. Requests are split over rotated files of `per_file` lines."""
    directory.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for i, r in enumerate(requests):
        record = {
            "id": f"r{i}",
            "time": f"2026-12-01T10:00:{i % 60:02d}Z",
            "route": "/v1/predict",
            "run": "runs/x",
            "task": task,
            "score": r.get("score"),
            "latency_ms": 3.5,
            **r,
        }
        lines.append(json.dumps(record))
    for n in range(0, len(lines), per_file):
        chunk = lines[n : n + per_file]
        (directory / f"requests-{n // per_file:04d}.jsonl").write_text("\n".join(chunk) + "\n")
    fb = [
        json.dumps({"id": k, "time": "2026-12-01T11:00:00Z", "label": v})
        for k, v in feedback.items()
    ]
    if fb:
        (directory / "feedback.jsonl").write_text("\n".join(fb) + "\n")
    return directory
