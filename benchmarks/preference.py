"""Preference tuning (DPO) of smollm2-135m with LoRA on pairs built from alpaca-en-demo:
chosen = the record's reference answer; rejected = the answer of another record (a seeded
derangement, so every rejected answer is fluent but off-topic). Held-out preference accuracy
and the chosen answers' perplexity, before → after.

    python benchmarks/preference.py           # 400 training pairs, 100 held out, 1 epoch
    python benchmarks/preference.py --quick   # smoke: 16 pairs, 2 steps, 8 held out

Writes benchmarks/results/preference.json (preference_quick.json with --quick). The pairs are
written under benchmarks/work (git-ignored), never into the repository.
"""

from __future__ import annotations

import argparse
import json
import random

import tunewise
from _techniques import DATA, WORK, timed, write_results


def pairs(n_train: int, n_eval: int) -> tuple[str, str]:
    records = json.loads((DATA / "alpaca-en-demo" / "train.json").read_text(encoding="utf-8"))
    rng = random.Random(0)
    rng.shuffle(records)
    records = records[: n_train + n_eval]
    others = list(range(len(records)))
    rng.shuffle(others)
    out = []
    for i, rec in enumerate(records):
        j = others[i] if others[i] != i else others[(i + 1) % len(others)]
        prompt = rec["instruction"] + (f"\n\n{rec['input']}" if rec.get("input") else "")
        out.append({"prompt": prompt, "chosen": rec["output"], "rejected": records[j]["output"]})
    paths = []
    for name, part in (("train", out[:n_train]), ("eval", out[n_train:])):
        path = WORK / f"preference-{name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
        paths.append(str(path))
    return paths[0], paths[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--method", default="dpo")
    parser.add_argument("--train-pairs", type=int, default=400)
    args = parser.parse_args()
    train, held = pairs(16, 8) if args.quick else pairs(args.train_pairs, 100)
    training = {"epochs": 1, "batch_size": 4}
    if args.quick:
        training["max_steps"] = 2
    cfg = {
        "model": {"name": "smollm2-135m", "max_length": 256},
        "task": {"type": "preference", "method": args.method, "beta": 0.1},
        "data": {"train": train, "validation": held},
        "strategy": {"name": "lora"},
        "training": training,
        "eval": {"each_epoch": False, "batch_size": 8},
        "output_dir": str(WORK / f"preference{'-quick' if args.quick else ''}"),
        "seed": 0,
    }
    run, seconds = timed(tunewise.finetune, cfg, overwrite=True)
    v = run.metrics["validation"]
    keys = ("preference_accuracy", "reward_margin", "logprob_accuracy", "perplexity")
    results = {
        "quick": args.quick,
        "method": args.method,
        "train_pairs": run.manifest["training"]["n_train"],
        "held_out": v["n_examples"],
        **{k: {"before": v.get(f"{k}_before"), "after": v[k]} for k in keys},
        "train_seconds": run.manifest["training"]["train_seconds"],
        "wall_seconds": seconds,
    }
    write_results("preference", args.quick, results)


if __name__ == "__main__":
    main()
