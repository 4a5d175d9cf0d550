"""What `tunewise serve` is told: bind address, auth, batching, limits, logging, watching."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tunewise.errors import ConfigError

API_KEY_ENV = "TUNEWISE_API_KEY"


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 8000
    api_key: str | None = None  # None: no auth (the TUNEWISE_API_KEY variable is read by `resolve`)
    max_batch: int = 32  # inputs per forward pass
    max_wait_ms: float = 5.0  # how long the first queued request waits for company
    max_items: int = 256  # inputs per /v1/predict request
    max_input_chars: int = 20_000  # characters per text field of an input
    max_body_bytes: int = 1_000_000  # request body
    max_tokens_limit: int = 4096  # largest max_tokens a completion may ask for
    log_requests: Path | None = None  # directory for requests-*.jsonl and feedback.jsonl
    log_max_bytes: int = 10_000_000  # a request log rotates to a new file past this size
    watch: Path | None = None  # registry directory polled for a newly promoted run
    watch_interval_s: float = 2.0
    graceful_timeout_s: float = 30.0  # how long shutdown waits for in-flight requests
    # run code shipped in a run's model folder (only on the user's word, never the manifest's)
    trust_remote_code: bool = False
    # forward pass of encoder tasks: onnxruntime on a graph exported and parity-checked at
    # start-up (onnx), torch, or auto: onnx where it fits (encoder task, CPU), torch otherwise
    backend: str = "auto"
    # model worker threads running forward passes side by side; None: picked for the run
    # (encoder tasks on CPU: one per core up to 4, the cores shared out among them; else 1)
    workers: int | None = None
    # causal LMs: KV cache of the continuous batcher, in tokens over all running requests (greedy
    # requests join the running batch at the next step); 0: batched `generate` only
    kv_cache_tokens: int = 8192

    def resolve(self) -> ServeSettings:
        """Checked settings, with the API key taken from the environment when not given."""
        problems = []
        if self.max_batch < 1:
            problems.append(f"--max-batch must be at least 1 (got {self.max_batch})")
        if self.workers is not None and self.workers < 1:
            problems.append(f"--workers must be at least 1 (got {self.workers})")
        if self.kv_cache_tokens < 0:
            problems.append(f"--kv-cache-tokens must be 0 or more (got {self.kv_cache_tokens})")
        if self.max_wait_ms < 0:
            problems.append(f"--max-wait-ms must be 0 or more (got {self.max_wait_ms})")
        if not 0 <= self.port <= 65535:
            problems.append(f"--port must be 0..65535 (got {self.port})")
        for name in ("max_items", "max_input_chars", "max_body_bytes", "log_max_bytes"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.watch is not None and not Path(self.watch).is_dir():
            problems.append(f"--watch {self.watch}: not a directory")
        if self.backend not in ("auto", "torch", "onnx"):
            problems.append(f"--backend must be auto, torch or onnx (got {self.backend!r})")
        if self.api_key is not None and not self.api_key.strip():
            problems.append("--api-key is empty")
        if problems:
            raise ConfigError("Cannot serve: " + "; ".join(problems) + ".")
        key = self.api_key or os.environ.get(API_KEY_ENV) or None
        return ServeSettings(**{**self.__dict__, "api_key": key})
