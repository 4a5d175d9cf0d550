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
from collections.abc import Callable
from pathlib import Path

WORK = Path(__file__).resolve().parents[1] / "benchmarks" / "work" / "heldout"


def _write_halves(
    items: list, seed: int, out_dir: Path, names: tuple[str, str], render: Callable[[list], str]
) -> tuple[Path, Path]:
    """Shuffle `items` with `seed`, write the first half to names[0] and the rest to names[1]."""
    random.Random(seed).shuffle(items)
    half = len(items) // 2
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / names[0], out_dir / names[1]
    for target, part in zip(paths, (items[:half], items[half:]), strict=True):
        target.write_text(render(part), encoding="utf-8")
    return paths


def split_halves(path: str | Path, seed: int = 0, out_dir: Path = WORK) -> tuple[Path, Path]:
    """(tuning half, report half) of a data file as JSONL, shuffled with `seed`; the same seed
    always gives the same halves, so tuning never sees a report record."""
    from tunewise.data.readers import read_records

    records = [{**rec, "line": line} for line, rec in read_records(Path(path))]
    stem = Path(path).stem
    return _write_halves(
        records,
        seed,
        out_dir,
        (f"{stem}-tune.jsonl", f"{stem}-report.jsonl"),
        lambda part: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part),
    )


def split_conll_halves(path: str | Path, seed: int = 0, out_dir: Path = WORK) -> tuple[Path, Path]:
    """The same for a CoNLL file, by sentence (blank-line separated blocks, kept verbatim)."""
    text = Path(path).read_text(encoding="utf-8")
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    stem = Path(path).stem
    return _write_halves(
        blocks,
        seed,
        out_dir,
        (f"{stem}-tune.txt", f"{stem}-report.txt"),
        lambda part: "".join(b.strip("\n") + "\n\n" for b in part),
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--conll", action="store_true", help="a CoNLL file: split by sentence")
    args = ap.parse_args()
    for p in (split_conll_halves if args.conll else split_halves)(args.path, args.seed):
        print(p)
