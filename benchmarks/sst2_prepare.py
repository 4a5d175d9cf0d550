"""What the data pipeline finds in SST-2's training set (the README's data-preparation counts).

    python benchmarks/sst2_prepare.py

Runs `tunewise data prepare` on ../shared/data/sst2/train.tsv (67,349 phrase-level records) with
cleaning, near-duplicate removal and the default leakage check, and writes its counts (exact and
near duplicates, groups with the same text under both labels, eval records leaked from train) with
the wall time to benchmarks/results/sst2_prepare.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _techniques import write_results  # benchmarks/ is on sys.path when this script runs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sst2" / "train.tsv"
OUT = ROOT / "benchmarks" / "work" / "sst2_prepare"
KEYS = (
    "n_input",
    "n_rejected",
    "n_exact_duplicates",
    "n_near_duplicates",
    "n_conflicting_groups",
    "n_leaked_dropped",
    "n_output",
    "splits",
)


def main() -> None:
    command = [sys.executable, "-m", "tunewise.cli", "data", "prepare", "--input", str(DATA)]
    command += ["--task", "classification", "--output-dir", str(OUT)]
    command += ["--clean", "all", "--dedup", "near", "--on-error", "skip"]
    shutil.rmtree(OUT, ignore_errors=True)  # the benchmark's own scratch folder
    load = os.getloadavg()
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = round(time.perf_counter() - start, 1)
    counts = json.loads((OUT / "prepare.json").read_text(encoding="utf-8"))
    result = {
        "command": "python benchmarks/sst2_prepare.py",
        "pipeline": " ".join(
            os.path.relpath(a, ROOT) if a.startswith("/") else a for a in command[3:]
        ),
        "wall_seconds": seconds,
        "load_average_before": [round(x, 2) for x in load],
        **{k: counts[k] for k in KEYS if k in counts},
    }
    write_results("sst2_prepare", False, result)


if __name__ == "__main__":
    main()
