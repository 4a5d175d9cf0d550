"""Parts of benchmarks/serve_load.py: the naive pipeline endpoint, server processes, and the
asyncio load generators (classification requests, streamed chat completions)."""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

# -- the naive baseline: transformers.pipeline, one request at a time ----------------------------


def naive_pipeline(run: str) -> Any:
    """The run's model merged into plain weights (as `tunewise export` gives them) in a
    `transformers.pipeline`."""
    import torch
    from transformers import pipeline

    import tunewise
    from tunewise.registry import STRATEGIES

    predictor = tunewise.load(run, device="cpu")
    strategy = STRATEGIES.get(predictor.config.strategy.name)(predictor.config.strategy)
    model = strategy.merge(predictor.model)
    model.device = torch.device("cpu")  # what pipeline reads from a PreTrainedModel
    labels = predictor.task.labels
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {name: i for i, name in enumerate(labels)}
    return pipeline("text-classification", model=model, tokenizer=predictor.tokenizer, top_k=None)


def naive_server(run: str, port: int) -> None:
    from http.server import BaseHTTPRequestHandler, HTTPServer

    pipe = naive_pipeline(run)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._send(200, {"status": "ok"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._send(200, {"predictions": pipe(body["inputs"])})

    HTTPServer.protocol_version = "HTTP/1.1"  # keep-alive, like uvicorn
    HTTPServer.request_queue_size = 256  # queue waiting clients instead of refusing them
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()


def model_alone(run: str, texts_file: str) -> None:
    """Requests/s of the served model with no HTTP at all, printed as JSON: the ceiling that no
    server around this model on this machine can pass. One text at a time through the naive
    endpoint's pipeline and through tunewise's engine, and random micro-batches of 32 spread
    over the model workers the server would use (`serve --workers`, auto)."""
    import random
    import threading

    import torch

    from tunewise.serving.engine import Engine
    from tunewise.serving.state import model_workers

    texts = json.loads(Path(texts_file).read_text())
    random.Random(0).shuffle(texts)
    cores = torch.get_num_threads()

    def rate(fn: Any, chunk: int, n: int, workers: int = 1) -> float:
        chunks = [texts[i : i + chunk] for i in range(0, n, chunk)]
        for part in chunks:  # warm-up: oneDNN builds kernels per new input shape on first use
            fn(part)

        def work(k: int) -> None:
            for part in chunks[k::workers]:
                fn(part)

        # one worker: in this (main) thread, where torch's 2-thread ops ran ~2x faster on one
        # text than from a started thread, as the naive endpoint runs it
        threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
        start = time.perf_counter()
        if workers == 1:
            work(0)
        else:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        return round(n / (time.perf_counter() - start), 1)

    out: dict[str, float] = {"pipeline_1": rate(naive_pipeline(run), 1, 128)}
    for prefix, backend in (("", "torch"), ("onnx_", "onnx")):  # `serve --backend ...`
        torch.set_num_threads(cores)
        engine = Engine(run, device="cpu", backend=backend)
        out[f"{prefix}engine_1"] = rate(lambda xs, e=engine: e.predict(xs, 32), 1, 128)
        workers = model_workers(engine, None)  # shares the cores out, as the server does
        out[f"{prefix}workers"] = workers
        out[f"{prefix}engine_32"] = rate(
            lambda xs, e=engine: e.predict(xs, 32), 32, len(texts), workers
        )
    print(json.dumps(out), flush=True)


# -- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], port: int, log: Path, timeout: float = 600) -> subprocess.Popen:
    import httpx

    log.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"server did not come up in {timeout} s; see {log}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_mb(pid: int) -> dict[str, float]:
    """Current and peak resident memory of a process (Linux /proc)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {k: int(fields[v].split()[0]) / 1024 for k, v in (("rss", "VmRSS"), ("peak", "VmHWM"))}


# -- load ----------------------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float | None]:
    if len(values) < 2:
        v = values[0] * 1000 if values else None
        return {"p50_ms": v, "p95_ms": v, "p99_ms": v}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "p99_ms": q[98] * 1000}


async def _classify_load(
    url: str, clients: int, duration: float, max_requests: int, texts: list[str]
) -> dict[str, Any]:
    # aiohttp, not httpx: on 2 shared cores the load generator's own CPU counts against the
    # server; httpx spent ~3.7 ms CPU per request here, aiohttp ~0.3 ms (one run of 1,000).
    import aiohttp

    latencies: list[float] = []
    errors = 0
    sent = 0
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        start = time.perf_counter()
        end = start + duration

        async def worker(k: int) -> None:
            nonlocal errors, sent
            i = k
            while time.perf_counter() < end and sent < max_requests:
                sent += 1
                t = time.perf_counter()
                try:
                    body = {"inputs": [texts[i % len(texts)]]}
                    async with client.post(url, json=body) as r:
                        ok = r.status == 200 and len((await r.json())["predictions"]) == 1
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t)
                else:
                    errors += 1
                i += clients

        await asyncio.gather(*(worker(k) for k in range(clients)))
        wall = time.perf_counter() - start
    return {
        "clients": clients,
        "requests": len(latencies) + errors,
        "errors": errors,
        "seconds": round(wall, 2),
        "req_per_s": round(len(latencies) / wall, 2),
        **{k: round(v, 1) if v is not None else None for k, v in percentiles(latencies).items()},
    }


async def _stream_load(
    url: str,
    clients: int,
    duration: float,
    max_requests: int,
    max_tokens: int,
    prompts: list[str],
    temperature: float = 0.0,
) -> dict[str, Any]:
    import httpx

    ttft: list[float] = []
    rates: list[float] = []
    tokens = errors = sent = 0
    async with httpx.AsyncClient(timeout=300) as client:
        start = time.perf_counter()
        end = start + duration

        async def worker(k: int) -> None:
            nonlocal tokens, errors, sent
            i = k
            while time.perf_counter() < end and sent < max_requests:
                sent += 1
                body = {
                    "messages": [{"role": "user", "content": prompts[i % len(prompts)]}],
                    "max_tokens": max_tokens,
                    "temperature": temperature,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                }
                t0, first, usage = time.perf_counter(), None, None
                try:
                    async with client.stream("POST", url, json=body) as r:
                        async for line in r.aiter_lines():
                            if not line.startswith("data: ") or line == "data: [DONE]":
                                continue
                            event = json.loads(line[6:])
                            if "error" in event:
                                raise RuntimeError(event["error"]["message"])
                            if event.get("usage"):
                                usage = event["usage"]
                            elif first is None and any(
                                c["delta"].get("content") for c in event["choices"]
                            ):
                                first = time.perf_counter()
                except (httpx.HTTPError, RuntimeError):
                    errors += 1
                    continue
                done = time.perf_counter()
                if first is None or usage is None:
                    errors += 1
                    continue
                n = usage["completion_tokens"]
                ttft.append(first - t0)
                tokens += n
                if n > 1 and done > first:
                    rates.append((n - 1) / (done - first))
                i += clients

        await asyncio.gather(*(worker(k) for k in range(clients)))
        wall = time.perf_counter() - start
    return {
        "clients": clients,
        "streams": len(ttft),
        "errors": errors,
        "seconds": round(wall, 2),
        "ttft_p50_ms": round(statistics.median(ttft) * 1000, 1) if ttft else None,
        "ttft_max_ms": round(max(ttft) * 1000, 1) if ttft else None,
        "tokens_per_s_per_stream": round(statistics.median(rates), 2) if rates else None,
        "tokens_per_s_total": round(tokens / wall, 2),
    }
