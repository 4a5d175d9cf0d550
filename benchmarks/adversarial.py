"""Adversarial training on SST-2 (minilm): none vs FGM vs PGD, clean accuracy and accuracy under
`eval --perturb typos,synonyms` (issue 14's bar: perturbed accuracy up >= 1 point, clean
accuracy down <= 0.5).

    python benchmarks/adversarial.py            # 4,000 training examples, full dev set
    python benchmarks/adversarial.py --quick    # smoke: 100 examples, 4 steps, 32 dev examples

Writes benchmarks/results/adversarial.json (adversarial_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json

import tunewise
from _techniques import RESULTS, WORK, sst2_files, timed, write_results

METHODS = {"none": None, "fgm": {"method": "fgm"}, "pgd": {"method": "pgd", "steps": 3}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--train-samples", type=int, default=4000)
    parser.add_argument("--strategy", default="lora")
    parser.add_argument(
        "--methods", default="none,fgm,pgd", help="a subset re-runs only those (others kept)"
    )
    parser.add_argument("--seed", type=int, default=0, help="runs of seed S > 0 are named NAME@S")
    args = parser.parse_args()
    data = sst2_files(32 if args.quick else None)
    training = {"epochs": 1, "max_train_samples": 100 if args.quick else args.train_samples}
    if args.quick:
        training["max_steps"] = 4
    results = {"quick": args.quick, "strategy": args.strategy, "runs": {}}
    previous = RESULTS / f"adversarial{'_quick' if args.quick else ''}.json"
    if previous.is_file():  # runs of the methods not re-run now are kept
        results["runs"] = json.loads(previous.read_text())["runs"]
    for name, adversarial in METHODS.items():
        if name not in args.methods.split(","):
            continue
        key = f"{name}@{args.seed}" if args.seed else name
        out = WORK / f"adversarial-{key}{'-quick' if args.quick else ''}"
        cfg = {
            "model": {"name": "minilm"},
            "task": {"type": "classification"},
            "data": data,
            "strategy": {"name": args.strategy},
            "training": {**training, "adversarial": adversarial},
            "eval": {"each_epoch": False},
            "output_dir": str(out),
            "seed": args.seed,
        }
        run, seconds = timed(tunewise.finetune, cfg, overwrite=True)
        metrics = tunewise.api.evaluate(run.run_dir, data["validation"], perturb="typos,synonyms")
        results["runs"][key] = {
            "clean_accuracy": metrics["accuracy"],
            **{f"{k}_accuracy": v["accuracy"] for k, v in metrics["perturbed"].items()},
            "train_seconds": run.manifest["training"]["train_seconds"],
            "wall_seconds": seconds,
            "settings": run.manifest["config"]["training"]["adversarial"],
        }
    write_results("adversarial", args.quick, results)


if __name__ == "__main__":
    main()
