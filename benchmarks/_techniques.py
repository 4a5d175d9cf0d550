"""Shared helpers of the technique benchmarks (adversarial, distill, multitask, preference)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work"


def sst2_files(n_dev: int | None) -> dict[str, Any]:
    """SST-2 train read in place, validated on the report half of dev (`heldout.py`, seed 0): no
    default was chosen on it, and the runs here make no choice on it either (one epoch, no
    checkpoint selection). `n_dev`: a seeded subset of that half (smoke runs)."""
    from heldout import split_halves

    _, dev = split_halves(DATA / "sst2" / "dev.tsv", seed=0)
    if n_dev:
        lines = dev.read_text(encoding="utf-8").splitlines()
        random.Random(0).shuffle(lines)
        dev = WORK / f"sst2_report_{n_dev}.jsonl"
        dev.write_text("\n".join(lines[:n_dev]) + "\n", encoding="utf-8")
    return {
        "train": str(DATA / "sst2" / "train.tsv"),
        "validation": str(dev),
        "text_column": ["sentence", "content"],
    }


def tuning_setup(args: Any, quick_samples: int, quick_steps: int) -> tuple[Any, ...]:
    """What the benchmarks that choose settings on held-out data share: SST-2 dev's tuning and
    report halves (`heldout.py`, seed 0), the training data read in place with the tuning half
    as validation, one-epoch training options (a smoke size with --quick), the seeds, and a tag
    for work directories. `args`: --quick, --train-samples, --seeds."""
    from heldout import split_halves

    tune, report = split_halves(DATA / "sst2" / "dev.tsv", seed=0)
    data = {
        "train": str(DATA / "sst2" / "train.tsv"),
        "validation": str(tune),
        "text_column": ["sentence", "content"],
    }
    training: dict[str, Any] = {
        "epochs": 1,
        "max_train_samples": quick_samples if args.quick else args.train_samples,
    }
    if args.quick:
        training["max_steps"] = quick_steps
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    return tune, report, data, training, seeds, "-quick" if args.quick else ""


def conll_report_half() -> str:
    """CoNLL valid's report half (`heldout.py --conll`, seed 0), as a CoNLL file."""
    from heldout import split_conll_halves

    return str(split_conll_halves(DATA / "conll2003" / "valid.txt", seed=0)[1])


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - start, 1)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def write_results(name: str, quick: bool, results: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}{'_quick' if quick else ''}.json"
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    print(f"written: {path}")
    return path
