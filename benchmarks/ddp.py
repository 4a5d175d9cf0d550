"""DDP on 2 CPU processes (torchrun, gloo) vs 1 process with the same global batch: wall time
and loss curves of the real `tunewise train` command.

    python benchmarks/ddp.py            # SST-2 subset (2,000 examples), minilm + LoRA, 1 epoch
    python benchmarks/ddp.py --quick    # smoke: 128 examples, 16 steps

On this shared 2-core machine no speed-up is expected (two processes split the same two cores
and add an all-reduce per step); the point is the launch path and that the loss curves agree.
Writes benchmarks/results/ddp[_quick].{json,md} and ddp[_quick]_loss.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "data" / "sst2"
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work" / "ddp"


def config(quick: bool, per_device_batch: int, out: Path) -> dict:
    n = 128 if quick else 2000
    return {
        "model": {"name": "minilm", "max_length": 64},
        "task": {"type": "classification"},
        "data": {
            "train": str(SST2 / "train.tsv"),
            "validation": str(SST2 / "dev.tsv"),
            "text_column": ["sentence", "content"],
        },
        "strategy": {"name": "lora"},
        "training": {
            "epochs": 1,
            "batch_size": per_device_batch,
            "learning_rate": 1e-3,
            "max_train_samples": n,
            "max_eval_samples": 64 if quick else 872,
            "logging_steps": 1 if quick else 5,
            "num_threads": 1,
        },
        "eval": {"each_epoch": False},
        "output_dir": str(out),
        "seed": 42,
    }


def losses(run_dir: Path) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars("train/loss")]


def run(cmd: list[str], cfg: dict, name: str) -> dict:
    out = Path(cfg["output_dir"])
    path = WORK / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    proc = subprocess.run(
        [*cmd, "-m", "tunewise.cli", "train", str(path), "--overwrite"],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    manifest = json.loads((out / "tunewise.json").read_text())
    return {
        "wall_seconds": round(wall, 1),
        "train_seconds": manifest["training"]["train_seconds"],
        "steps": manifest["training"]["steps"],
        "final_train_loss": manifest["training"]["final_train_loss"],
        "validation_accuracy": manifest["metrics"]["validation"]["accuracy"],
        "loss_curve": losses(out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    load_start = os.getloadavg()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    one = run([sys.executable], config(args.quick, 16, WORK / "one"), "one")
    two = run([*torchrun, "--nproc_per_node", "2"], config(args.quick, 8, WORK / "two"), "two")
    pairs = list(zip(one["loss_curve"], two["loss_curve"], strict=False))
    max_diff = max(abs(a[1] - b[1]) for a, b in pairs) if pairs else None
    result = {
        "global_batch": 16,
        "one_process": one,
        "two_processes": two,
        "max_abs_loss_difference_per_step": max_diff,
        "load_average": {"start": load_start, "end": os.getloadavg()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"ddp{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, r in (("1 process × 16", one), ("2 processes × 8 (DDP)", two)):
        ax.plot(*zip(*r["loss_curve"], strict=True), label=label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / f"ddp{suffix}_loss.png", dpi=100)
    md = [
        "# DDP: 2 CPU processes vs 1, same global batch (16), minilm + LoRA on SST-2",
        "",
        f"Load average {load_start[0]:.1f} at start (shared 2-core machine).",
        "",
        "| | wall s | train s | steps | final train loss | validation acc |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in (("1 process", one), ("2 processes", two)):
        md.append(
            f"| {label} | {r['wall_seconds']:.0f} | {r['train_seconds']:.0f} | {r['steps']} | "
            f"{r['final_train_loss']:.4f} | {r['validation_accuracy']:.4f} |"
        )
    md += [
        "",
        f"Largest per-step loss difference: {max_diff}",
        "",
        f"![loss](ddp{suffix}_loss.png)",
    ]
    (RESULTS / f"ddp{suffix}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
