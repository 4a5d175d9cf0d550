"""Multi-task SST-2 + CoNLL-2003 on one minilm vs the two single-task runs with the same budget
(the same steps in total): both metrics, wall time, total artifact size.

    python benchmarks/multitask.py           # 4,000 examples of each, 1 epoch
    python benchmarks/multitask.py --quick   # smoke: 200 of each, 20 steps, small dev sets

Writes benchmarks/results/multitask.json (multitask_quick.json with --quick).
"""

from __future__ import annotations

import argparse

import tunewise
from _techniques import DATA, WORK, conll_report_half, dir_bytes, sst2_files, timed, write_results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--train-samples", type=int, default=4000)
    parser.add_argument("--strategy", default="lora")
    args = parser.parse_args()
    n = 200 if args.quick else args.train_samples
    sst2 = sst2_files(64 if args.quick else None)
    conll = {
        "train": str(DATA / "conll2003" / "train.txt"),
        "validation": conll_report_half(),
        "format": "conll",
    }
    tasks = {
        "sst2": {"task": {"type": "classification"}, "data": sst2},
        "conll": {"task": {"type": "token_classification"}, "data": conll},
    }
    training = {"epochs": 1, "max_train_samples": n, "max_eval_samples": 64 if args.quick else None}
    tag = "-quick" if args.quick else ""
    base = {
        "model": {"name": "minilm"},
        "strategy": {"name": args.strategy},
        "eval": {"each_epoch": False},
        "seed": 0,
    }
    multi_steps = 20 if args.quick else None
    multi = {
        **base,
        "tasks": tasks,
        "multitask": {"sampling": "proportional"},
        "training": {**training, **({"max_steps": multi_steps} if multi_steps else {})},
        "output_dir": str(WORK / f"multitask{tag}"),
    }
    run, seconds = timed(tunewise.finetune, multi, overwrite=True)
    steps = run.manifest["training"]["steps"]
    v = run.metrics["validation"]
    results = {
        "quick": args.quick,
        "multitask": {
            "sst2_accuracy": v["sst2"]["accuracy"],
            "conll_f1": v["conll"]["f1"],
            "combined": v["combined"],
            "steps": steps,
            "wall_seconds": seconds,
            "artifact_bytes": dir_bytes(run.run_dir),
        },
        "single": {},
    }
    for name, spec in tasks.items():  # the same total steps, split evenly
        cfg = {
            **base,
            **spec,
            "training": {**training, "max_steps": max(1, steps // 2)},
            "output_dir": str(WORK / f"single-{name}{tag}"),
        }
        single, s = timed(tunewise.finetune, cfg, overwrite=True)
        metric = "accuracy" if name == "sst2" else "f1"
        results["single"][name] = {
            metric: single.metrics["validation"][metric],
            "wall_seconds": s,
            "artifact_bytes": dir_bytes(single.run_dir),
        }
    write_results("multitask", args.quick, results)


if __name__ == "__main__":
    main()
