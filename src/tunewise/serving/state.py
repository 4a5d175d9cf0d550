"""A running server's state: the served engine, the model worker, metrics, the request log, and
switching to another run without dropping a request."""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from tunewise.errors import TunewiseError
from tunewise.serving.batcher import MicroBatcher
from tunewise.serving.engine import Engine
from tunewise.serving.metrics import Metrics
from tunewise.serving.problems import RequestError
from tunewise.serving.request_log import RequestLog
from tunewise.serving.settings import ServeSettings

log = logging.getLogger("tunewise.serve")


class ServerState:
    def __init__(self, run_dir: str | Path, settings: ServeSettings, device: str | None = None):
        self.settings, self.device = settings, device
        self.metrics = Metrics()
        self.engine = Engine(
            run_dir, device, settings.trust_remote_code, settings.backend
        )  # only the model worker replaces it (between batches)
        self.batcher = MicroBatcher(
            self._run, settings.max_batch, settings.max_wait_ms / 1000, self.metrics.batch
        )
        self.log = (
            RequestLog(settings.log_requests, settings.log_max_bytes)
            if settings.log_requests
            else None
        )
        self._reloading = threading.Lock()

    def _run(self, key: Hashable, items: list[Any]) -> list[Any]:
        """One batch in the model worker, with whichever engine is current."""
        kind, arg = key  # type: ignore[misc]
        engine = self.engine
        if kind == "predict":
            return engine.predict(items, self.settings.max_batch)
        if kind == "stream":  # items: (record, TextIteratorStreamer, cancel event)
            for _, streamer, _ in items:
                streamer.tokenizer = engine.predictor.tokenizer  # the run served now
            return engine.generate(
                engine.prompts([record for record, _, _ in items]),
                arg,
                streamers=[streamer for _, streamer, _ in items],
                cancels=[cancel for _, _, cancel in items],
            )
        return engine.generate(engine.prompts(items), arg)  # kind == "generate", arg: GenParams

    def reload(self, run_dir: str | Path | None = None) -> dict[str, Any]:
        """Load `run_dir` (default: the served run again) beside the served model, then swap it
        in between two batches: queued and in-flight requests are all answered. Blocking."""
        if not self._reloading.acquire(blocking=False):
            raise RequestError(409, "A reload is already in progress.", "run")
        try:
            target = str(run_dir) if run_dir else self.engine.run_dir
            if not Path(target, "tunewise.json").is_file():
                raise RequestError(
                    422,
                    f"run: '{target}' is not a tunewise run directory (no tunewise.json).",
                    "run",
                )
            try:
                new = Engine(
                    target, self.device, self.settings.trust_remote_code, self.settings.backend
                )
            except TunewiseError as exc:
                self.metrics.reloads.labels("failed").inc()
                raise RequestError(422, f"run: cannot load '{target}': {exc}", "run") from None

            def swap() -> Engine:
                old, self.engine = self.engine, new
                return old

            old = self.batcher.call(swap).result()
            self.metrics.reloads.labels("ok").inc()
            log.info("now serving %s (was %s)", new.run_dir, old.run_dir)
            return {
                "run": new.run_dir,
                "previous": old.run_dir,
                "model": new.model_id,
                "task": new.task_name,
            }
        finally:
            self._reloading.release()

    def close(self, timeout: float | None = None) -> None:
        self.batcher.close(timeout)
        if self.log is not None:
            self.log.close()
