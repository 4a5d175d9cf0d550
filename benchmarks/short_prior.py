"""The advisor's short-run priors, re-measured over seeds: each strategy after one short run.

    python benchmarks/short_prior.py                            # every strategy, seeds 0-2
    python benchmarks/short_prior.py --strategies full,lora --seeds 0,1
    python benchmarks/short_prior.py --case bbc                 # out of sample (below)

sweep_sst2.py's 1,000-example SST-2 case (minilm, 2,048-token batches, one epoch: 15 steps, each
strategy's default learning rate for that many steps), scored on the whole SST-2 dev set, each
(strategy, seed) in its own process. A single seed is not enough here: full fine-tuning scored
0.541, 0.747 and 0.767 on seeds 0-2. Per strategy: the mean accuracy and its difference from full
fine-tuning's mean in points, which is what `AdvisorFacts.short_prior` holds. Results:
benchmarks/results/short_prior.{json,md}.

`--case bbc` is the out-of-sample check of those priors: the same job on BBC News topics
(sweep_sst2.py's case: 5 classes, long texts cut to 128 tokens, tune_bbc.py's seeded split,
scored on its validation part), which no prior was measured on. It also records the advisor's
order for the job (`tunewise recommend` on the training file) and its Spearman correlation with
the measured means (results: short_prior_bbc.{json,md}). On SST-2 that correlation is in-sample.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path
from statistics import mean
from typing import Any

from _children import report_child, run_children, write_results

WORK = Path(__file__).resolve().parent / "work" / "short_prior"
DEFAULT = (
    "full,partial,frozen,lora,lora_fa,bitfit,ia3,adapter,prompt_tuning,prefix_tuning,p_tuning,"
    "diff_pruning"
)


N_TRAIN = 1000
IN_SAMPLE = {"sst2": "; in-sample: the priors are these measurements"}
DATA = {
    "sst2": "SST-2 training sentences, scored on the whole dev set",
    "bbc": "BBC News training articles (128 tokens), scored on the validation split",
}


def child(run: str, case: str) -> dict[str, Any]:
    import tunewise
    from sweep_sst2 import case_config  # benchmarks/ is on sys.path

    name, _, seed = run.partition("@")
    cfg, _, _ = case_config(case, N_TRAIN, 2048)
    cfg = copy.deepcopy(cfg)
    cfg.update(seed=int(seed), strategy={"name": name}, output_dir=str(WORK / case / run))
    result = tunewise.finetune(cfg, overwrite=True)
    return {
        "strategy": name,
        "seed": int(seed),
        "accuracy": round(result.metrics["validation"]["accuracy"], 4),
        "learning_rate": result.manifest["training"]["learning_rate"],
        "steps": result.manifest["training"]["steps"],
    }


def advisor_check(case: str, names: list[str], summary: list[dict[str, Any]]) -> dict[str, Any]:
    """The advisor's order for this job and its Spearman correlation with the measured means."""
    from sweep_sst2 import advisor_vs_measured, case_config

    cfg, task, train_file = case_config(case, N_TRAIN, 2048)
    measured = [r["strategy"] for r in sorted(summary, key=lambda r: -r["mean"])]
    _, advised, rho = advisor_vs_measured(
        task, cfg["model"]["name"], N_TRAIN, train_file, names, measured
    )
    return {"advisor_order": advised, "measured_order": measured, "spearman": rho}


def markdown(out: dict[str, Any]) -> str:
    rows = out["summary"]
    title = {"sst2": "SST-2", "bbc": "BBC News topics (out of sample)"}[out.get("case", "sst2")]
    case = f"--case {out['case']} " if out.get("case", "sst2") != "sst2" else ""
    lines = [
        f"# Short-run accuracy per strategy: {title}, minilm, 1,000 examples",
        "",
        f"{out['setup']}. Load average {out['load_average']['start']} at the start, "
        f"{out['load_average']['end']} at the end. Command: `python benchmarks/short_prior.py "
        f"{case}--seeds {out['seeds']}`.",
        "",
        "| strategy | accuracy per seed | mean | points vs full | lr | steps |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        per_seed = " / ".join(f"{a:.4f}" for a in r["accuracies"])
        lines.append(
            f"| {r['strategy']} | {per_seed} | {r['mean']:.4f} | {r['vs_full']:+.1f} "
            f"| {r['learning_rate']:g} | {r['steps']} |"
        )
    check = out.get("advisor")
    if check:
        lines += [
            "",
            f"Measured order (means): {', '.join(check['measured_order'])}.",
            "",
            f"Advisor's order for this job: {', '.join(check['advisor_order'])} (Spearman "
            f"{check['spearman']:+.3f} with the measured order"
            f"{IN_SAMPLE.get(out.get('case', 'sst2'), '')}).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strategies", default=DEFAULT)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=["sst2", "bbc"], default="sst2")
    parser.add_argument("--output", default=None, help="default: short_prior[_bbc]")
    args = parser.parse_args()
    if args.child:
        report_child(child(args.child, args.case))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = args.strategies.split(",")
    if "full" not in names:
        names.insert(0, "full")
    start = round(os.getloadavg()[0], 2)
    runs = run_children(
        __file__, [f"{n}@{s}" for n in names for s in args.seeds.split(",")], ["--case", args.case]
    )
    by_name = {n: [r for r in runs if r["strategy"] == n] for n in names}
    full = mean(r["accuracy"] for r in by_name["full"])
    summary = [
        {
            "strategy": n,
            "accuracies": [r["accuracy"] for r in rs],
            "mean": round(mean(r["accuracy"] for r in rs), 4),
            "vs_full": round(100 * (mean(r["accuracy"] for r in rs) - full), 1),
            "learning_rate": rs[0]["learning_rate"],
            "steps": rs[0]["steps"],
        }
        for n, rs in by_name.items()
    ]
    out = {
        "benchmark": "short-run accuracy per strategy (the advisor's short priors)",
        "setup": (
            f"{os.cpu_count()} CPU cores, 1,000 {DATA[args.case]}, 2,048-token batches, "
            f"1 epoch, each strategy's defaults; {time.strftime('%Y-%m-%d')}"
        ),
        "case": args.case,
        "seeds": args.seeds,
        "runs": runs,
        "summary": summary,
        "advisor": advisor_check(args.case, names, summary),
    }
    suffix = "" if args.case == "sst2" else f"_{args.case}"
    write_results(args.output or f"short_prior{suffix}", out, start, markdown)


if __name__ == "__main__":
    main()
