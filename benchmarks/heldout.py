"""Held-out reporting for benchmarks: split a public dev set once, seeded, into a tuning half
(defaults and learning rates may be chosen on it) and a report half (the figures a README
quotes; no choice is made on it).

    python benchmarks/heldout.py ../shared/data/sst2/dev.tsv --seed 0
      → benchmarks/work/heldout/dev-tune.jsonl, dev-report.jsonl (records as read, with `line`)
    python benchmarks/heldout.py ../shared/data/conll2003/valid.txt --conll
      → benchmarks/work/heldout/valid-tune.txt, valid-report.txt (sentences, CoNLL columns)

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


def split_conll_halves(path: str | Path, seed: int = 0, out_dir: Path = WORK) -> tuple[Path, Path]:
    """The same for a CoNLL file, by sentence (blank-line separated blocks, kept verbatim)."""
    text = Path(path).read_text(encoding="utf-8")
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    random.Random(seed).shuffle(blocks)
    half = len(blocks) // 2
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    paths = out_dir / f"{stem}-tune.txt", out_dir / f"{stem}-report.txt"
    for target, part in zip(paths, (blocks[:half], blocks[half:]), strict=True):
        target.write_text("".join(b.strip("\n") + "\n\n" for b in part), encoding="utf-8")
    return paths


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--conll", action="store_true", help="a CoNLL file: split by sentence")
    args = ap.parse_args()
    for p in (split_conll_halves if args.conll else split_halves)(args.path, args.seed):
        print(p)
