"""Strategy sweeps with `tunewise sweep`, and what the advisor recommends next to what won.

    python benchmarks/sweep_sst2.py                          # SST-2, minilm, 4,000 examples
    python benchmarks/sweep_sst2.py --train-samples 500      # the small-data regime
    python benchmarks/sweep_sst2.py --case conll             # CoNLL-2003 NER (if the task exists)
    python benchmarks/sweep_sst2.py --case instruction       # smollm2-135m on the alpaca demo
    python benchmarks/sweep_sst2.py --case bbc --train-samples 1000   # out of sample (below)

`--case bbc` is the advisor's out-of-sample check: BBC News topic classification (5 classes, long
news texts cut to 128 tokens), a dataset and a text length the advisor's priors were never
calibrated on; the split is tune_bbc.py's (seeded, stratified), ranked on its validation part.

Writes benchmarks/results/sweep_<case>[_<n>].{json,md} and the sweep's plots beside them. The
sweep itself is resumable: entries already finished under benchmarks/work/ are not re-run (pass
--fresh to start over). Every entry runs in its own process, so peak RSS is its own; wall
seconds include model loading and the final evaluation. The machine is shared, so timings carry
the load average measured at the start and end (recorded in the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work"
ALL = (
    "full,partial,frozen,lora,bitfit,ia3,adapter,prompt_tuning,prefix_tuning,p_tuning,"
    "diff_pruning,qlora"
)


def case_config(case: str, train_samples: int, max_tokens: int) -> tuple[dict, str, str]:
    """(config, task, data file for the advisor) of a benchmark case."""
    training = {"epochs": 1, "max_train_samples": train_samples, "max_tokens_per_batch": max_tokens}
    if case == "sst2":
        cfg = {
            "model": {"name": "minilm", "max_length": 128},
            "task": {"type": "classification"},
            "data": {
                "train": str(SHARED / "sst2" / "train.tsv"),
                "validation": str(SHARED / "sst2" / "dev.tsv"),
                "text_column": ["sentence", "content"],
            },
        }
    elif case == "conll":
        cfg = {
            "model": {"name": "minilm", "max_length": 128},
            "task": {"type": "token_classification"},
            "data": {
                "train": str(SHARED / "conll2003" / "train.txt"),
                "validation": str(SHARED / "conll2003" / "valid.txt"),
            },
        }
        training["epochs"] = 3  # NER needs more than one pass at this size (reference notes)
    elif case == "bbc":
        from tune_bbc import WORK as BBC_WORK  # benchmarks/ is on sys.path
        from tune_bbc import split

        paths = split(BBC_WORK / "full")
        cfg = {
            "model": {"name": "minilm", "max_length": 128},
            "task": {"type": "classification"},
            "data": {"train": paths["train"], "validation": paths["validation"]},
        }
    elif case == "instruction":
        cfg = {
            "model": {"name": "smollm2-135m", "max_length": 256},
            "task": {"type": "instruction"},
            "data": {"train": str(SHARED / "alpaca-en-demo" / "train.json")},
        }
        training.pop("max_tokens_per_batch")
        training["batch_size"] = 4
    else:
        raise SystemExit(f"unknown case {case}")
    cfg.update(
        {
            "training": training,
            "eval": {"each_epoch": False, "batch_size": 64},
            "seed": 0,
        }
    )
    return cfg, cfg["task"]["type"], cfg["data"]["train"]


def advisor_vs_measured(
    task: str, model: str, train_size: int, train_file: str, names: list[str], measured: list[str]
) -> tuple[list[dict], list[str], float | None]:
    """The advisor's rows for the job (best first, among `names`), its order over the measured
    strategies, and that order's Spearman correlation with `measured` (best first; None for
    fewer than three)."""
    from tunewise import api

    advice = api.recommend(task, model, train_size=train_size, data=train_file)
    advice = [a for a in advice if a["strategy"] in names]
    advised = [a["strategy"] for a in advice if a["strategy"] in measured]
    if len(measured) <= 2:
        return advice, advised, None
    from scipy.stats import spearmanr

    rho = spearmanr([measured.index(n) for n in advised], list(range(len(advised))))
    return advice, advised, round(float(rho.statistic), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--case", choices=["sst2", "conll", "instruction", "bbc"], default="sst2")
    ap.add_argument("--train-samples", type=int, default=4000)
    ap.add_argument("--strategies", default=None, help=f"default: {ALL}")
    ap.add_argument("--max-tokens", type=int, default=2048, help="token budget per batch")
    ap.add_argument("--fresh", action="store_true", help="discard finished entries first")
    args = ap.parse_args()

    from tunewise import api
    from tunewise.registry import TASKS

    cfg, task, train_file = case_config(args.case, args.train_samples, args.max_tokens)
    if task not in TASKS:
        sys.exit(f"task '{task}' is not registered in this checkout; skipping the {args.case} case")
    default = "lora,prompt_tuning,prefix_tuning,full" if args.case == "instruction" else ALL
    names = (args.strategies or default).split(",")
    tag = f"sweep_{args.case}_{args.train_samples}"
    out = WORK / tag
    if args.fresh and out.exists():
        shutil.rmtree(out)
    load_before = os.getloadavg()
    done_before = {p.name.split(".")[0] for p in out.glob("*.result.json")}
    rows = api.sweep(cfg, names, out)
    load_after = os.getloadavg()
    previous = RESULTS / f"sweep_{args.case}_{args.train_samples}.json"
    if done_before >= set(names) and previous.is_file():  # nothing ran now: keep the old record
        old = json.loads(previous.read_text())
        load_before, load_after = old["load_average"]["start"], old["load_average"]["end"]

    from tunewise.registry import TASKS as T

    metric = T.get(task).default_metric
    greater = T.get(task).greater_is_better
    ok = [r for r in rows if r["status"] == "ok" and metric in r["metrics"]]
    ranked = sorted(ok, key=lambda r: r["metrics"][metric], reverse=greater)
    measured = [r["strategy"] for r in ranked]
    advice, _, agreement = advisor_vs_measured(
        task, cfg["model"]["name"], args.train_samples, train_file, names, measured
    )
    result = {
        "case": args.case,
        "rank_correlation_advisor_vs_measured": agreement,
        "scale": {
            "train_samples": args.train_samples,
            "validation": "tune_bbc.py's validation split"
            if args.case == "bbc"
            else "full dev set",
            "epochs": cfg["training"]["epochs"],
            "max_tokens_per_batch": cfg["training"].get("max_tokens_per_batch"),
        },
        "metric": metric,
        "load_average": {"start": load_before, "end": load_after},
        "sweep_seconds": round(sum(r.get("wall_seconds") or 0 for r in rows), 1),
        "entries": rows,
        "winner": ranked[0]["strategy"] if ranked else None,
        "measured_order": [r["strategy"] for r in ranked],
        "advisor_order": [a["strategy"] for a in advice],
        "advisor": advice,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{tag}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = (out / "sweep.md").read_text().replace("](", f"]({tag}_")
    for png in out.glob("*.png"):
        shutil.copy(png, RESULTS / f"{tag}_{png.name}")
    md += (
        f"\nScale: {args.train_samples} training examples, full validation set, "
        f"{cfg['training']['epochs']} epoch(s); load average {load_before[0]:.1f} → "
        f"{load_after[0]:.1f} (shared 2-core machine).\n\n"
        f"Measured order: {', '.join(result['measured_order'])}\n\n"
        f"Advisor's order: {', '.join(result['advisor_order'])} (Spearman rank correlation "
        f"with the measured order over the strategies that ran: {agreement})\n"
    )
    (RESULTS / f"{tag}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
