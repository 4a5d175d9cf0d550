"""Choose the server's forward-pass cost (`FORWARD_COST` in `serving/engine.py`), per backend.

    python benchmarks/serve_forward_cost.py            # ~5 minutes on 2 cores
    python benchmarks/serve_forward_cost.py --quick    # smoke: one round, few texts

The model alone, no HTTP, as `tunewise serve` runs it (the minilm classifier of
`serve_load.py`, its model workers and threads): random micro-batches of SST-2 *train* sentences
(not the dev sentences `serve_load.py` reports on), cut into forward passes by each candidate
cost, against the previous fixed 8-row length-sorted passes. Sentences/s, median of alternating
rounds. Results: benchmarks/results/serve_forward_cost.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
from typing import Any

from serve_load import DATA, RESULTS, classifier_run  # benchmarks/ is on sys.path
from serve_workers import rate as spread

CANDIDATES: list[float | None] = [None, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]  # None: 8-row slices


def train_texts(n: int, seed: int = 0) -> list[str]:
    lines = (DATA / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    texts = [line.split("\t", 1)[1] for line in lines]  # train.tsv: label \t sentence
    random.Random(seed).shuffle(texts)
    return texts[:n]


def rate(engine: Any, workers: int, texts: list[str], micro: int, cost: float | None) -> float:
    from tunewise.inference.batches import forward_cost

    task, model = engine.task, engine.predictor.model

    def run(part: list[str]) -> None:
        with forward_cost(cost):
            task.predict_records(model, engine.tokenizer(), part, 8 if cost is None else 32)

    chunks = [texts[i : i + micro] for i in range(0, len(texts), micro)]
    for part in chunks[:2]:
        run(part)  # warm-up: oneDNN / onnxruntime set up kernels per new shape
    return spread(run, chunks, workers)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--texts", type=int, default=384)
    p.add_argument("--micro", default="12,32", help="micro-batch sizes (requests per batch)")
    args = p.parse_args()
    if args.quick:
        args.rounds, args.texts = 1, 64
    import torch

    from tunewise.serving.engine import Engine
    from tunewise.serving.state import model_workers

    run = classifier_run(steps=8)
    texts = train_texts(args.texts)
    micro = [int(m) for m in args.micro.split(",")]
    cores = torch.get_num_threads()
    result: dict[str, Any] = {"load_average_start": os.getloadavg()[0], "backends": {}}
    for backend in ("torch", "onnx"):
        torch.set_num_threads(cores)
        engine = Engine(run, device="cpu", backend=backend)
        workers = model_workers(engine, None)
        rates: dict[str, dict[int, list[float]]] = {
            str(c): {m: [] for m in micro} for c in CANDIDATES
        }
        for _ in range(args.rounds):
            for m in micro:
                for c in CANDIDATES:
                    rates[str(c)][m].append(rate(engine, workers, texts, m, c))
        medians = {
            c: {m: round(statistics.median(v), 1) for m, v in r.items()} for c, r in rates.items()
        }
        mean = {c: statistics.mean(r.values()) for c, r in medians.items() if c != "None"}
        chosen = max(mean, key=mean.get)
        result["backends"][backend] = {
            "workers": workers,
            "rates": rates,
            "medians": medians,
            "chosen": float(chosen),
        }
        print(f"[forward_cost] {backend}: {json.dumps(medians)} -> {chosen}", flush=True)
    result["load_average_end"] = os.getloadavg()[0]
    out = "serve_forward_cost" + ("_quick" if args.quick else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{out}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{out}.md").write_text(markdown(result, micro))


def markdown(result: dict[str, Any], micro: list[int]) -> str:
    out = [
        "# The server's forward-pass cost, chosen on SST-2 train sentences",
        "",
        "`python benchmarks/serve_forward_cost.py`; minilm classifier alone (no HTTP) as `tunewise "
        "serve` runs it; sentences/s, median of alternating rounds; load average "
        f"{result['load_average_start']:.2f} at the start, "
        f"{result['load_average_end']:.2f} at the end.",
        "",
        "| backend | cost (tokens) | " + " | ".join(f"micro-batch {m}" for m in micro) + " |",
        "|---|---|" + "---|" * len(micro),
    ]
    for backend, part in result["backends"].items():
        for c, row in part["medians"].items():
            name = "8-row passes (before)" if c == "None" else c
            mark = " (chosen)" if c != "None" and float(c) == part["chosen"] else ""
            out.append(
                f"| {backend} | {name}{mark} | " + " | ".join(str(row[m]) for m in micro) + " |"
            )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
