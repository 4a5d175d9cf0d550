"""Distillation on SST-2: a full fine-tuned minilm teacher (6 blocks) → a 3-block student
(blocks 0, 2, 4), against the same 3-block student trained without the teacher (alpha = 1).
Issue 14's bar: the student keeps >= 97% of the teacher's accuracy at <= 55% of its latency and
beats the student trained without the teacher.

    python benchmarks/distill.py           # 4,000 training examples, full dev set
    python benchmarks/distill.py --quick   # smoke: 200 examples, 10 steps each, 64 dev examples

Writes benchmarks/results/distill.json (distill_quick.json with --quick).
"""

from __future__ import annotations

import argparse

import tunewise
from _techniques import WORK, sst2_files, timed, write_results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--train-samples", type=int, default=4000)
    args = parser.parse_args()
    data = sst2_files(64 if args.quick else None)
    training = {"epochs": 1, "max_train_samples": 200 if args.quick else args.train_samples}
    if args.quick:
        training["max_steps"] = 10
    tag = "-quick" if args.quick else ""

    def config(name: str, **extra: object) -> dict:
        return {
            "model": {"name": "minilm"},
            "task": {"type": "classification"},
            "data": data,
            "strategy": {"name": "full"},
            "training": training,
            "eval": {"each_epoch": False},
            "output_dir": str(WORK / f"distill-{name}{tag}"),
            "seed": 0,
            **extra,
        }

    teacher, t_seconds = timed(tunewise.finetune, config("teacher"), overwrite=True)
    layers = [0, 2, 4]
    results = {"quick": args.quick, "student_layers": layers, "teacher_seconds": t_seconds}
    for name, alpha in (("student_kd", 0.5), ("student_no_teacher", 1.0)):
        distill = {
            "teacher": str(teacher.run_dir),
            "student_layers": layers,
            "alpha": alpha,
            "temperature": 2.0,
        }
        run, seconds = timed(tunewise.finetune, config(name, distill=distill), overwrite=True)
        results[name] = {**run.manifest["distillation"], "wall_seconds": seconds}
    kd, plain = results["student_kd"], results["student_no_teacher"]
    results["summary"] = {
        "teacher_accuracy": kd["teacher"]["accuracy"],
        "student_accuracy": kd["student"]["accuracy"],
        "student_no_teacher_accuracy": plain["student"]["accuracy"],
        "accuracy_kept": kd["student_over_teacher"].get("accuracy"),
        "latency_ratio": kd["student_over_teacher"]["latency"],
    }
    write_results("distill", args.quick, results)


if __name__ == "__main__":
    main()
