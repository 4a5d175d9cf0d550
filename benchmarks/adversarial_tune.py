"""Adversarial training with its settings chosen on held-out tuning data, reported over seeds.

    python benchmarks/adversarial_tune.py            # 4,000 SST-2 sentences, minilm + LoRA
    python benchmarks/adversarial_tune.py --quick    # smoke: 100 sentences, 4 steps, 1 seed

1. Choose: each setting in CANDIDATES and no adversary, seed 0, scored (clean and under
   `eval --perturb typos,synonyms`) on the *tuning* half of SST-2 dev. The chosen one has the
   highest mean perturbed accuracy among those whose clean accuracy is at most 0.5 points below
   no adversary's there (the highest mean perturbed accuracy overall if none is); ties go to the
   higher clean accuracy.
2. Report: the chosen setting and no adversary, seeds 0, 1, 2, on the *report* half (no choice
   was made on it). The bar (issue 14): perturbed accuracy up >= 1 point, clean down <= 0.5.

Writes benchmarks/results/adversarial_tuned.json and .md (`_quick` with --quick).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import tunewise
from _techniques import RESULTS, WORK, timed, tuning_setup, write_results
from distill_tune import mean_sd

# name -> training.adversarial (None: no adversary). epsilon is an L2 radius per example over
# tokens x hidden; alpha the size of each ascent step.
CANDIDATES: dict[str, dict[str, Any] | None] = {
    "none": None,
    "pgd_e0.2": {"method": "pgd", "epsilon": 0.2, "alpha": 0.07, "steps": 3},  # the defaults
    "pgd_e0.5": {"method": "pgd", "epsilon": 0.5, "alpha": 0.2, "steps": 3},
    "fgm_e0.5": {"method": "fgm", "epsilon": 0.5},
    "freelb_e0.2": {"method": "freelb", "epsilon": 0.2, "alpha": 0.07, "steps": 3},
    "freelb_e0.5": {"method": "freelb", "epsilon": 0.5, "alpha": 0.2, "steps": 3},
    # smaller radii and FGM at 0.2 (added for the full fine-tuning round, 2026-12-03)
    "fgm_e0.2": {"method": "fgm", "epsilon": 0.2},
    "pgd_e0.1": {"method": "pgd", "epsilon": 0.1, "alpha": 0.035, "steps": 3},
    "freelb_e0.1": {"method": "freelb", "epsilon": 0.1, "alpha": 0.035, "steps": 3},
}
PERTURB = ("typos", "synonyms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--train-samples", type=int, default=4000)
    parser.add_argument("--strategy", default="lora")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--output", default="adversarial_tuned", help="results file name")
    parser.add_argument(
        "--more-seeds",
        help="second round: train these candidates with the other seeds too, then choose between "
        "them and the first round's choice by their means over seeds on the tuning half",
    )
    args = parser.parse_args()
    tune, report, data, training, seeds, tag = tuning_setup(args, 100, 4)

    def run(name: str, seed: int) -> dict[str, Any]:
        cfg = {
            "model": {"name": "minilm"},
            "task": {"type": "classification"},
            "data": data,
            "strategy": {"name": args.strategy},
            "training": {**training, "adversarial": CANDIDATES[name]},
            "eval": {"each_epoch": False},
            "output_dir": str(WORK / f"adversarial-tune-{args.strategy}-{name}-s{seed}{tag}"),
            "seed": seed,
        }
        out, seconds = timed(tunewise.finetune, cfg, overwrite=True)
        row: dict[str, Any] = {"name": name, "seed": seed, "settings": CANDIDATES[name]}
        for half, path in (("tune", tune), ("report", report)):
            m = tunewise.api.evaluate(out.run_dir, str(path), perturb=",".join(PERTURB))
            row[half] = {"clean": m["accuracy"]} | {
                k: m["perturbed"][k]["accuracy"] for k in PERTURB
            }
        row["train_seconds"] = out.manifest["training"]["train_seconds"]
        row["wall_seconds"] = seconds
        print(f"[adversarial_tune] {name} seed {seed}: {row}", flush=True)
        return row

    if args.more_seeds:
        return second_round(args, run, seeds)
    names = ["none", *(n for n in args.candidates.split(",") if n != "none")]
    candidates = [run(name, 0) for name in names]
    chosen = choose(candidates)
    report_rows = {
        name: [c for c in candidates if c["name"] == name] + [run(name, s) for s in seeds if s]
        for name in ("none", chosen)
    }
    results = {
        "quick": args.quick,
        "strategy": args.strategy,
        "train_samples": training["max_train_samples"],
        "candidates_on_tuning_half": candidates,
        "chosen": chosen,
        "report": report_rows,
        "summary": summary(report_rows["none"], report_rows[chosen]),
        "output": args.output,
        "candidates": args.candidates,
    }
    save(results)


def save(results: dict[str, Any]) -> None:
    name = results.get("output", "adversarial_tuned")
    write_results(name, results["quick"], results)
    (RESULTS / f"{name}{'_quick' if results['quick'] else ''}.md").write_text(markdown(results))


def second_round(args: Any, run: Any, seeds: list[int]) -> None:
    """`--more-seeds`: the named candidates' other seeds, and the choice made again between
    them and the first round's choice on their means over seeds (the tuning half still)."""
    results = json.loads(
        (RESULTS / f"{args.output}{'_quick' if args.quick else ''}.json").read_text()
    )
    rows = dict(results["report"])  # none and the first choice: every seed already
    for name in args.more_seeds.split(","):
        first = [c for c in results["candidates_on_tuning_half"] if c["name"] == name]
        rows[name] = first + [run(name, s) for s in seeds if s]
    means = [
        {"name": name, "tune": {k: mean_sd([r["tune"][k] for r in rs])[0] for k in rs[0]["tune"]}}
        for name, rs in rows.items()
    ]
    chosen = choose(means)
    results["second_round"] = {
        "rows": {n: rs for n, rs in rows.items() if n not in results["report"]},
        "tuning_means": means,
        "chosen": chosen,
        "summary": summary(rows["none"], rows[chosen]),
    }
    save(results)


