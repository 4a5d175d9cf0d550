"""Load test of `tunewise serve` on loopback (bounded in time and requests; stops by itself).

    python benchmarks/serve_load.py              # 20 s per point; 1, 8, 32 clients; smollm2 1 and 8
    python benchmarks/serve_load.py --quick      # smoke: 2 s per point, 1 and 4 clients, 8 tokens

1. A minilm classifier (LoRA, a few steps on SST-2 so a run directory exists) served by
   `tunewise serve` (dynamic micro-batching) and the same model, merged, behind a naive endpoint:
   `transformers.pipeline` in a single-threaded stdlib HTTP server answering one request at a
   time. N concurrent clients (asyncio + httpx, one text per request, SST-2 dev sentences read in
   place) for a fixed duration: req/s, p50/p95/p99 latency, errors, server RSS.
2. smollm2-135m (LoRA instruction run, a few steps on alpaca-en-demo) streamed chat completions at
   1 and 8 concurrent clients: time to first token, tokens/s per stream and in total.

Each server is its own process; the load generator shares the machine with it (report the core
count with the numbers). Results: benchmarks/results/serve_load.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work" / "serve"


# -- runs --------------------------------------------------------------------------------------


def classifier_run(steps: int) -> Path:
    out = WORK / "minilm-run"
    if (out / "tunewise.json").is_file():
        return out
    import tunewise

    cfg = {
        "model": {"name": "minilm", "max_length": 128},
        "task": {"type": "classification"},
        "data": {
            "train": str(DATA / "sst2" / "train.tsv"),
            "validation": str(DATA / "sst2" / "dev.tsv"),
            "text_column": ["sentence", "content"],
        },
        "strategy": {"name": "lora"},
        "training": {
            "epochs": 1,
            "max_train_samples": 32 * steps,
            "max_eval_samples": 128,
            "batch_size": 32,
        },
        "eval": {"each_epoch": False, "batch_size": 128},
        "output_dir": str(out),
        "seed": 0,
    }
    return Path(tunewise.finetune(cfg, overwrite=True).run_dir)


def llm_run(steps: int) -> Path:
    out = WORK / "smollm2-run"
    if (out / "tunewise.json").is_file():
        return out
    import tunewise

    records = json.loads((DATA / "alpaca-en-demo" / "train.json").read_text(encoding="utf-8"))
    WORK.mkdir(parents=True, exist_ok=True)
    train, held = WORK / "alpaca-train.json", WORK / "alpaca-held.json"
    train.write_text(json.dumps(records[: 4 * steps]), encoding="utf-8")
    held.write_text(json.dumps(records[-4:]), encoding="utf-8")
    cfg = {
        "model": {"name": "smollm2-135m", "max_length": 256},
        "task": {"type": "instruction", "eval_generate_samples": 0},
        "data": {"train": str(train), "validation": str(held)},
        "strategy": {"name": "lora"},
        "training": {"epochs": 1, "batch_size": 4},
        "eval": {"each_epoch": False, "batch_size": 4},
        "output_dir": str(out),
        "seed": 0,
    }
    return Path(tunewise.finetune(cfg, overwrite=True).run_dir)


def sst2_texts(n: int = 512) -> list[str]:
    lines = (DATA / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1 : n + 1]
    return [line.split("\t", 1)[1] for line in lines]


# -- the naive baseline: transformers.pipeline, one request at a time ----------------------------


def naive_server(run: str, port: int) -> None:
    from http.server import BaseHTTPRequestHandler, HTTPServer

    import torch
    from transformers import pipeline

    import tunewise
    from tunewise.registry import STRATEGIES

    predictor = tunewise.load(run, device="cpu")
    strategy = STRATEGIES.get(predictor.config.strategy.name)(predictor.config.strategy)
    model = strategy.merge(predictor.model)  # plain weights, as `tunewise export` gives them
    model.device = torch.device("cpu")  # what pipeline reads from a PreTrainedModel
    labels = predictor.task.labels
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {name: i for i, name in enumerate(labels)}
    pipe = pipeline("text-classification", model=model, tokenizer=predictor.tokenizer, top_k=None)

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
    import httpx

    latencies: list[float] = []
    errors = 0
    sent = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        start = time.perf_counter()
        end = start + duration

        async def worker(k: int) -> None:
            nonlocal errors, sent
            i = k
            while time.perf_counter() < end and sent < max_requests:
                sent += 1
                t = time.perf_counter()
                try:
                    r = await client.post(url, json={"inputs": [texts[i % len(texts)]]})
                    ok = r.status_code == 200 and len(r.json()["predictions"]) == 1
                except httpx.HTTPError:
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
    url: str, clients: int, duration: float, max_requests: int, max_tokens: int, prompts: list[str]
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
                    "temperature": 0,
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


# -- report --------------------------------------------------------------------------------------


def bars(serve: list[dict], naive: list[dict]) -> dict[str, Any]:
    by = {r["clients"]: r for r in serve}
    nby = {r["clients"]: r for r in naive}
    top = max(r["req_per_s"] for r in naive) if naive else 0
    saturated = min((r["clients"] for r in naive if r["req_per_s"] >= 0.9 * top), default=None)
    most = max(by)
    speedup = by[most]["req_per_s"] / nby[most]["req_per_s"] if nby.get(most) else None
    p95 = by.get(saturated, {}).get("p95_ms") if saturated else None
    return {
        "zero_errors": all(r["errors"] == 0 for r in serve),
        f"speedup_at_{most}_clients": round(speedup, 2) if speedup else None,
        "speedup_at_least_3x": bool(speedup and speedup >= 3),
        "naive_saturates_at_clients": saturated,
        "serve_p95_ms_there": p95,
        "p95_under_250ms_there": bool(p95 is not None and p95 < 250),
    }


def markdown(result: dict[str, Any]) -> str:
    out = [
        "# `tunewise serve` under load (loopback)",
        "",
        f"`{result['command']}` on {result['cpus']} CPU cores; {result['duration_s']} s per point. "
        "Clients run in the same machine as the server.",
        "",
        "## minilm classifier: `tunewise serve` vs a one-request-at-a-time pipeline endpoint",
        "",
        "| server | clients | req/s | p50 ms | p95 ms | p99 ms | errors | RSS MB (peak) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("serve", "naive"):
        part = result["classifier"][name]
        for r in part["points"]:
            out.append(
                f"| {name} | {r['clients']} | {r['req_per_s']} | {r['p50_ms']} | {r['p95_ms']} | "
                f"{r['p99_ms']} | {r['errors']} | {part['rss_mb']['peak']:.0f} |"
            )
    out += ["", "Bars: " + json.dumps(result["classifier"]["bars"]), ""]
    if result.get("llm"):
        out += [
            "## smollm2-135m: streamed chat completions",
            "",
            f"max_tokens {result['llm']['max_tokens']}, greedy.",
            "",
            "| clients | streams | TTFT p50 ms | TTFT max ms | tok/s per stream | tok/s total | "
            "errors |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in result["llm"]["points"]:
            out.append(
                f"| {r['clients']} | {r['streams']} | {r['ttft_p50_ms']} | {r['ttft_max_ms']} | "
                f"{r['tokens_per_s_per_stream']} | {r['tokens_per_s_total']} | {r['errors']} |"
            )
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke test: tiny durations and counts")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per load point")
    p.add_argument("--clients", default="1,8,32", help="concurrent clients, comma-separated")
    p.add_argument("--max-requests", type=int, default=50_000, help="cap per load point")
    p.add_argument("--llm-clients", default="1,8")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--skip-llm", action="store_true")
    p.add_argument("--output", default="serve_load", help="results/<output>.json and .md")
    p.add_argument("--naive-server", nargs=2, metavar=("RUN", "PORT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.naive_server:
        return naive_server(args.naive_server[0], int(args.naive_server[1]))
    if args.quick:
        args.duration, args.clients, args.llm_clients = 2.0, "1,4", "1,2"
        args.max_tokens, args.max_requests = 8, 500
        args.output = args.output if args.output != "serve_load" else "serve_load_quick"
    clients = [int(c) for c in args.clients.split(",")]
    texts = sst2_texts()
    tw = [sys.executable, "-m", "tunewise.cli", "serve"]
    result: dict[str, Any] = {
        "command": " ".join(["python benchmarks/serve_load.py", *sys.argv[1:]]),
        "cpus": os.cpu_count(),
        "duration_s": args.duration,
        "classifier": {},
    }
    run = classifier_run(steps=2 if args.quick else 8)
    for name in ("serve", "naive"):
        port = free_port()
        cmd = (
            [*tw, str(run), "--port", str(port), "--max-batch", "32", "--max-wait-ms", "5"]
            if name == "serve"
            else [sys.executable, __file__, "--naive-server", str(run), str(port)]
        )
        proc = start(cmd, port, WORK / f"{name}.log")
        url = f"http://127.0.0.1:{port}" + ("/v1/predict" if name == "serve" else "/predict")
        points = []
        try:
            asyncio.run(_classify_load(url, 1, 60.0, 3, texts))  # warm-up, not measured
            for n in clients:
                point = asyncio.run(_classify_load(url, n, args.duration, args.max_requests, texts))
                print(f"[serve_load] {name} {point}", flush=True)
                points.append(point)
            result["classifier"][name] = {"points": points, "rss_mb": rss_mb(proc.pid)}
        finally:
            stop(proc)
    result["classifier"]["bars"] = bars(
        result["classifier"]["serve"]["points"], result["classifier"]["naive"]["points"]
    )
    if not args.skip_llm:
        run = llm_run(steps=1 if args.quick else 4)
        port = free_port()
        proc = start([*tw, str(run), "--port", str(port)], port, WORK / "llm.log")
        prompts = [
            r["instruction"]
            for r in json.loads((DATA / "alpaca-en-demo" / "train.json").read_text())[:64]
        ]
        points = []
        try:
            for n in [int(c) for c in args.llm_clients.split(",")]:
                point = asyncio.run(
                    _stream_load(
                        f"http://127.0.0.1:{port}/v1/chat/completions",
                        n,
                        args.duration,
                        max(n, min(args.max_requests, 4 * n if args.quick else 10_000)),
                        args.max_tokens,
                        prompts,
                    )
                )
                print(f"[serve_load] smollm2 {point}", flush=True)
                points.append(point)
            result["llm"] = {
                "max_tokens": args.max_tokens,
                "points": points,
                "rss_mb": rss_mb(proc.pid),
            }
        finally:
            stop(proc)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.output}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
