"""Is parameter-efficient training cheaper? Every strategy vs full fine-tuning, side by side.

    python benchmarks/peft_speed.py            # SST-2, minilm, 4,000 examples, 1 epoch (~8 min)
    python benchmarks/peft_speed.py --quick    # 400 examples, 3 strategies: a smoke test

Each strategy trains in its own process (peak memory is its own VmHWM, model loading included)
with its defaults, on the same 4,000 SST-2 training sentences (seeded), 1 epoch, 2,048-token
batches, 2 threads. Accuracy is reported on the *report half* of the SST-2 dev set: the dev set is
split once (seed 0, `heldout.py`) into a tuning half, which defaults may be chosen on (also scored),
and a report half, which no choice is made on. `lora_dropout0.1` is LoRA with the previous
default dropout.

MFU counts the matmul FLOPs a strategy really needs per real token, as multiples of N (non-
embedding parameters; 10.8M for minilm): full 6N (forward 2N, activation gradients 2N, weight
gradients 2N); strategies that train no block weights skip the weight gradients (4N); frozen needs
no backward pass through the backbone (2N); partial (top 2 of 6 blocks) 2N + 4N x 2/6;
diff pruning (a dense difference on every block weight, masked) 6N, others 4N. The few
FLOPs of the adapters themselves are left out. Ceiling: 161 GFLOP/s (fp32 matmul, 2 cores, see
../shared/reference/machine-and-models.md). Results: benchmarks/results/peft_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from _children import report_child, run_children, vm_hwm_mb, write_results

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "data" / "sst2"
WORK = ROOT / "benchmarks" / "work" / "peft_speed"
PEAK_FLOPS = 161e9
N_PARAMS = 10.8e6
FLOPS_PER_TOKEN = {"full": 6.0, "diff_pruning": 6.0, "frozen": 2.0, "partial": 2 + 4 * 2 / 6}
STRATEGIES = {
    "full": {"name": "full"},
    "lora": {"name": "lora"},
    "lora_fa": {"name": "lora_fa"},  # LoRA with A frozen (LoRA-FA), rank 16 by default
    "lora_fa_r8": {"name": "lora_fa", "r": 8, "alpha": 16},
    "lora_fa_r32": {"name": "lora_fa", "r": 32, "alpha": 64},
    "lora_dropout0.1": {"name": "lora", "dropout": 0.1},
    "lora_qv": {"name": "lora", "target_modules": ["query", "value"]},  # the peft/paper targets
    "lora_qkv": {"name": "lora", "target_modules": ["query", "key", "value"]},
    "ia3": {"name": "ia3"},
    "adapter": {"name": "adapter"},
    "bitfit": {"name": "bitfit"},
    "prompt_tuning": {"name": "prompt_tuning"},  # 4 virtual tokens for a classifier since 12-03
    # soft-prompt lengths: 20 virtual tokens more than double a ~13-token SST-2 sentence
    "prompt_tuning_20": {"name": "prompt_tuning", "num_virtual_tokens": 20},
    "prompt_tuning_8": {"name": "prompt_tuning", "num_virtual_tokens": 8},
    "prompt_tuning_4": {"name": "prompt_tuning", "num_virtual_tokens": 4},
    "p_tuning": {"name": "p_tuning"},  # 4 virtual tokens at 1e-2 for a classifier since 12-03
    "p_tuning_20": {"name": "p_tuning", "num_virtual_tokens": 20},  # with `:1e-3`: the old default
    "p_tuning_8": {"name": "p_tuning", "num_virtual_tokens": 8},
    # the rows named p_tuning / p_tuning_20 in results/peft_prompt_default (a default briefly 4)
    "p_tuning_4": {"name": "p_tuning", "num_virtual_tokens": 4},
    "prefix_tuning": {"name": "prefix_tuning"},
    "diff_pruning": {"name": "diff_pruning"},
    "partial": {"name": "partial"},
    "frozen": {"name": "frozen"},
    "lora_gc": {"name": "lora"},  # with training.gradient_checkpointing (TRAINING below)
    "full_gc": {"name": "full"},
}
# training settings a run adds to the job's own
TRAINING = {
    "lora_gc": {"gradient_checkpointing": True},
    "full_gc": {"gradient_checkpointing": True},
}


def dev_halves() -> tuple[Path, Path]:
    """(tuning half, report half) of SST-2 dev, seed 0 (`heldout.py`): defaults may be chosen on
    the first, none was chosen on the second."""
    from heldout import split_halves

    return split_halves(SST2 / "dev.tsv", seed=0)


def child(run_name: str, n_train: int) -> dict[str, Any]:
    """One training run; `run_name` is a STRATEGIES key, optionally `:LR` (a learning rate in
    place of the strategy's own) and `@SEED` (default seed 0): e.g. `p_tuning_8:3e-3@1`."""
    import tunewise

    name, _, seed = run_name.partition("@")
    name, _, lr = name.partition(":")

    cfg = {
        "model": {"name": "minilm", "max_length": 128},
        "task": {"type": "classification"},
        "data": {
            "train": str(SST2 / "train.tsv"),
            "validation": str(dev_halves()[1]),
            "text_column": ["sentence", "content"],
        },
        "strategy": STRATEGIES[name],
        "training": {
            "epochs": 1,
            "max_train_samples": n_train,
            "max_tokens_per_batch": 2048,
            "num_threads": 2,
            **({"learning_rate": float(lr)} if lr else {}),
            **TRAINING.get(name, {}),
        },
        "eval": {"each_epoch": False, "batch_size": 128},
        "output_dir": str(WORK / f"run-{name}{lr}"),
        "seed": int(seed or 0),
    }
    result = tunewise.finetune(cfg, overwrite=True)
    t, p = result.manifest["training"], result.manifest["strategy"]["parameters"]
    flops = FLOPS_PER_TOKEN.get(STRATEGIES[name]["name"], 4.0) * N_PARAMS
    peak = round(vm_hwm_mb(), 1)  # before the extra evaluation below loads a second copy
    return {
        "strategy": run_name,
        "report_accuracy": round(result.metrics["validation"]["accuracy"], 4),
        # the half a default may be chosen on (scored after training; it chose nothing here)
        "tuning_accuracy": round(
            tunewise.load(result.run_dir).evaluate(dev_halves()[0], progress=False)["accuracy"],
            4,
        ),
        "trainable_percent": p["percent"],
        "learning_rate": t["learning_rate"],
        "steps": t["steps"],
        "train_seconds": t["train_seconds"],
        "real_tokens_per_second": t["real_tokens_per_second"],
        "mfu": round(flops * t["real_tokens_per_second"] / PEAK_FLOPS, 4),
        "peak_rss_mb": peak,
    }


def markdown(out: dict[str, Any]) -> str:
    by_name = {r["strategy"]: r for r in out["runs"]}
    lines = [
        "# Parameter-efficient vs full fine-tuning: SST-2, minilm",
        "",
        f"{out['setup']}. Load average {out['load_average']['start']} at the start, "
        f"{out['load_average']['end']} at the end.",
        "",
        "| strategy | tuning-half acc | report-half acc | trainable % | real tok/s | × full | MFU "
        "| peak RSS MB | × full |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["runs"]:
        seed = r["strategy"].partition("@")[2]
        full = by_name.get(f"full@{seed}" if seed else "full")  # same seed, same script run
        speed = r["real_tokens_per_second"] / full["real_tokens_per_second"] if full else 1
        memory = r["peak_rss_mb"] / full["peak_rss_mb"] if full else 1
        lines.append(
            f"| {r['strategy']} | {r.get('tuning_accuracy', float('nan')):.4f} | "
            f"{r['report_accuracy']:.4f} | {r['trainable_percent']:.2f} | "
            f"{r['real_tokens_per_second']:,.0f} | {speed:.2f} | {r['mfu']:.0%} | "
            f"{r['peak_rss_mb']:,.0f} | {memory:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--output", default="peft_speed", help="results/<output>.json and .md")
    parser.add_argument("--seeds", default="0", help="comma-separated; runs are named NAME@SEED")
    args = parser.parse_args()
    n_train = 400 if args.quick else 4000
    if args.child:
        report_child(child(args.child, n_train))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = ["full", "lora", "frozen"] if args.quick else args.strategies.split(",")
    seeds = args.seeds.split(",")
    if seeds != ["0"]:
        names = [f"{n}@{s}" for s in seeds for n in names]
    start = round(os.getloadavg()[0], 2)
    runs = run_children(__file__, names, ["--quick"] if args.quick else [])
    out = {
        "benchmark": "every strategy vs full fine-tuning, SST-2, minilm",
        "setup": (
            f"{os.cpu_count()} CPU cores, {n_train} SST-2 training sentences, 1 epoch, 2,048-token "
            f"batches, 2 threads, each strategy's defaults; accuracy on the 436-sentence report "
            f"half of dev; {time.strftime('%Y-%m-%d')}"
        ),
        "quick": args.quick,
        "runs": runs,
    }
    stem = f"{args.output}_quick" if args.quick else args.output
    write_results(stem, out, start, markdown)


if __name__ == "__main__":
    main()
