"""The advisor's short-run priors, re-measured over seeds: each strategy after one short run.

    python benchmarks/short_prior.py                            # every strategy, seeds 0-2
    python benchmarks/short_prior.py --strategies full,lora --seeds 0,1

sweep_sst2.py's 1,000-example SST-2 case (minilm, 2,048-token batches, one epoch: 15 steps, each
strategy's default learning rate for that many steps), scored on the whole SST-2 dev set, each
(strategy, seed) in its own process. A single seed is not enough here: full fine-tuning scored
0.541, 0.747 and 0.767 on seeds 0-2. Per strategy: the mean accuracy and its difference from full
fine-tuning's mean in points, which is what `AdvisorFacts.short_prior` holds. Results:
benchmarks/results/short_prior.{json,md}.
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


def child(run: str) -> dict[str, Any]:
    import tunewise
    from sweep_sst2 import case_config  # benchmarks/ is on sys.path

    name, _, seed = run.partition("@")
    cfg, _, _ = case_config("sst2", 1000, 2048)
    cfg = copy.deepcopy(cfg)
    cfg.update(seed=int(seed), strategy={"name": name}, output_dir=str(WORK / run))
    result = tunewise.finetune(cfg, overwrite=True)
    return {
        "strategy": name,
        "seed": int(seed),
        "accuracy": round(result.metrics["validation"]["accuracy"], 4),
        "learning_rate": result.manifest["training"]["learning_rate"],
        "steps": result.manifest["training"]["steps"],
    }


def markdown(out: dict[str, Any]) -> str:
    rows = out["summary"]
    lines = [
        "# Short-run accuracy per strategy: SST-2, minilm, 1,000 examples",
        "",
        f"{out['setup']}. Load average {out['load_average']['start']} at the start, "
        f"{out['load_average']['end']} at the end. Command: `python benchmarks/short_prior.py "
        f"--seeds {out['seeds']}`.",
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
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strategies", default=DEFAULT)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--output", default="short_prior")
    args = parser.parse_args()
    if args.child:
        report_child(child(args.child))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = args.strategies.split(",")
    if "full" not in names:
        names.insert(0, "full")
    start = round(os.getloadavg()[0], 2)
    runs = run_children(__file__, [f"{n}@{s}" for n in names for s in args.seeds.split(",")], [])
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
            f"{os.cpu_count()} CPU cores, 1,000 SST-2 training sentences, 2,048-token batches, "
            f"1 epoch, each strategy's defaults, whole dev set; {time.strftime('%Y-%m-%d')}"
        ),
        "seeds": args.seeds,
        "runs": runs,
        "summary": summary,
    }
    write_results(args.output, out, start, markdown)


if __name__ == "__main__":
    main()
