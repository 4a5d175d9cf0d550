"""Continued-pretraining benchmark on c4-demo: held-out perplexity before and after a short run.

    python benchmarks/continued_pretraining.py      # both runs: 33 min on the loaded 2-core box
    python benchmarks/continued_pretraining.py --runs smollm2-lora --steps 20 --batch 4

Runs (each in its own process, so its peak RSS is its own):
- smollm2-lora: SmolLM2-135M-Instruct, causal LM with sequence packing, LoRA r=8 on every
  linear layer of the blocks;
- minilm-full: all-MiniLM-L6-v2, masked LM (15% of tokens), full fine-tuning. This checkpoint
  ships without its MLM head, so its "before" perplexity is that of a random head: the number
  shows the head being learnt as much as domain adaptation.
The last `--valid-docs` documents of c4_demo.jsonl are held out; the rest train. Perplexity is
exp(mean token NLL) over every held-out token (masked LM: over the masked tokens, with the same
seeded masks before and after). Throughput is real (non-pad) training tokens per second. The
machine's load average is recorded with each run: the 2 cores are shared with other jobs.
Writes benchmarks/results/continued_pretraining.json (+ .md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
C4 = ROOT.parent / "shared" / "data" / "c4-demo" / "c4_demo.jsonl"
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work" / "continued_pretraining"

RUNS = {
    "smollm2-lora": {
        "model": "smollm2-135m",
        "strategy": {"name": "lora", "r": 8},
        "learning_rate": 1e-3,
    },
    "minilm-full": {"model": "minilm", "strategy": {"name": "full"}, "learning_rate": 2e-4},
}


def split(valid_docs: int) -> dict[str, Path]:
    lines = [line for line in C4.read_text(encoding="utf-8").splitlines() if line.strip()]
    WORK.mkdir(parents=True, exist_ok=True)
    out = {"train": WORK / "train.jsonl", "validation": WORK / "valid.jsonl"}
    out["train"].write_text("\n".join(lines[:-valid_docs]) + "\n", encoding="utf-8")
    out["validation"].write_text("\n".join(lines[-valid_docs:]) + "\n", encoding="utf-8")
    return out


def config(name: str, data: dict[str, Path], args: argparse.Namespace) -> dict:
    run = RUNS[name]
    return {
        "model": {"name": run["model"], "max_length": args.block},
        "task": {"type": "continued_pretraining"},
        "data": {"train": str(data["train"]), "validation": str(data["validation"])},
        "strategy": run["strategy"],
        "training": {
            "max_steps": args.steps,
            "batch_size": args.batch,
            "learning_rate": run["learning_rate"],
            "num_threads": args.threads,
            "logging_steps": 10,
        },
        "eval": {"batch_size": 16, "each_epoch": False},
        "output_dir": str(WORK / name),
        "seed": 0,
    }


def child(cfg: dict) -> dict:
    import resource

    import tunewise

    started = time.perf_counter()
    result = tunewise.finetune(cfg, overwrite=True)
    wall = time.perf_counter() - started
    t, val = result.manifest["training"], result.metrics["validation"]
    return {
        "status": "ok",
        "objective": result.manifest["task"]["state"]["objective"],
        "perplexity_before": round(val["perplexity_before"], 3),
        "perplexity_after": round(val["perplexity"], 3),
        "perplexity_change_percent": round(
            100 * (val["perplexity"] / val["perplexity_before"] - 1), 1
        ),
        "loss_before": round(val["loss_before"], 4),
        "loss_after": round(val["loss"], 4),
        "held_out_documents": val["n_examples"],
        "held_out_scored_tokens": val["n_tokens"],
        "trainable_params": result.manifest["strategy"]["parameters"]["trainable"],
        "steps": t["steps"],
        "n_train_documents": t["n_train"],
        "train_seconds": t["train_seconds"],
        "real_tokens": t["real_tokens"],
        "real_tokens_per_second": t["real_tokens_per_second"],
        "wall_seconds": round(wall, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def run_child(cfg: dict) -> dict:
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(cfg)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if proc.returncode != 0:
        return {
            "status": "failed",
            "error": (proc.stderr or proc.stdout)[-2000:],
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["load_average_start"] = round(load, 2)
    row["load_average_end"] = round(os.getloadavg()[0], 2)
    return row


def table(scale: dict, runs: dict) -> list[str]:
    lines = [
        f"c4-demo: {scale['train_documents']} training documents, last "
        f"{scale['valid_documents']} held out; blocks of {scale['block']} tokens, "
        f"{scale['steps']} steps of {scale['batch']} blocks, {scale['threads']} torch thread(s).",
        "",
        "| run | objective | perplexity before → after | change | train s | real tok/s | "
        "wall s | load avg |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        if r.get("status") != "ok":
            lines.append(f"| {name} | failed | | | | | | |")
            continue
        lines.append(
            f"| {name} | {r['objective']} | {r['perplexity_before']:,.2f} → "
            f"{r['perplexity_after']:,.2f} | {r['perplexity_change_percent']:+.1f}% | "
            f"{r['train_seconds']:.0f} | {r['real_tokens_per_second']:,.0f} | "
            f"{r['wall_seconds']:.0f} | {r['load_average_start']:.1f} |"
        )
    return lines


def write(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "continued_pretraining.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = table(results["scale"], results["runs"])
    for earlier in reversed(results.get("history", [])):
        lines += ["", "Earlier run:", "", *table(earlier["scale"], earlier["runs"])]
    (RESULTS / "continued_pretraining.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--runs", default=",".join(RUNS))
    ap.add_argument("--valid-docs", type=int, default=20)
    ap.add_argument("--block", type=int, default=128, help="tokens per packed block")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8, help="blocks per step")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: best under load)")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if not C4.is_file():
        sys.exit(f"c4-demo not found at {C4} (the benchmark reads ../shared/data in place)")
    data = split(args.valid_docs)
    n_train = sum(1 for line in data["train"].read_text().splitlines() if line.strip())
    path = RESULTS / "continued_pretraining.json"
    results = json.loads(path.read_text()) if path.is_file() else {"runs": {}}
    if results.get("scale"):  # an earlier invocation's results move to the history
        results.setdefault("history", []).append(
            {"scale": results["scale"], "runs": results["runs"]}
        )
        results["runs"] = {}
    results["scale"] = {
        "train_documents": n_train,
        "valid_documents": args.valid_docs,
        "block": args.block,
        "steps": args.steps,
        "batch": args.batch,
        "threads": args.threads,
        "cores": os.cpu_count(),
    }
    for name in args.runs.split(","):
        print(f"[bench] {name} ...", flush=True)
        results["runs"][name] = run_child(config(name, data, args))
        print(f"[bench] {json.dumps(results['runs'][name])}", flush=True)
        write(results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
