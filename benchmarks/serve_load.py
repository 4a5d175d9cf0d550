"""Load test of `tunewise serve` on loopback (bounded in time and requests; stops by itself).

    python benchmarks/serve_load.py              # 20 s per point; 1, 8, 32 clients; smollm2 1 and 8
    python benchmarks/serve_load.py --quick      # smoke: 2 s per point, 1 and 8 clients, 8 tokens

1. A minilm classifier (LoRA, a few steps on SST-2 so a run directory exists) served by
   `tunewise serve` (dynamic micro-batching; its default backend, onnxruntime for this encoder
   task, and `--backend torch`) and the same model, merged, behind a naive endpoint:
   `transformers.pipeline` in a single-threaded stdlib HTTP server answering one request at a
   time. N concurrent clients (asyncio + aiohttp, one text per request, SST-2 dev sentences read
   in place) for a fixed duration: req/s, p50/p95/p99 latency, errors, server RSS. All servers
   are up at once and each client count is measured on them back to back.
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
import subprocess
import sys
from pathlib import Path
from typing import Any

from serve_load_parts import (  # benchmarks/ is on sys.path when this script runs
    _classify_load,
    _stream_load,
    free_port,
    model_alone,
    naive_server,
    rss_mb,
    start,
    stop,
)

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


def batch_stats(port: int) -> dict[str, float]:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    values = {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in ("tunewise_batch_size_count", "tunewise_batch_size_sum")
    }
    count, total = (
        values.get("tunewise_batch_size_count", 0),
        values.get("tunewise_batch_size_sum", 0),
    )
    return {"forward_passes": count, "inputs": total, "mean_batch": round(total / max(count, 1), 2)}


def ceiling(run: Path, texts: list[str]) -> dict[str, float]:
    """The model alone, no HTTP, in its own process after the servers have stopped."""
    path = WORK / "texts.json"
    path.write_text(json.dumps(texts))
    cmd = [sys.executable, __file__, "--model-alone", str(run), str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


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


def classifier_markdown(part: dict[str, Any]) -> list[str]:
    out = [
        "## minilm classifier: `tunewise serve` vs a one-request-at-a-time pipeline endpoint",
        "",
        "| server | clients | req/s | p50 ms | p95 ms | p99 ms | errors | RSS MB (peak) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("serve", "serve-torch", "serve-onnx", "naive"):
        server = part.get(name)
        if server is None:
            continue
        for r in server["points"]:
            out.append(
                f"| {name} | {r['clients']} | {r['req_per_s']} | {r['p50_ms']} | {r['p95_ms']} | "
                f"{r['p99_ms']} | {r['errors']} | {server['rss_mb']['peak']:.0f} |"
            )
    alone = part.get("model_alone")
    if alone:
        out += [
            "",
            "The model alone, no HTTP, one process (the ceiling for any server on these cores): "
            f"the naive endpoint's pipeline one text at a time {alone['pipeline_1']} texts/s; "
            f"tunewise's engine with onnxruntime (the default backend for encoder tasks) one at a "
            f"time {alone['onnx_engine_1']}/s, in random micro-batches of 32 over "
            f"{alone.get('workers', 1)} model worker(s) (as `serve` picks them) "
            f"{alone['onnx_engine_32']}/s; with `--backend torch` {alone['engine_1']}/s and "
            f"{alone['engine_32']}/s. `ceiling_speedup` below is the micro-batch figure "
            "over the naive endpoint at the most clients: the most that server could gain here.",
        ]
    out += ["", "Bars (`tunewise serve`, its default backend): " + json.dumps(part["bars"]), ""]
    for key, label in (("bars_torch", "--backend torch"), ("bars_onnx", "--backend onnx")):
        if key in part:
            out += [f"Bars, `{label}`: " + json.dumps(part[key]), ""]
    batches = part["serve"].get("batches")
    if batches:
        out += [f"Micro-batching (serve, all points): {json.dumps(batches)}", ""]
    return out


def markdown(result: dict[str, Any]) -> str:
    out = [
        "# `tunewise serve` under load (loopback)",
        "",
        f"`{result['command']}` on {result['cpus']} CPU cores; {result['duration_s']} s per point. "
        "Clients run in the same machine as the server.",
        "",
    ]
    if result.get("classifier"):
        out += classifier_markdown(result["classifier"])
    if result.get("llm"):
        out += [
            "## smollm2-135m: streamed chat completions",
            "",
            f"max_tokens {result['llm']['max_tokens']}, "
            f"{'temperature ' + str(t) if (t := result['llm'].get('temperature')) else 'greedy'}. "
            "Both servers up at once, each "
            "client count measured on them back to back.",
            "",
            "| server | clients | streams | TTFT p50 ms | TTFT max ms | tok/s per stream | "
            "tok/s total | errors | RSS MB (peak) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, part in result["llm"]["servers"].items():
            for r in part["points"]:
                out.append(
                    f"| {name} | {r['clients']} | {r['streams']} | {r['ttft_p50_ms']} | "
                    f"{r['ttft_max_ms']} | {r['tokens_per_s_per_stream']} | "
                    f"{r['tokens_per_s_total']} | {r['errors']} | {part['rss_mb']['peak']:.0f} |"
                )
    return "\n".join(out) + "\n"


def classifier_part(
    args: argparse.Namespace, tw: list[str], clients: list[int], texts: list[str]
) -> dict[str, Any]:
    part: dict[str, Any] = {}
    run = classifier_run(steps=2 if args.quick else 8)
    serve = [*tw, str(run), "--max-batch", "32", "--max-wait-ms", "5"]
    servers = {  # name -> command line without the port
        "serve": serve,  # the default backend: onnxruntime for this encoder task (auto)
        "serve-torch": [*serve, "--backend", "torch"],  # the forward pass in torch
        "naive": [sys.executable, __file__, "--naive-server", str(run)],
    }
    # All three up at once (idle, a server takes no CPU); each client count is then measured on
    # the three back to back, so a slow minute of this shared VM hits all of them alike.
    procs, urls = {}, {}
    try:
        for name, cmd in servers.items():
            port = free_port()
            ours = name != "naive"
            cmd = [*cmd, "--port", str(port)] if ours else [*cmd, str(port)]
            procs[name] = (start(cmd, port, WORK / f"{name}.log"), port)
            urls[name] = f"http://127.0.0.1:{port}" + ("/v1/predict" if ours else "/predict")
            asyncio.run(_classify_load(urls[name], 1, 60.0, 3, texts))  # warm-up, not measured
        points: dict[str, list] = {name: [] for name in servers}
        for n in clients:
            for name in servers:
                point = asyncio.run(
                    _classify_load(urls[name], n, args.duration, args.max_requests, texts)
                )
                print(f"[serve_load] {name} {point}", flush=True)
                points[name].append(point)
        for name, (proc, port) in procs.items():
            part[name] = {"points": points[name], "rss_mb": rss_mb(proc.pid)}
            if name != "naive":  # how well requests grouped, from the server's own metrics
                part[name]["batches"] = batch_stats(port)
    finally:
        for proc, _ in procs.values():
            stop(proc)
    naive_points = part["naive"]["points"]
    part["bars"] = bars(part["serve"]["points"], naive_points)
    part["bars_torch"] = bars(part["serve-torch"]["points"], naive_points)
    part["model_alone"] = alone = ceiling(run, texts)
    naive_most = part["naive"]["points"][-1]["req_per_s"]
    part["bars"]["ceiling_speedup"] = round(alone["onnx_engine_32"] / naive_most, 2)
    part["bars_torch"]["ceiling_speedup"] = round(alone["engine_32"] / naive_most, 2)
    return part


def llm_part(args: argparse.Namespace, tw: list[str]) -> dict[str, Any]:
    """Streamed chat completions (greedy, or sampled at `--temperature`) against two servers of
    the same run, both up at once and measured back to back per client count: the continuous
    batcher (the default) and batched `generate` (`--kv-cache-tokens 0`, what every stream used
    before)."""
    run = llm_run(steps=1 if args.quick else 4)
    servers = {"continuous": [], "batched generate": ["--kv-cache-tokens", "0"]}
    prompts = [
        r["instruction"]
        for r in json.loads((DATA / "alpaca-en-demo" / "train.json").read_text())[:64]
    ]
    procs, urls = {}, {}
    points: dict[str, list] = {name: [] for name in servers}
    try:
        for name, extra in servers.items():
            port = free_port()
            log = WORK / f"llm-{name.split()[0]}.log"
            procs[name] = start([*tw, str(run), "--port", str(port), *extra], port, log)
            urls[name] = f"http://127.0.0.1:{port}/v1/chat/completions"
            asyncio.run(_stream_load(urls[name], 1, 300.0, 1, 2, prompts))  # warm-up
        for n in [int(c) for c in args.llm_clients.split(",")]:
            for name in servers:
                cap = max(n, min(args.max_requests, 4 * n if args.quick else 10_000))
                point = asyncio.run(
                    _stream_load(
                        urls[name],
                        n,
                        args.duration,
                        cap,
                        args.max_tokens,
                        prompts,
                        args.temperature,
                    )
                )
                print(f"[serve_load] smollm2 {name} {point}", flush=True)
                points[name].append(point)
        return {
            "max_tokens": args.max_tokens,
            "temperature": args.temperature,
            "servers": {
                name: {"points": points[name], "rss_mb": rss_mb(proc.pid)}
                for name, proc in procs.items()
            },
        }
    finally:
        for proc in procs.values():
            stop(proc)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke test: tiny durations and counts")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per load point")
    p.add_argument("--clients", default="1,8,32", help="concurrent clients, comma-separated")
    p.add_argument("--max-requests", type=int, default=50_000, help="cap per load point")
    p.add_argument("--llm-clients", default="1,8")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--temperature", type=float, default=0.0, help="smollm2 streams; 0: greedy")
    p.add_argument("--skip-llm", action="store_true")
    p.add_argument("--skip-classifier", action="store_true", help="the smollm2 part only")
    p.add_argument("--output", default="serve_load", help="results/<output>.json and .md")
    p.add_argument("--naive-server", nargs=2, metavar=("RUN", "PORT"), help=argparse.SUPPRESS)
    p.add_argument("--model-alone", nargs=2, metavar=("RUN", "TEXTS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.naive_server:
        return naive_server(args.naive_server[0], int(args.naive_server[1]))
    if args.model_alone:
        return model_alone(*args.model_alone)
    if args.quick:
        args.duration, args.clients, args.llm_clients = 2.0, "1,8", "1,8"
        args.max_tokens, args.max_requests = 8, 500
        args.output = args.output if args.output != "serve_load" else "serve_load_quick"
    clients = [int(c) for c in args.clients.split(",")]
    texts = sst2_texts()
    tw = [sys.executable, "-m", "tunewise.cli", "serve"]
    result: dict[str, Any] = {
        "command": " ".join(["python benchmarks/serve_load.py", *sys.argv[1:]]),
        "cpus": os.cpu_count(),
        "duration_s": args.duration,
    }
    if not args.skip_classifier:
        result["classifier"] = classifier_part(args, tw, clients, texts)
    if not args.skip_llm:
        result["llm"] = llm_part(args, tw)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.output}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
