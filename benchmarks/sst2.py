"""SST-2 benchmark: every strategy on minilm, plus the usual hand-written HF recipe as a baseline.

    make bench                                  # everything (about an hour on 2 CPU cores)
    python benchmarks/sst2.py --only baseline   # just the throughput comparison (~10 min)
    python benchmarks/sst2.py --train-samples 4000 --only strategies

Writes benchmarks/results/sst2.json (and .md). Each training run is a separate process so its
peak RSS is its own. Throughput is real (non-pad) tokens per second of training; MFU is
the matmul FLOPs per token the strategy really needs (6N for full fine-tuning, less for
strategies that skip weight or activation gradients: see FLOPS_PER_TOKEN) times tokens/s, over
the matmul ceiling measured on this machine (161 GFLOP/s, 2 cores); N is the non-embedding
parameter count (10.8M for minilm).
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
SST2 = ROOT.parent / "shared" / "data" / "sst2"
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work"
PEAK_FLOPS = float(os.environ.get("TUNEWISE_PEAK_FLOPS", 161e9))
NON_EMBEDDING_PARAMS = 10.8e6
REFERENCE = {"dev_accuracy": 0.8865, "real_tokens_per_second": 1375, "seconds": 652.2}
# --held-out: (tuning half, report half) of dev.tsv (benchmarks/heldout.py, seed 0); runs then
# validate (and pick checkpoints) on the tuning half and report the other half as `test`.
HELD_OUT: tuple[Path, Path] | None = None

# Token-budget batches (see training/batching.py): SST-2 sentences are ~13 tokens, so 32-example
# batches underfeed the matrix units. Fewer, larger steps get a larger learning rate.
STRATEGIES = {
    "full": {"strategy": {"name": "full"}},
    "partial": {"strategy": {"name": "partial", "top_blocks": 2}},
    "frozen": {"strategy": {"name": "frozen"}},
    "lora": {"strategy": {"name": "lora"}},
    "bitfit": {"strategy": {"name": "bitfit"}},
}


def base_config(out: Path, train_samples: int | None, **training) -> dict:
    if HELD_OUT:
        data = {"train": str(SST2 / "train.tsv"), "validation": str(HELD_OUT[0])}
        data |= {"test": str(HELD_OUT[1]), "text_column": ["sentence", "content"]}
        return {**_config(out, train_samples, **training), "data": data}
    return _config(out, train_samples, **training)


def _config(out: Path, train_samples: int | None, **training) -> dict:
    return {
        "model": {"name": "minilm", "max_length": 128},
        "task": {"type": "classification"},
        "data": {
            "train": str(SST2 / "train.tsv"),
            "validation": str(SST2 / "dev.tsv"),
            "text_column": ["sentence", "content"],
        },
        "training": {"epochs": 1, "max_train_samples": train_samples, **training},
        "eval": {"each_epoch": False, "batch_size": 128},
        "output_dir": str(out),
        "seed": 0,
    }


def run_child(kind: str, payload: dict) -> dict:
    """Run one training in a fresh process; returns its result dict (with peak RSS)."""
    cmd = [sys.executable, __file__, "--child", kind, json.dumps(payload)]
    started = time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-2000:]
        return {"status": "failed", "error": tail, "wall_seconds": time.perf_counter() - started}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_tunewise(cfg: dict) -> dict:
    import tunewise

    result = tunewise.finetune(cfg, overwrite=True)
    t = result.manifest["training"]
    p = result.manifest["strategy"]["parameters"]
    return {
        "status": "ok",
        "dev_accuracy": result.metrics["validation"]["accuracy"],
        # the report half of dev (--held-out): no choice was made on it
        **(
            {"report_accuracy": result.metrics["test"]["accuracy"]}
            if "test" in result.metrics
            else {}
        ),
        "trainable_params": p["trainable"],
        "trainable_percent": p["percent"],
        "learning_rate": t["learning_rate"],
        "steps": t["steps"],
        "n_train": t["n_train"],
        "train_seconds": t["train_seconds"],
        "real_tokens": t["real_tokens"],
        "real_tokens_per_second": t["real_tokens_per_second"],
    }


def child_hf_baseline(cfg: dict) -> dict:
    """The usual hand-written recipe: HF Trainer, padding="max_length" (128), random order."""
    import numpy as np
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from tunewise.data.readers import read_records
    from tunewise.models import resolve

    set_seed(0)
    path = resolve("minilm").path
    tok = AutoTokenizer.from_pretrained(path)
    train = [(r["sentence"], int(r["label"])) for _, r in read_records(SST2 / "train.tsv")]
    dev = [(r["content"], int(r["label"])) for _, r in read_records(SST2 / "dev.tsv")]
    rng = np.random.default_rng(0)
    train = [train[i] for i in rng.permutation(len(train))[: cfg["train_samples"]]]

    def encode(rows):
        enc = tok([t for t, _ in rows], padding="max_length", truncation=True, max_length=128)
        return Dataset.from_dict({**enc, "labels": [y for _, y in rows]})

    train_ds, dev_ds = encode(train), encode(dev)
    real_tokens = int(np.sum(train_ds["attention_mask"]))
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    args = TrainingArguments(
        output_dir=str(WORK / "hf-baseline"),
        per_device_train_batch_size=32,
        per_device_eval_batch_size=128,
        num_train_epochs=1,
        learning_rate=cfg["learning_rate"],
        warmup_steps=0.06,
        weight_decay=0.01,
        save_strategy="no",
        report_to="none",
        seed=0,
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train_ds)
    out = trainer.train()
    logits = trainer.predict(dev_ds).predictions
    acc = float((logits.argmax(-1) == np.array(dev_ds["labels"])).mean())
    seconds = out.metrics["train_runtime"]
    return {
        "status": "ok",
        "dev_accuracy": acc,
        "n_train": len(train_ds),
        "train_seconds": round(seconds, 2),
        "real_tokens": real_tokens,
        "real_tokens_per_second": round(real_tokens / seconds, 1),
        "steps": int(out.global_step),
    }


# Matmul FLOPs per real token, as multiples of N (non-embedding params): forward 2N; backward
# 2N for activation gradients through every layer below which something trains, plus 2N for
# weight gradients of what trains. Full: 6N. LoRA / BitFit: ~4N (every layer passes gradients
# down, their own weight gradients are tiny). Partial, top k of 6 blocks: 2N + 4N·k/6. Frozen: 2N.
FLOPS_PER_TOKEN = {"full": 6.0, "lora": 4.0, "bitfit": 4.0, "partial": 2 + 4 * 2 / 6, "frozen": 2.0}


def with_mfu(row: dict, strategy: str = "full") -> dict:
    if row.get("status") == "ok":
        flops = FLOPS_PER_TOKEN[strategy] * NON_EMBEDDING_PARAMS * row["real_tokens_per_second"]
        row["mfu"] = round(flops / PEAK_FLOPS, 4)
    return row


def strategies(
    train_samples: int | None, names: list[str], budget: int, lr: float | None
) -> list[dict]:
    rows = []
    for name in names:
        cfg = base_config(
            WORK / f"sst2-{name}", train_samples, max_tokens_per_batch=budget, learning_rate=lr
        )
        cfg.update(STRATEGIES[name])
        print(f"[bench] {name} ...", flush=True)
        row = with_mfu(
            {"strategy": name, "max_tokens_per_batch": budget, **run_child("tunewise", cfg)}
        )
        print(f"[bench] {json.dumps(row)}", flush=True)
        rows.append(row)
    return rows


def baseline(train_samples: int, budget: int) -> dict:
    """Same data subset, epochs and learning rate: max-length recipe vs. tunewise."""
    lr = 5e-5
    rows = {}
    print("[bench] hf max-length baseline ...", flush=True)
    rows["hf_max_length"] = with_mfu(
        run_child("hf", {"train_samples": train_samples, "learning_rate": lr})
    )
    print("[bench] tunewise, fixed 32-example batches ...", flush=True)
    cfg = base_config(WORK / "sst2-tw32", train_samples, batch_size=32, learning_rate=lr)
    cfg["strategy"] = {"name": "full"}
    rows["tunewise_batch32"] = with_mfu(run_child("tunewise", cfg))
    print("[bench] tunewise, token budget ...", flush=True)
    cfg = base_config(WORK / "sst2-twbudget", train_samples, max_tokens_per_batch=budget)
    cfg["strategy"] = {"name": "full"}
    rows["tunewise_token_budget"] = with_mfu(run_child("tunewise", cfg))
    base_tps = rows["hf_max_length"].get("real_tokens_per_second") or float("nan")
    for key in ("tunewise_batch32", "tunewise_token_budget"):
        tps = rows[key].get("real_tokens_per_second")
        if tps:
            rows[key]["speedup_vs_max_length"] = round(tps / base_tps, 2)
    return {"train_samples": train_samples, "learning_rate": lr, "runs": rows}


def write(results: dict, name: str = "sst2") -> None:
    for row in results.get("strategies", []):  # one MFU definition for every row, old or new
        with_mfu(row, row["strategy"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = results.get("strategies", [])
    report = any("report_accuracy" in r for r in rows)  # --held-out: the half nothing chose on
    lines = [
        "| strategy | "
        + ("tuning-half acc | report-half acc" if report else "dev acc")
        + " | trainable % | train s | real tok/s | MFU | peak RSS MB |",
        "|---|---|---|---|---|---|---|" + ("---|" if report else ""),
    ]
    for r in results.get("strategies", []):
        if r.get("status") != "ok":
            lines.append(f"| {r['strategy']} | failed | | | | | |")
            continue
        lines.append(
            f"| {r['strategy']} | {r['dev_accuracy']:.4f} | "
            + (f"{r['report_accuracy']:.4f} | " if report else "")
            + f"{r['trainable_percent']:.2f} | "
            f"{r['train_seconds']:.0f} | {r['real_tokens_per_second']:,.0f} | {r['mfu']:.0%} | "
            f"{r.get('peak_rss_mb', 0):,.0f} |"
        )
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--only", choices=["strategies", "baseline"], default=None)
    ap.add_argument(
        "--held-out", action="store_true", help="validate on half of dev, report the other half"
    )
    ap.add_argument("--train-samples", type=int, default=None, help="strategies: subset size")
    ap.add_argument("--baseline-samples", type=int, default=3000)
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--learning-rate", type=float, default=None, help="default: each strategy's")
    ap.add_argument("--max-tokens", type=int, default=2048, help="token budget per batch")
    ap.add_argument(
        "--output",
        default=None,
        help="results/<output>.json (default: sst2, or sst2_heldout with --held-out)",
    )
    args = ap.parse_args()
    args.output = args.output or ("sst2_heldout" if args.held_out else "sst2")
    if args.child:
        import resource

        kind, payload = args.child[0], json.loads(args.child[1])
        row = child_tunewise(payload) if kind == "tunewise" else child_hf_baseline(payload)
        row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(row))
        return
    if not SST2.is_dir():
        sys.exit(f"SST-2 not found at {SST2} (the benchmark reads ../shared/data in place)")
    if args.held_out:
        from heldout import split_halves

        global HELD_OUT
        HELD_OUT = split_halves(SST2 / "dev.tsv", seed=0)
    path = RESULTS / f"{args.output}.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results["machine"] = {"cores": os.cpu_count(), "peak_flops": PEAK_FLOPS, "reference": REFERENCE}
    if args.only in (None, "baseline"):
        results["baseline"] = baseline(args.baseline_samples, args.max_tokens)
        write(results, args.output)
    if args.only in (None, "strategies"):
        rows = strategies(
            args.train_samples, args.strategies.split(","), args.max_tokens, args.learning_rate
        )
        fresh = {r["strategy"] for r in rows}  # re-running some strategies keeps the others
        kept = [r for r in results.get("strategies", []) if r["strategy"] not in fresh]
        results["strategies"] = sorted(
            kept + rows, key=lambda r: list(STRATEGIES).index(r["strategy"])
        )
        results["strategies_train_samples"] = args.train_samples or "all"
        write(results, args.output)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
