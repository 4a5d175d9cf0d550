"""Lean generative training: smollm2-135m LoRA SFT on alpaca-en-demo, side by side in one run.

    python benchmarks/sft_speed.py           # 288 train / 100 held-out records (~25 min)
    python benchmarks/sft_speed.py --quick      # 16 / 8 records, a smoke test
    python benchmarks/sft_speed.py --data multi30k --variants lean,lean_step  # a second set

The job is the one in ../shared/reference/machine-and-models.md (LLaMA-Factory comparison): the
first 288 alpaca-en-demo records train, the last 100 are held out; LoRA r=8, alpha 16, dropout 0.1
on every linear layer of the blocks; max length 256; batch 4; lr 1.5e-3 linear; 1 epoch; fused
AdamW; 2 threads; seed 0. Variants, each in its own process (so peak memory is its own):
- `hf_loss`: transformers' own loss (every position projected onto the vocabulary), as before;
- `answer_loss`: tunewise's default: answer positions only, chunked (training/lm_loss.py);
- `packed`: answer_loss + training.packing (a batch's examples in one row, no padding);
- `lean`: answer_loss with tunewise's LoRA default dropout (0: no masked copy of each adapted
  layer's input) and its default batches (length-grouped in random windows);
- `lean_global`: lean with the previous grouping (the whole set sorted by length, so every batch
  holds examples of one length);
- `lean_packed`: lean + training.packing;
- `lean_random`: lean with batches in random order (no length grouping), as LLaMA-Factory's
  default sampler;
- `lean_step`: lean with each step's loss divided by its own answer tokens
  (`training.loss_normalization: step`, the default before 2026-12-02) instead of the epoch's
  mean per step;
- `lean_fa`: lean with strategy `lora_fa` at its defaults (LoRA-FA: A frozen, rank 16).
A variant written `NAME@S` trains with seed S (default 0), e.g. `--variants lean@1,lean@2`.
    python benchmarks/sft_speed.py --variants lean,lean_global,lean_packed --output sft_grouping
Peak memory is the child's VmHWM (resident high-water mark; model loading included). Real
tokens/s counts non-pad tokens trained on. Results: benchmarks/results/sft_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from _children import report_child, run_children, vm_hwm_mb, write_results

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "alpaca-en-demo" / "train.json"
WORK = ROOT / "benchmarks" / "work" / "sft_speed"
VARIANTS = ("hf_loss", "answer_loss", "packed", "lean", "lean_global", "lean_packed")
LEAN = ("lean", "lean_global", "lean_packed", "lean_random", "lean_step", "lean_fa")
SIZES = {"alpaca": (288, 100), "multi30k": (600, 300)}  # (train, held-out) records
MAX_LENGTH = {"alpaca": 256, "multi30k": 128}
GROUPING = {"lean_global": "global", "lean_random": "none"}  # the others: window


# --data multi30k: a second generative set for what was chosen on alpaca (the loss weighting):
# English -> German translation, the first train pairs and the first validation pairs.
MULTI30K = ROOT.parent / "shared" / "data" / "multi30k-en-de"
TRANSLATION = {"type": "translation", "source_language": "English", "target_language": "German"}


def records_for(data: str, n_train: int, n_eval: int) -> tuple[list, list, dict]:
    """(train records, held-out records, task options) of a benchmark set."""
    if data == "multi30k":

        def read(name: str, n: int) -> list:
            with (MULTI30K / name).open(encoding="utf-8") as f:
                return [json.loads(next(f)) for _ in range(n)]

        return read("train.jsonl", n_train), read("validation.jsonl", n_eval), TRANSLATION
    records = json.loads(DATA.read_text(encoding="utf-8"))
    return records[:n_train], records[-n_eval:], {"type": "instruction"}


def child(name: str, n_train: int, n_eval: int, data: str = "alpaca") -> dict[str, Any]:
    import tunewise

    variant, _, seed = name.partition("@")

    if variant == "hf_loss":  # the previous path: the model's own loss over full logits
        from tunewise.tasks.generation import base, inference

        base.GenerationTask.loss_module = lambda self, model: None  # type: ignore[method-assign]
        inference.supports_position_loss = lambda model: False  # type: ignore[assignment]
    train, held, task = records_for(data, n_train, n_eval)
    WORK.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, part in (("train", train), ("held", held)):
        files[split] = WORK / f"{data}-{split}-{n_train}.jsonl"
        files[split].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part))
    cfg = {
        "model": {"name": "smollm2-135m", "max_length": MAX_LENGTH[data]},
        "task": {**task, "eval_generate_samples": 0},
        "data": {"train": str(files["train"]), "validation": str(files["held"])},
        "strategy": {
            "name": "lora",
            "r": 8,
            "alpha": 16,
            "dropout": 0.0 if variant in LEAN else 0.1,
        }
        if variant != "lean_fa"
        else {"name": "lora_fa"},  # LoRA-FA at its defaults (rank 16, A frozen)
        "training": {
            "epochs": 1,
            "batch_size": 4,
            "learning_rate": 1.5e-3,
            "num_threads": 2,
            "packing": variant in ("packed", "lean_packed"),
            # lean_global: the old grouping (whole set sorted by length: same-length batches)
            "length_grouping": GROUPING.get(variant, "window"),
            "loss_normalization": "step" if variant == "lean_step" else "epoch",
        },
        "eval": {"each_epoch": False, "batch_size": 8},
        "output_dir": str(WORK / f"run-{variant}"),
        "seed": int(seed or 0),
    }
    started = time.perf_counter()
    result = tunewise.finetune(cfg, overwrite=True)
    m, t = result.metrics["validation"], result.manifest["training"]
    return {
        "variant": name,
        "n_train": t["n_train"],
        "n_held_out": m["n_examples"],
        "steps": t["steps"],
        "perplexity_before": round(m["perplexity_before"], 4),
        "perplexity": round(m["perplexity"], 4),
        "train_seconds": t["train_seconds"],
        "real_tokens": t["real_tokens"],
        "real_tokens_per_second": t["real_tokens_per_second"],
        "peak_rss_mb": round(vm_hwm_mb(), 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def markdown(out: dict[str, Any]) -> str:
    rows = {r["variant"]: r for r in out["runs"]}
    base = rows.get("hf_loss")
    lines = [
        "# smollm2-135m LoRA SFT: loss on answer positions, packing",
        "",
        f"{out['setup']}. Load average {out['load_average']['start']} at the start, "
        f"{out['load_average']['end']} at the end.",
        "",
        "| variant | held-out ppl (before → after) | real tok/s | × hf_loss | peak RSS MB | "
        "train s |",
        "|---|---|---|---|---|---|",
    ]
    for r in out["runs"]:
        ratio = r["real_tokens_per_second"] / base["real_tokens_per_second"] if base else 1.0
        lines.append(
            f"| {r['variant']} | {r['perplexity_before']:.3f} → {r['perplexity']:.3f} | "
            f"{r['real_tokens_per_second']:,.1f} | {ratio:.2f} | {r['peak_rss_mb']:,.0f} | "
            f"{r['train_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 train / 8 held-out records")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--data", choices=("alpaca", "multi30k"), default="alpaca")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--output", default="sft_speed", help="results/<output>.json and .md")
    args = parser.parse_args()
    n_train, n_eval = (16, 8) if args.quick else SIZES[args.data]
    if args.child:
        report_child(child(args.child, n_train, n_eval, args.data))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    start_load = round(os.getloadavg()[0], 2)
    extra = ["--data", args.data, *(["--quick"] if args.quick else [])]
    runs = run_children(__file__, args.variants.split(","), extra)
    out = {
        "benchmark": f"smollm2-135m LoRA SFT on {args.data}: answer-position loss and packing",
        "setup": (
            f"{os.cpu_count()} CPU cores, {args.data}: {n_train} train / {n_eval} held-out "
            f"records, batch 4, max length {MAX_LENGTH[args.data]}, "
            "LoRA r=8 on all linear layers, lr 1.5e-3, 1 epoch, 2 threads, "
            f"{time.strftime('%Y-%m-%d')}"
        ),
        "quick": args.quick,
        "runs": runs,
    }
    stem = f"{args.output}_quick" if args.quick else args.output
    write_results(stem, out, start_load, markdown)


if __name__ == "__main__":
    main()
