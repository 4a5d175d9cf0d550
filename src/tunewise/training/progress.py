"""`<run_dir>/progress.json`: a training run's progress, for anything watching from outside
(the browser workbench polls it). A Trainer callback; the file is replaced atomically, so a
reader never sees half of it.

    {"status": "training" | "evaluating", "step", "max_steps", "epoch", "elapsed_s", "eta_s",
     "loss": [{"step", "epoch", "loss", "learning_rate"}], "eval": [{"step", "epoch", metric...}],
     "peak_rss_mb", "updated"}

"evaluating" follows the last step (final evaluation and saving); `tunewise.json` appearing in
the run directory marks the run finished.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from tunewise.artifacts import write_json

PROGRESS = "progress.json"


class ProgressFile(TrainerCallback):
    """Writes progress.json at the start, at every log and evaluation, at most every
    `min_interval` seconds between them, and at the end of training."""

    def __init__(self, path: Path, min_interval: float = 1.0) -> None:
        self.path = Path(path)
        self.min_interval = min_interval
        self.started = time.time()
        self.last_write = 0.0
        self.state: dict[str, Any] = {"status": "training", "loss": [], "eval": []}

    def _write(self, state: Any, status: str | None = None, force: bool = False) -> None:
        now = time.time()
        if not force and now - self.last_write < self.min_interval:
            return
        from tunewise.sweep import peak_rss_mb

        step, total = int(state.global_step), int(state.max_steps or 0)
        elapsed = now - self.started
        eta = elapsed / step * (total - step) if step and total else None
        self.state.update(
            status=status or self.state["status"],
            step=step,
            max_steps=total,
            epoch=round(float(state.epoch or 0.0), 4),
            elapsed_s=round(elapsed, 1),
            eta_s=None if eta is None else round(eta, 1),
            peak_rss_mb=peak_rss_mb(),
            updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        write_json(self.path, self.state)
        self.last_write = now

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started = time.time()
        self._write(state, "training", force=True)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._write(state)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        logs = logs or {}
        point = {"step": int(state.global_step), "epoch": round(float(state.epoch or 0), 4)}
        if "loss" in logs:
            lr = logs.get("learning_rate")
            self.state["loss"].append({**point, "loss": logs["loss"], "learning_rate": lr})
        evals = {
            k[5:]: v
            for k, v in logs.items()
            if k.startswith("eval_")
            and isinstance(v, (int, float))
            and not k.endswith(("_per_second", "_runtime"))
        }
        if evals:
            self.state["eval"].append({**point, **evals})
        self._write(state, force=True)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._write(state, "evaluating", force=True)