def perturbed(scores: dict[str, float]) -> float:
    return sum(scores[k] for k in PERTURB) / len(PERTURB)


def choose(candidates: list[dict[str, Any]]) -> str:
    """The rule in the module docstring, on the tuning half."""
    base = next(c for c in candidates if c["name"] == "none")["tune"]["clean"]
    others = [c for c in candidates if c["name"] != "none"]
    kept = [c for c in others if c["tune"]["clean"] >= base - 0.005] or others
    return max(kept, key=lambda c: (perturbed(c["tune"]), c["tune"]["clean"]))["name"]


def summary(none: list[dict], adv: list[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("clean", *PERTURB):
        a = mean_sd([r["report"][key] for r in adv])
        b = mean_sd([r["report"][key] for r in none])
        out[key] = {
            "adversarial_mean": round(a[0], 4),
            "adversarial_sd": round(a[1], 4),
            "none_mean": round(b[0], 4),
            "none_sd": round(b[1], 4),
            "gain_points": round(100 * (a[0] - b[0]), 2),
        }
    out["bar_perturbed_up_1"] = all(out[k]["gain_points"] >= 1.0 for k in PERTURB)
    out["bar_clean_down_at_most_0.5"] = out["clean"]["gain_points"] >= -0.5
    return out


def markdown(r: dict[str, Any]) -> str:
    s = r["summary"]
    cols = ("clean", *PERTURB)
    lines = [
        "# Adversarial training, settings chosen on the tuning half, reported on the report half",
        "",
        f"SST-2, minilm + {r['strategy']}, {r['train_samples']} training sentences, 1 epoch. "
        f"Command: `python benchmarks/adversarial_tune.py --strategy {r['strategy']} --output "
        f"{r.get('output', 'adversarial_tuned')}"
        + (f" --candidates {r['candidates']}" if r.get("candidates") else "")
        + f"{' --quick' if r['quick'] else ''}`.",
        "",
        "| candidate (seed 0) | settings | tuning: clean / typos / synonyms | "
        "report: clean / typos / synonyms | train s |",
        "|---|---|---|---|---|",
    ]
    for c in r["candidates_on_tuning_half"]:
        t, p = (" / ".join(f"{c[h][k]:.4f}" for k in cols) for h in ("tune", "report"))
        how = " ".join(f"{k}={v}" for k, v in (c["settings"] or {}).items()) or "-"
        lines.append(f"| {c['name']} | {how} | {t} | {p} | {c['train_seconds']:.0f} |")
    lines += ["", f"Chosen on the tuning half: **{r['chosen']}**.", ""]
    lines += report_table(s, r["chosen"])
    if "second_round" in r:
        lines += second_round_markdown(r["second_round"])
    return "\n".join(lines) + "\n"


def second_round_markdown(r2: dict[str, Any]) -> list[str]:
    s, cols = r2["summary"], ("clean", *PERTURB)
    lines = [
        "",
        "## Second round: the other seeds of " + ", ".join(r2["rows"]),
        "",
        "| candidate | tuning half, mean over seeds: clean / typos / synonyms |",
        "|---|---|",
    ]
    for m in r2["tuning_means"]:
        lines.append(f"| {m['name']} | " + " / ".join(f"{m['tune'][k]:.4f}" for k in cols) + " |")
    lines += ["", f"Chosen on the tuning half's means: **{r2['chosen']}**.", ""]
    return lines + report_table(s, r2["chosen"])


def report_table(s: dict[str, Any], chosen: str) -> list[str]:
    """The report half's means ± sd for no adversary and `chosen`, the change and the bars."""
    cols = ("clean", *PERTURB)
    lines = [
        "| report half, mean ± sd over seeds | clean | typos | synonyms |",
        "|---|---|---|---|",
    ]
    for who, label in (("none", "no adversary"), ("adversarial", chosen)):
        cells = " | ".join(f"{s[k][f'{who}_mean']:.4f} ± {s[k][f'{who}_sd']:.4f}" for k in cols)
        lines.append(f"| {label} | {cells} |")
    gains = ", ".join(f"{k} {s[k]['gain_points']:+.2f}" for k in cols)
    return [
        *lines,
        "",
        f"Change in points: {gains}. Bars: perturbed up >= 1 point: {s['bar_perturbed_up_1']}; "
        f"clean down <= 0.5: {s['bar_clean_down_at_most_0.5']}.",
    ]


if __name__ == "__main__":
    main()
