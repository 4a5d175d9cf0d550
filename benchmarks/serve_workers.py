"""Model workers side by side: one worker of all the CPU threads vs one worker per core.

    python benchmarks/serve_workers.py     # ~2 min on 2 cores; needs serve_load.py's run

The served minilm SST-2 classifier (`benchmarks/work/serve/minilm-run`, built by serve_load.py)
predicts SST-2 dev sentences in random micro-batches of 16 (what 32 clients on 2 workers give
each), no HTTP: through `Engine.predict` from 1 thread with torch/onnxruntime using every core,
and from one thread per core with one intra-op thread each (what `serve --workers` auto picks).
Both configurations alternate for three rounds; sentences/s per round and the median.
Results: benchmarks/results/serve_workers.json and .md.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "work" / "serve" / "minilm-run"
DEV = ROOT.parent / "shared" / "data" / "sst2" / "dev.tsv"
RESULTS = ROOT / "benchmarks" / "results"


def rate(predict: Callable[[list[str]], Any], chunks: list[list[str]], workers: int) -> float:
    """Texts/s of `predict` over `chunks` (micro-batches) spread over `workers` threads."""

    def work(k: int) -> None:
        for part in chunks[k::workers]:
            predict(part)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(len(c) for c in chunks) / (time.perf_counter() - start)


def main() -> None:
    from tunewise.serving.engine import Engine

    lines = DEV.read_text(encoding="utf-8").splitlines()[1:]
    texts = [line.split("\t", 1)[1] for line in lines]
    random.Random(0).shuffle(texts)
    chunks = [texts[i : i + 16] for i in range(0, 512, 16)]
    cores = os.cpu_count() or 1
    result: dict = {"cores": cores, "texts": 512, "micro_batch": 16, "load": os.getloadavg()}
    for backend in ("torch", "onnx"):
        torch.set_num_threads(cores)
        engine = Engine(RUN, device="cpu", backend=backend)
        rounds: dict[str, list[float]] = {"1_worker_all_threads": [], "workers_per_core": []}
        for _ in range(3):
            for name in rounds:
                threads = cores if name.startswith("1_") else 1
                torch.set_num_threads(threads)
                engine.share_threads(threads)
                workers = 1 if name.startswith("1_") else cores
                predict = partial(engine.predict, batch_size=32)
                rate(predict, chunks[:4], workers)  # warm-up for this thread count
                rounds[name].append(round(rate(predict, chunks, workers), 1))
        result[backend] = {
            k: {"rounds": v, "median": statistics.median(v)} for k, v in rounds.items()
        }
        result[backend]["ratio"] = round(
            result[backend]["workers_per_core"]["median"]
            / result[backend]["1_worker_all_threads"]["median"],
            2,
        )
        print(backend, json.dumps(result[backend]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve_workers.json").write_text(json.dumps(result, indent=1))
    md = [
        "# Model workers: one of all threads vs one per core",
        "",
        f"`python benchmarks/serve_workers.py` on {cores} cores (load average at start "
        f"{result['load'][0]:.2f}); 512 SST-2 dev sentences in random micro-batches of 16, "
        "minilm, no HTTP; sentences/s, three alternating rounds.",
        "",
        "| backend | 1 worker × all threads | 1 worker per core × 1 thread | ratio |",
        "|---|---|---|---|",
    ]
    for backend in ("torch", "onnx"):
        r = result[backend]
        md.append(
            f"| {backend} | {r['1_worker_all_threads']['median']} "
            f"({', '.join(map(str, r['1_worker_all_threads']['rounds']))}) | "
            f"{r['workers_per_core']['median']} "
            f"({', '.join(map(str, r['workers_per_core']['rounds']))}) | {r['ratio']}× |"
        )
    (RESULTS / "serve_workers.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
