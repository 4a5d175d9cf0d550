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
    """SST-2 train and dev, read in place; a seeded dev subset (written under benchmarks/work,
    which git ignores) when `n_dev` is given."""
    sst2 = DATA / "sst2"
    dev = sst2 / "dev.tsv"
    if n_dev:
        lines = dev.read_text(encoding="utf-8").splitlines()
        body = lines[1:]
        random.Random(0).shuffle(body)
        dev = WORK / f"sst2_dev_{n_dev}.tsv"
        dev.parent.mkdir(parents=True, exist_ok=True)
        dev.write_text("\n".join([lines[0], *body[:n_dev]]) + "\n", encoding="utf-8")
    return {
        "train": str(sst2 / "train.tsv"),
        "validation": str(dev),
        "text_column": ["sentence", "content"],
    }


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
