"""How much of a training step's peak memory is the C allocator's, not the tensors'?

    python benchmarks/allocator_memory.py                       # glibc, glibc with a 1 MB mmap
    python benchmarks/allocator_memory.py --jemalloc /path/libjemalloc.so.2   # + jemalloc

minilm, full fine-tuning and LoRA (tunewise's defaults), the same 25 seeded steps of ~2,048-token
batches of random shape (12-64 tokens, as length-grouped batches vary), AdamW, 2 threads; each
(strategy, allocator) in its own process, strategies alternating. Per run: the process's peak
resident memory (VmHWM, model loading included) and the 25 steps' wall time.

- `glibc`: the default. Tensors under glibc's dynamic mmap threshold (which grows to 32 MB) come
  from its heap, which keeps freed chunks it cannot hand back or reuse for the next step's
  differently shaped tensors.
- `glibc_mmap1mb`: `mallopt(M_MMAP_THRESHOLD, 1 MB)`: every tensor over 1 MB is mapped on
  allocation and unmapped when freed.
- `jemalloc`: the same script with jemalloc preloaded (`LD_PRELOAD`), if `--jemalloc` names it
  (Debian: `libjemalloc2`; no root needed: `apt-get download libjemalloc2 && dpkg -x ...`).
Results: benchmarks/results/allocator_memory.{json,md}.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import random
import time
from typing import Any

from _children import report_child, run_children, vm_hwm_mb, write_results

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
STEPS, TOKENS = 25, 2048


def child(run: str) -> dict[str, Any]:
    """One run, named STRATEGY/ALLOCATOR."""
    strategy, allocator = run.split("/")
    if allocator == "glibc_mmap1mb":
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 1 << 20)
    import torch
    from transformers import AutoModelForSequenceClassification

    from tunewise.models import resolve
    from tunewise.strategies.lora import LoraOptions, LoraStrategy

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(resolve("minilm").path, num_labels=2)
    if strategy == "lora":
        model = LoraStrategy(LoraOptions()).apply(model, ["classifier"])
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    rng = random.Random(0)
    start = time.perf_counter()
    for _ in range(STEPS):
        length = rng.randint(12, 64)
        ids = torch.randint(1000, 20000, (TOKENS // length, length))
        labels = torch.randint(0, 2, (ids.shape[0],))
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - start
    return {
        "strategy": strategy,
        "allocator": allocator,
        "peak_rss_mb": round(vm_hwm_mb(), 1),
        "seconds": round(seconds, 2),
    }


def markdown(out: dict[str, Any]) -> str:
    runs = {(r["strategy"], r["allocator"]): r for r in out["runs"]}
    lines = [
        "# Peak memory and the C allocator: minilm training steps",
        "",
        f"{out['setup']}. Load average {out['load_average']['start']} at the start, "
        f"{out['load_average']['end']} at the end. Command: `python benchmarks/allocator_memory.py"
        f"{' --jemalloc PATH' if 'jemalloc' in out['allocators'] else ''}`.",
        "",
        "| allocator | full peak MB | LoRA peak MB | LoRA × full | full s | LoRA s | "
        "time × glibc (full / LoRA) |",
        "|---|---|---|---|---|---|---|",
    ]
    base = {s: runs[(s, "glibc")] for s in ("full", "lora")}
    for alloc in out["allocators"]:
        f, lo = runs[("full", alloc)], runs[("lora", alloc)]
        lines.append(
            f"| {alloc} | {f['peak_rss_mb']:,.0f} | {lo['peak_rss_mb']:,.0f} | "
            f"{lo['peak_rss_mb'] / f['peak_rss_mb']:.2f} | {f['seconds']:.1f} | "
            f"{lo['seconds']:.1f} | {f['seconds'] / base['full']['seconds']:.2f} / "
            f"{lo['seconds'] / base['lora']['seconds']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jemalloc", help="path of libjemalloc.so.2 to preload for a third run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        report_child(child(args.child))
        return
    allocators = ["glibc", "glibc_mmap1mb"] + (["jemalloc"] if args.jemalloc else [])
    start, runs = round(os.getloadavg()[0], 2), []
    for alloc in allocators:
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        if alloc == "jemalloc":
            env["LD_PRELOAD"] = args.jemalloc
        runs += run_children(__file__, [f"full/{alloc}", f"lora/{alloc}"], [], env)
    out = {
        "benchmark": "peak memory of minilm training steps under three allocators",
        "setup": (
            f"{os.cpu_count()} CPU cores, minilm, {STEPS} steps of ~{TOKENS:,}-token batches of "
            f"random shape (seed 0), AdamW, 2 threads, tunewise's LoRA defaults; "
            f"{time.strftime('%Y-%m-%d')}"
        ),
        "allocators": allocators,
        "runs": runs,
    }
    write_results("allocator_memory", out, start, markdown)


if __name__ == "__main__":
    main()
