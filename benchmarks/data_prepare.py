"""Data preparation throughput: clean + exact dedup (+ MinHash near dedup) + split on N texts.

    make bench                                        # part of the suite (1,000,000 texts)
    python benchmarks/data_prepare.py --n 200000      # a smaller run

Generates N short labelled texts (6-14 words from a 20,000-word vocabulary; 3% exact duplicates
with changed case/spacing, 3% near duplicates with one word appended (word-3-gram Jaccard
(n-2)/(n-1) ≥ 0.8), 0.5% with HTML, emoji or
URLs), then times `tunewise data prepare` twice in fresh processes with an empty `datasets`
cache: `--clean all --dedup exact` and `--clean all --dedup near`. Peak RSS is the largest sum
over the process tree (the main process plus its `datasets.map` workers), sampled every 0.1 s,
of two measures: PSS (proportional set size: pages shared between forked workers counted once;
includes the memory-mapped Arrow files' pages the pipeline has read) and anonymous memory
(RssAnon: the heap, which is what cannot be paged back to the Arrow files).
The data's size as Python objects (a list of {"text", "label"} dicts, as `json.loads` gives
them) is measured with tracemalloc. Writes benchmarks/results/data_prepare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work" / "data_prepare"
LABELS = ["positive", "negative", "neutral"]
EXTRAS = [" <b>really</b> &amp; more", " 😀👍🏽", " see https://example.com/page?id=3"]


def generate(n: int, path: Path, seed: int = 0) -> None:
    rng = random.Random(seed)
    vocab = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9)))
        for _ in range(20_000)
    ]
    made: list[str] = []
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            roll = rng.random()
            if made and roll < 0.03:
                text = rng.choice(made[-5000:]).upper().replace(" ", "  ")
            elif made and roll < 0.06:
                text = rng.choice(made[-5000:]) + " " + rng.choice(vocab)
            else:
                text = " ".join(rng.choices(vocab, k=rng.randint(6, 14)))
                if roll > 0.995:
                    text += rng.choice(EXTRAS)
                made.append(text)
            label = LABELS[i % 3]
            fh.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")


def python_object_bytes(path: Path) -> int:
    """Bytes the records take as Python objects (what a list of dicts from json.loads holds)."""
    tracemalloc.start()
    with path.open(encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del records
    return size


def _anon_bytes(pid: int) -> int:
    """Private heap memory of a process (RssAnon): excludes memory-mapped Arrow file pages,
    which the kernel can drop and re-read at any time."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run(data: Path, dedup: str, out: Path) -> dict:
    env = {**os.environ, "HF_DATASETS_CACHE": tempfile.mkdtemp(prefix="hfcache-")}
    env["HF_HUB_OFFLINE"] = "1"
    cmd = [sys.executable, "-m", "tunewise.cli", "data", "prepare", "--input", str(data)]
    cmd += ["--output-dir", str(out), "--clean", "all", "--dedup", dedup, "--on-error", "skip"]
    start = time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = peak_anon = 0
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_full_info().pss for p in tree if p.is_running()))
            peak_anon = max(peak_anon, sum(_anon_bytes(p.pid) for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the whole tree, once reaped
    cpu = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("ru_utime", "ru_stime"))
    if proc.returncode != 0:
        raise SystemExit(f"prepare failed ({proc.returncode}): {' '.join(cmd)}")
    counts = json.loads((out / "prepare.json").read_text())
    return {
        "dedup": dedup,
        "seconds": round(seconds, 1),
        "records_per_second": round(counts["n_input"] / seconds),
        "cpu_seconds": round(cpu, 1),
        "records_per_cpu_second": round(counts["n_input"] / cpu),
        "peak_pss_mb": round(peak / 2**20),
        "peak_anonymous_mb": round(peak_anon / 2**20),
        "stage_seconds": counts["seconds"],
        "n_input": counts["n_input"],
        "n_exact_duplicates": counts["n_exact_duplicates"],
        "n_near_duplicates": counts["n_near_duplicates"],
        "n_output": counts["n_output"],
        "cleaned": counts["cleaned"],
        "splits": counts["splits"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    data = WORK / f"texts-{args.n}.jsonl"
    if not data.is_file():
        generate(args.n, data)
    size = python_object_bytes(data)
    load = os.getloadavg()
    runs = [run(data, dedup, WORK / f"out-{dedup}") for dedup in ("exact", "near")]
    result = {
        "n_texts": args.n,
        "file_mb": round(data.stat().st_size / 2**20),
        "python_objects_mb": round(size / 2**20),
        "cpu_cores": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "runs": runs,
        "bars": {"clean+exact records/s": 20_000, "with near-dup records/s": 5_000},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "data_prepare.json").write_text(json.dumps(result, indent=2) + "\n")
    for r in runs:
        print(
            f"{r['dedup']:>5}: {r['n_input']:,} records in {r['seconds']} s = "
            f"{r['records_per_second']:,}/s ({r['cpu_seconds']} CPU s = "
            f"{r['records_per_cpu_second']:,} per CPU second), peak PSS {r['peak_pss_mb']} MB, "
            f"anonymous {r['peak_anonymous_mb']} MB "
            f"(records as Python objects: {result['python_objects_mb']} MB)"
        )


if __name__ == "__main__":
    main()
