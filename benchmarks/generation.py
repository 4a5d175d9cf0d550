"""Generation benchmarks with smollm2-135m + LoRA: each task scored before and after a short
fine-tune, on held-out data, with the same generation sample both times.

    python benchmarks/generation.py                        # all four parts (CPU: ~1 hour)
    python benchmarks/generation.py --parts alpaca --scale 2

Parts (sizes are the defaults at --scale 1; `--scale` multiplies the training examples):
- alpaca: instruction SFT on alpaca-en-demo; held-out answer perplexity (bar: >= 10% lower).
- bbc: summarization on bbc-news (shorter articles only, to fit the CPU); ROUGE-1/2/L.
- multi30k: English -> German translation on multi30k-en-de; BLEU and chrF (sacrebleu).
- xquad: generative QA on xquad-en split by article (last 6 held out, as the extractive
  benchmark); SQuAD EM / F1, zero-shot vs LoRA.
Writes benchmarks/results/generation.json (+ .md) after every part, with wall time and real
(non-pad) training tokens per second. Every run uses `--threads` torch threads (default 1: on
this shared 2-core machine one thread is several times faster than two under load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work" / "generation"


def _write(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


# -- data for each part: (train file, held-out file, task options, model.max_length, notes) -----


def alpaca(n_train: int, n_eval: int) -> tuple[Path, Path, dict, int, str]:
    records = json.loads((DATA / "alpaca-en-demo" / "train.json").read_text(encoding="utf-8"))
    train, held = records[:n_train], records[-n_eval:]
    note = f"first {n_train} records train, last {n_eval} of the file held out"
    return (
        _write(WORK / "alpaca" / "train.jsonl", train),
        _write(WORK / "alpaca" / "held.jsonl", held),
        {"type": "instruction"},
        256,
        note,
    )


def bbc(n_train: int, n_eval: int) -> tuple[Path, Path, dict, int, str]:
    records = _jsonl(DATA / "bbc-news" / "train.jsonl")
    short = [r for r in records if len(r["document"].split()) <= 220]
    random.Random(0).shuffle(short)
    train, held = short[:n_train], short[n_train : n_train + n_eval]
    note = f"articles of <= 220 words ({len(short)} of {len(records)}), shuffled (seed 0)"
    return (
        _write(WORK / "bbc" / "train.jsonl", train),
        _write(WORK / "bbc" / "held.jsonl", held),
        {"type": "summarization", "max_new_tokens": 160},
        640,
        note,
    )


def multi30k(n_train: int, n_eval: int) -> tuple[Path, Path, dict, int, str]:
    train = _jsonl(DATA / "multi30k-en-de" / "train.jsonl")[:n_train]
    held = _jsonl(DATA / "multi30k-en-de" / "validation.jsonl")[:n_eval]
    options = {
        "type": "translation",
        "source_language": "English",
        "target_language": "German",
        "max_new_tokens": 64,
    }
    note = f"first {n_train} train pairs; first {n_eval} validation pairs"
    return (
        _write(WORK / "multi30k" / "train.jsonl", train),
        _write(WORK / "multi30k" / "held.jsonl", held),
        options,
        160,
        note,
    )


def xquad(n_train: int, n_eval: int) -> tuple[Path, Path, dict, int, str]:
    from tunewise.tasks.extractive_qa.squad import split_by_article
    from tunewise.tasks.generation.readers import read_qa

    train_json, held_json = split_by_article(DATA / "xquad-en" / "train.json", 6, WORK / "xquad")

    def flat(path: Path) -> list[dict]:
        keys = ("question", "context", "answers")
        return [{k: r[k] for k in keys} for r in read_qa(path)]

    train = flat(train_json)
    random.Random(0).shuffle(train)
    held = flat(held_json)[:n_eval]
    note = f"{n_train} questions of the first 30 articles; first {n_eval} of the last 6 articles"
    return (
        _write(WORK / "xquad" / "train.jsonl", train[:n_train]),
        _write(WORK / "xquad" / "held.jsonl", held),
        {"type": "generative_qa", "max_new_tokens": 24},
        448,
        note,
    )


# name -> (builder, training examples at scale 1, held-out examples, generated examples, batch)
PARTS = {
    "alpaca": (alpaca, 96, 40, 0, 4),
    "bbc": (bbc, 32, 16, 12, 2),
    "multi30k": (multi30k, 128, 48, 48, 8),
    "xquad": (xquad, 64, 48, 48, 4),
}
HEADLINE = {
    "alpaca": ("perplexity",),
    "bbc": ("rouge1", "rouge2", "rougeL"),
    "multi30k": ("bleu", "chrf"),
    "xquad": ("exact_match", "f1"),
}


def run_part(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import tunewise

    build, n_train, n_eval, n_generate, batch = PARTS[name]
    n_train = int(n_train * args.scale)
    train, held, task, max_length, note = build(n_train, n_eval)
    if n_generate:
        task["eval_generate_samples"] = n_generate
    cfg = {
        "model": {"name": "smollm2-135m", "max_length": max_length},
        "task": task,
        "data": {"train": str(train), "validation": str(held)},
        "strategy": {"name": "lora"},
        "training": {
            "epochs": 1,
            "batch_size": batch,
            "num_threads": args.threads,
            "logging_steps": 5,
        },
        "eval": {"each_epoch": False, "batch_size": 8},
        "output_dir": str(WORK / name / "run"),
        "seed": 0,
    }
    started = time.perf_counter()
    result = tunewise.finetune(cfg, overwrite=True)
    wall = time.perf_counter() - started
    m, t = result.metrics["validation"], result.manifest["training"]
    keys = ("loss", "perplexity", *[k for k in HEADLINE[name] if k != "perplexity"])
    before = {k: round(m[f"{k}_before"], 4) for k in keys}
    after = {k: round(m[k], 4) for k in keys}
    return {
        "part": name,
        "task": task["type"],
        "scale": args.scale,
        "threads": args.threads,
        "load_average": round(os.getloadavg()[0], 1),
        "data": note,
        "n_train": t["n_train"],
        "n_held_out": m["n_examples"],
        "n_generated": m.get("n_generated", 0),
        "max_length": max_length,
        "batch_size": batch,
        "steps": t["steps"],
        "learning_rate": t["learning_rate"],
        "before": before,
        "after": after,
        "perplexity_change_percent": round(100 * (m["perplexity"] / m["perplexity_before"] - 1), 2),
        "train_seconds": t["train_seconds"],
        "real_tokens": t["real_tokens"],
        "real_tokens_per_second": t["real_tokens_per_second"],
        "wall_seconds": round(wall, 1),
    }


def markdown(out: dict[str, Any]) -> str:
    s = out["setup"]
    lines = [
        "# Generation with smollm2-135m + LoRA: before / after a short fine-tune",
        "",
        f"{s['machine']}, shared with other jobs (load: {s.get('load_average_observed', '?')}); "
        "LoRA r=8 on every linear layer of the blocks, 1 epoch, the strategy's default learning "
        f"rate. {s['date']}. Generated samples stay in the run directories (they copy dataset "
        "text).",
        "",
        "| part | metric | before | after | train ex. | steps | train s | tokens/s | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["runs"]:
        metrics = ["perplexity", *[k for k in r["after"] if k not in ("loss", "perplexity")]]
        for i, k in enumerate(metrics):
            head = (
                f"{r['part']} ({r['task']})",
                r["n_train"],
                r["steps"],
                r["train_seconds"],
                r["real_tokens_per_second"],
                r["wall_seconds"],
            )
            part, n, steps, secs, tps, wall = head if i == 0 else ("", "", "", "", "", "")
            lines.append(
                f"| {part} | {k} | {r['before'][k]:.2f} | {r['after'][k]:.2f} | {n} | {steps} | "
                f"{secs} | {tps} | {wall} |"
            )
    lines += ["", "Data:"] + [
        f"- {r['part']}: {r['data']} (scale {r.get('scale', 1.0)}, {r.get('threads', 1)} "
        "torch thread(s))"
        for r in out["runs"]
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies training examples")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--results", default="generation", help="results file stem")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = RESULTS / f"{args.results}.json"
    previous = json.loads(path.read_text()) if path.is_file() else {"runs": []}
    runs = {r["part"]: r for r in previous.get("runs", [])}
    for name in args.parts:
        key = name if args.scale == 1 else f"{name}-x{args.scale:g}"  # one entry per scale
        runs[key] = {**run_part(name, args), "part": key}
        print(json.dumps(runs[key]), flush=True)
        out = {
            "benchmark": "generation tasks, smollm2-135m LoRA, before/after",
            "setup": {
                "model": "smollm2-135m (SmolLM2-135M-Instruct, GGUF Q4_1 dequantised)",
                "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores",
                "date": time.strftime("%Y-%m-%d"),
                "load_average_observed": f"{os.getloadavg()[0]:.1f} at the end of the last part",
            },
            "runs": sorted(
                runs.values(), key=lambda r: (list(PARTS).index(r["part"].split("-")[0]), r["part"])
            ),
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        path.with_suffix(".md").write_text(markdown(out))
    print(markdown(out))


if __name__ == "__main__":
    main()
