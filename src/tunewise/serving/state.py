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
from tunewise.serving.continuous import Lane, continuous_for
from tunewise.serving.engine import Engine
from tunewise.serving.metrics import Metrics
from tunewise.serving.problems import RequestError
from tunewise.serving.request_log import RequestLog
from tunewise.serving.settings import ServeSettings

log = logging.getLogger("tunewise.serve")


ONE_WORKER = (
    "generates text, which runs in one model worker (its rows share a KV cache and a batch); "
    "serve it with --workers 1."
)


def model_workers(engine: Engine, asked: int | None) -> int:
    """How many model workers serve `engine`, with the CPU threads shared out among them.

    On 2 cores, two workers of one thread each answered 1.46x (torch) and 1.26x (onnxruntime)
    the SST-2 sentences/s of one worker of two threads (minilm, micro-batches of 16, medians of
    three alternating rounds: `benchmarks/serve_workers.py`): a micro-batch of a few short
    sentences is a small matmul, and splitting it over threads leaves much of each op waiting on
    its slowest thread. Only tasks that tokenize in memory (`Task.in_memory_inputs`) gain:
    the others hold a process-wide lock while `datasets` tokenizes."""
    import torch

    from tunewise.inference.batches import device_of

    if asked is not None and asked > 1 and engine.generative:
        raise TunewiseError(f"Run '{engine.run_dir}' {ONE_WORKER}")
    on_cpu = device_of(engine.predictor.model).type == "cpu"
    in_memory = engine.task.in_memory_inputs
    cores = torch.get_num_threads()
    workers = asked or (min(cores, 4) if on_cpu and in_memory and not engine.generative else 1)
    if on_cpu and workers > 1:
        torch.set_num_threads(max(1, cores // workers))  # process-wide: shared out evenly
        engine.share_threads(torch.get_num_threads())
    log.info("%d model worker(s) x %d thread(s)", workers, torch.get_num_threads())
    return workers


class ServerState:
    def __init__(self, run_dir: str | Path, settings: ServeSettings, device: str | None = None):
        self.settings, self.device = settings, device
        self.metrics = Metrics()
        self.engine = Engine(
            run_dir, device, settings.trust_remote_code, settings.backend
        )  # only the model worker replaces it (between batches)
        self.workers = model_workers(self.engine, settings.workers)
        self._continuous(self.engine)
        self.batcher = MicroBatcher(
            self._run,
            settings.max_batch,
            settings.max_wait_ms / 1000,
            self.metrics.batch,
            workers=self.workers,
        )
        self.log = (
            RequestLog(settings.log_requests, settings.log_max_bytes)
            if settings.log_requests
            else None
        )
        self._reloading = threading.Lock()

    def _continuous(self, engine: Engine) -> None:
        engine.continuous = continuous_for(
            engine, self.settings.kv_cache_tokens, min(self.settings.max_batch, 64)
        )

    def continuous(
        self, engine: Engine, prompts: list[list[int]], params: Any, stream: bool
    ) -> Lane | None:
        """The continuous batcher (greedy or sampling) for these prompts where it takes them
        (no beam search, fits its cache); None: the micro-batched `generate` path."""
        gen = engine.continuous
        options = engine.task.options
        if gen is None or (options.num_beams > 1 and not stream):  # streams decode greedily
            return None
        if not all(gen.fits(len(p), params.max_tokens) for p in prompts):
            return None
        return gen.route(options, params)

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
            if new.generative and self.workers > 1:
                self.metrics.reloads.labels("failed").inc()
                raise RequestError(422, f"run: '{target}' {ONE_WORKER}", "run")
            self._continuous(new)

            def swap() -> Engine:
                old, self.engine = self.engine, new
                return old

            old = self.batcher.call(swap).result()
            if old.continuous is not None:  # its running completions finish, then it stops
                old.continuous.retire()
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
        if self.engine.continuous is not None:
            self.engine.continuous.close(timeout)
        if self.log is not None:
            self.log.close()
