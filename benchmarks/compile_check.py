"""Is `torch.compile` (inductor, CPU) worth making a default? Eager vs compiled, side by side.

    python benchmarks/compile_check.py     # ~7 min on 2 cores; needs inference.py's run

1. Inference: the minilm SST-2 run of `benchmarks/inference.py` (LoRA folded into the weights)
   predicts the 872 SST-2 dev sentences at batch 64, eager and `torch.compile(model,
   dynamic=True)` (lengths vary per batch): sentences/s (2 passes each, after a warm-up pass),
   the compile + first pass time, and the largest score difference.
2. Training steps: minilm + classification head built by tunewise (`assemble`), full and LoRA,
   AdamW, 64-sentence length-grouped SST-2 batches (2,000 training sentences, shuffled batch
   order, seed 0): 4 warm-up steps (compilation included), then real tokens/s over 20 steps.

2 threads. Results: benchmarks/results/compile_check.json and .md.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "data" / "sst2"
RUN = ROOT / "benchmarks" / "work" / "inference" / "run"
RESULTS = ROOT / "benchmarks" / "results"


def rows(path: Path, n: int | None = None) -> tuple[list[str], list[int]]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:][:n]
    return [x.split("\t")[-1] for x in lines], [int(x.split("\t")[-2]) for x in lines]


def inference() -> dict:
    import tunewise
    from tunewise.serving.batch_predict import fold_for_inference

    texts, _ = rows(SST2 / "dev.tsv")
    p = tunewise.load(RUN, device="cpu")
    fold_for_inference(p)

    def rate() -> tuple[float, list[dict]]:
        start = time.perf_counter()
        out = p.predict(texts, batch_size=64)
        return round(len(texts) / (time.perf_counter() - start), 1), out

    rate()  # warm-up
    eager = [rate() for _ in range(2)]
    start = time.perf_counter()
    p.model = torch.compile(p.model, dynamic=True)
    rate()
    first = time.perf_counter() - start
    compiled = [rate() for _ in range(2)]
    ref, got = eager[-1][1], compiled[-1][1]
    return {
        "eager_sentences_per_s": [r for r, _ in eager],
        "compiled_sentences_per_s": [r for r, _ in compiled],
        "compile_and_first_pass_s": round(first, 1),
        "max_score_diff": max(abs(a["score"] - b["score"]) for a, b in zip(ref, got, strict=True)),
        "same_labels": all(a["label"] == b["label"] for a, b in zip(ref, got, strict=True)),
    }


def training(strategy: str, compiled: bool) -> dict:
    from tunewise.assemble import assemble
    from tunewise.config import load_config
    from tunewise.registry import TASKS

    texts, labels = rows(SST2 / "train.tsv", 2000)
    raw = {"model": {"name": "minilm", "max_length": 128}, "task": {"type": "classification"}}
    cfg = load_config({**raw, "data": {"train": "-"}, "strategy": {"name": strategy}})
    task = TASKS.get("classification")(cfg.task, cfg.data, cfg.model)
    task.load_state({"labels": ["0", "1"], "multi_label": False})
    built = assemble(cfg, task)
    model, tokenizer = built.model, built.tokenizer
    model.train()
    optimizer = torch.optim.AdamW([w for w in model.parameters() if w.requires_grad], lr=1e-4)
    forward = torch.compile(model, dynamic=True) if compiled else model
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches = [order[i : i + 64] for i in range(0, len(order), 64)]
    random.Random(0).shuffle(batches)

    def step(batch: list[int]) -> int:
        enc = tokenizer([texts[i] for i in batch], padding=True, truncation=True, max_length=128,
                        return_tensors="pt")  # fmt: skip
        out = forward(**enc, labels=torch.tensor([labels[i] for i in batch]))
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return int(enc["attention_mask"].sum())

    start = time.perf_counter()
    for batch in batches[:4]:
        step(batch)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    tokens = sum(step(batch) for batch in batches[4:24])
    return {
        "warmup_s": round(warm, 1),
        "real_tokens_per_s": round(tokens / (time.perf_counter() - start), 1),
    }


def main() -> None:
    torch.set_num_threads(2)
    result: dict = {"load": os.getloadavg(), "threads": 2, "inference": inference(), "training": {}}
    for strategy in ("full", "lora"):
        for compiled in (False, True):
            name = f"{strategy}_{'compiled' if compiled else 'eager'}"
            result["training"][name] = training(strategy, compiled)
            print(name, result["training"][name], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compile_check.json").write_text(json.dumps(result, indent=1))
    inf, tr = result["inference"], result["training"]
    md = [
        "# torch.compile (inductor, CPU) vs eager",
        "",
        f"`python benchmarks/compile_check.py`, 2 threads, load average {result['load'][0]:.2f}.",
        "",
        f"Inference, SST-2 dev at batch 64: eager {inf['eager_sentences_per_s']} sentences/s, "
        f"compiled {inf['compiled_sentences_per_s']} (compile + first pass "
        f"{inf['compile_and_first_pass_s']} s; largest score difference "
        f"{inf['max_score_diff']:.1e}, "
        f"same labels: {inf['same_labels']}).",
        "",
        "| training steps | warm-up s (4 steps) | real tokens/s (20 steps) |",
        "|---|---|---|",
        *(f"| {k} | {v['warmup_s']} | {v['real_tokens_per_s']} |" for k, v in tr.items()),
    ]
    (RESULTS / "compile_check.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
