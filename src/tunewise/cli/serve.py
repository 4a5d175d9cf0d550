"""`tunewise serve`: a run directory behind an HTTP API (task predictions, OpenAI-compatible
completions, health, models, Prometheus metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunewise.cli._app import fail
from tunewise.errors import TunewiseError


def serve(
    run: Annotated[Path, typer.Argument(help="Run directory from `tunewise train`.")],
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="TUNEWISE_API_KEY",
            help="Require 'Authorization: Bearer KEY' on every route but /health "
            "(or set TUNEWISE_API_KEY).",
            show_envvar=True,
        ),
    ] = None,
    max_batch: Annotated[int, typer.Option(help="Inputs per forward pass.")] = 32,
    max_wait_ms: Annotated[
        float, typer.Option(help="How long a request waits for others to batch with.")
    ] = 5.0,
    max_items: Annotated[int, typer.Option(help="Inputs per /v1/predict request.")] = 256,
    max_input_chars: Annotated[int, typer.Option(help="Characters per input text.")] = 20_000,
    max_body_bytes: Annotated[int, typer.Option(help="Request body size limit.")] = 1_000_000,
    log_requests: Annotated[
        Path | None,
        typer.Option(help="Append each prediction to DIR/requests-*.jsonl (enables feedback)."),
    ] = None,
    log_max_mb: Annotated[float, typer.Option(help="Rotate the request log past this.")] = 10.0,
    watch: Annotated[
        Path | None,
        typer.Option(help="Registry directory: switch to a run when it is newly promoted."),
    ] = None,
    watch_interval: Annotated[float, typer.Option(help="Seconds between registry checks.")] = 2.0,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, ... (default: best)")] = None,
    trust_remote_code: Annotated[
        bool,
        typer.Option(help="Allow the run's model to execute its own code (only if you trust it)."),
    ] = False,
    backend: Annotated[
        str,
        typer.Option(
            help="Forward pass of encoder tasks: onnx (exported and parity-checked at start-up, "
            "run by onnxruntime; ~1.4-1.7x the requests/s on CPU), torch, or auto: onnx for "
            "encoder tasks on CPU, torch otherwise or if the export fails (the log says why)."
        ),
    ] = "auto",
    workers: Annotated[
        int | None,
        typer.Option(
            help="Model worker threads running batches side by side (default: one per CPU core, "
            "up to 4, for classification on CPU; 1 otherwise)."
        ),
    ] = None,
    kv_cache_tokens: Annotated[
        int,
        typer.Option(
            help="Causal LMs: KV cache tokens for continuous batching (requests join the "
            "running batch at its next step; ~46 KB per token for smollm2-135m; sampled "
            "requests get a second cache of this size at the first of them). 0: off."
        ),
    ] = 8192,
) -> None:
    """Serve a run over HTTP until interrupted (Ctrl-C: in-flight requests finish first)."""
    from tunewise import api
    from tunewise.serving.settings import ServeSettings

    try:
        settings = ServeSettings(
            host=host,
            port=port,
            api_key=api_key,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            max_items=max_items,
            max_input_chars=max_input_chars,
            max_body_bytes=max_body_bytes,
            log_requests=log_requests,
            log_max_bytes=int(log_max_mb * 1_000_000),
            watch=watch,
            watch_interval_s=watch_interval,
            trust_remote_code=trust_remote_code,
            backend=backend,
            workers=workers,
            kv_cache_tokens=kv_cache_tokens,
        )
        api.serve(run, settings, device=device)
    except TunewiseError as exc:
        fail(exc)
