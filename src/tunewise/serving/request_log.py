"""`serve --log-requests DIR`: one JSON line per predicted input, and the feedback on them.

DIR/requests-<UTC YYYYmmddTHHMMSS>.jsonl holds {"id", "time", "route", "run", "task", "input",
"prediction", "score", "latency_ms"} per line and rotates to a new file past `max_bytes`;
DIR/feedback.jsonl holds {"id", "time", "label"} per correction. Both are append-only: lines are
written whole and flushed, so a reader (`tunewise data collect`) never sees half a record.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

FEEDBACK = "feedback.jsonl"


def new_id() -> str:
    return uuid.uuid4().hex


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RequestLog:
    def __init__(self, directory: str | Path, max_bytes: int = 10_000_000) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._ids = self._known_ids()  # feedback may name a request logged by an earlier server

    def _known_ids(self) -> set[str]:
        ids: set[str] = set()
        for path in sorted(self.dir.glob("requests-*.jsonl")):
            with path.open(encoding="utf-8") as f:
                for line in f:
                    try:
                        ids.add(json.loads(line)["id"])
                    except (ValueError, KeyError, TypeError):
                        continue  # a torn last line from a killed server
        return ids

    def _open(self) -> TextIO:
        if self._file is not None and self._file.tell() < self.max_bytes:
            return self._file
        if self._file is not None:
            self._file.close()
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        path, n = self.dir / f"requests-{stamp}.jsonl", 1
        while path.exists():  # rotated twice within a second
            path, n = self.dir / f"requests-{stamp}-{n}.jsonl", n + 1
        self._file = path.open("a", encoding="utf-8")
        return self._file

    @property
    def current(self) -> Path | None:
        return Path(self._file.name) if self._file is not None else None

    def write(
        self,
        ids: list[str],
        route: str,
        run: str,
        task: str,
        inputs: list[dict[str, Any]],
        predictions: list[dict[str, Any]],
        latency_ms: float,
    ) -> None:
        time = now_iso()
        lines = []
        for rid, record, pred in zip(ids, inputs, predictions, strict=True):
            score = pred.get("score") if isinstance(pred, dict) else None
            entry = {
                "id": rid,
                "time": time,
                "route": route,
                "run": run,
                "task": task,
                "input": record,
                "prediction": pred,
                "score": float(score) if isinstance(score, (int, float)) else None,
                "latency_ms": round(latency_ms, 3),
            }
            lines.append(json.dumps(entry, ensure_ascii=False) + "\n")
        with self._lock:
            for line in lines:
                self._open().write(line)
            if self._file is not None:
                self._file.flush()
            self._ids.update(ids)

    def knows(self, rid: str) -> bool:
        return rid in self._ids

    def feedback(self, rid: str, label: Any) -> dict[str, Any]:
        entry = {"id": rid, "time": now_iso(), "label": label}
        with self._lock, (self.dir / FEEDBACK).open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return entry

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
