"""Held-out reporting for benchmarks: split a public dev set once, seeded, into a tuning half
(defaults and learning rates may be chosen on it) and a report half (the figures a README
quotes; no choice is made on it).

    python benchmarks/heldout.py ../shared/data/sst2/dev.tsv --seed 0
      → benchmarks/work/heldout/dev-tune.jsonl, dev-report.jsonl (records as read, with `line`)

`benchmarks/sst2.py --held-out` trains with the tuning half as validation and reports the
report half as the run's test split.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

WORK = Path(__file__).resolve().parents[1] / "benchmarks" / "work" / "heldout"


def split_halves(path: str | Path, seed: int = 0, out_dir: Path = WORK) -> tuple[Path, Path]:
    """(tuning half, report half) of a data file as JSONL, shuffled with `seed`; the same seed
    always gives the same halves, so tuning never sees a report record."""
    from tunewise.data.readers import read_records

    records = [{**rec, "line": line} for line, rec in read_records(Path(path))]
    random.Random(seed).shuffle(records)
    half = len(records) // 2
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    paths = out_dir / f"{stem}-tune.jsonl", out_dir / f"{stem}-report.jsonl"
    for target, part in zip(paths, (records[:half], records[half:]), strict=True):
        target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part))
    return paths


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for p in split_halves(args.path, args.seed):
        print(p)
