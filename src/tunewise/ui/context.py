"""What every tab shares: the workspace directory, the job queue and loaded models."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunewise.errors import TunewiseError
from tunewise.ui.runs import JobQueue


def error_text(exc: BaseException) -> str:
    """What the CLI prints for the error (`error: ...`), for the page."""
    if isinstance(exc, TunewiseError):
        return f"error: {exc}"
    return f"error: {type(exc).__name__}: {exc}"


@dataclass
class UIContext:
    workspace: Path
    queue: JobQueue
    _predictors: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, workspace: Path, max_running: int = 1) -> UIContext:
        workspace = Path(workspace).resolve()
        workspace.mkdir(parents=True, exist_ok=True)
        return cls(workspace, JobQueue(workspace, max_running))

    def resolve(self, path: str | Path) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.workspace / p

    def predictor(self, run_dir: Path) -> Any:
        """`tunewise.api.load(run_dir)`, kept for the next call (the last two runs)."""
        from tunewise import api

        key = str(Path(run_dir).resolve())
        with self._lock:
            if key not in self._predictors:
                if len(self._predictors) >= 2:
                    self._predictors.pop(next(iter(self._predictors)))
                self._predictors[key] = api.load(key)
            return self._predictors[key]
