"""XQuAD-en extractive QA benchmark: minilm (full and LoRA) against the first-sentence baseline.

    python benchmarks/xquad.py                       # full + lora, 1 epoch each
    python benchmarks/xquad.py --epochs 3 --strategies lora
    python benchmarks/xquad.py --rescore-first 48    # saved runs on generation.py's subset

The 36 articles of ../shared/data/xquad-en are split by article: the last 6 (139 questions)
are held out and scored, the first 30 (786 questions) train. Writes
benchmarks/results/xquad_extractive.json (and .md): SQuAD EM / F1 on the held-out articles,
training wall time and real (non-pad) training tokens per second, and the first-sentence
baseline on the same questions. Generative QA with smollm2-135m on the same split is a separate
benchmark (see benchmarks/results/ for its file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
XQUAD = ROOT.parent / "shared" / "data" / "xquad-en" / "train.json"
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work" / "xquad"
STRATEGIES = {"full": {"name": "full"}, "lora": {"name": "lora"}}


def config(strategy: str, train: Path, held: Path, args: argparse.Namespace) -> dict:
    return {
        "model": {"name": "minilm", "max_length": args.max_length},
        "task": {"type": "extractive_qa", "doc_stride": args.doc_stride},
        "data": {"train": str(train), "validation": str(held), "format": "squad"},
        "strategy": STRATEGIES[strategy],
        "training": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate.get(strategy),
            "logging_steps": 10,
        },
        "eval": {"each_epoch": False, "batch_size": 64},
        "output_dir": str(WORK / f"minilm-{strategy}"),
        "seed": 0,
    }


def run(strategy: str, train: Path, held: Path, args: argparse.Namespace) -> dict:
    import tunewise

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    result = tunewise.finetune(config(strategy, train, held, args), overwrite=True)
    wall = time.perf_counter() - started
    t = result.manifest["training"]
    m = result.metrics["validation"]
    return {
        "model": "minilm",
        "strategy": strategy,
        "exact_match": round(m["exact_match"], 2),
        "f1": round(m["f1"], 2),
        "n_examples": m["n_examples"],
        "epochs": args.epochs,
        "steps": t["steps"],
        "learning_rate": t["learning_rate"],
        "learning_rate_source": t["learning_rate_source"],
        "trainable_percent": result.manifest["strategy"]["parameters"]["percent"],
        "train_seconds": t["train_seconds"],
        "wall_seconds": round(wall, 1),
        "real_tokens": t["real_tokens"],
        "real_tokens_per_second": t["real_tokens_per_second"],
        # 1-minute load average before / after: the 2 cores are shared, and throughput with it
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def baseline(held: Path) -> dict:
    from tunewise.evaluation.qa_baseline import first_sentence_scores
    from tunewise.tasks.extractive_qa.squad import read_qa

    records = read_qa(held)
    scores = first_sentence_scores(
        [r["context"] for r in records], [r["answers"]["text"] for r in records]
    )
    return {
        "model": "first sentence of the context",
        "strategy": "-",
        "exact_match": round(scores["exact_match"], 2),
        "f1": round(scores["f1"], 2),
        "n_examples": scores["n_examples"],
    }


def rescore_first(n: int, held: Path) -> None:
    """Score the saved runs and the baseline on the first `n` held-out questions only, the
    subset the generative-QA benchmark (benchmarks/generation.py) uses, so the two routes
    compare on the same questions. Adds `first_n` to each run of the results JSON."""
    from tunewise.evaluation.qa_baseline import first_sentence
    from tunewise.evaluation.squad import squad_scores
    from tunewise.serving.predictor import Predictor
    from tunewise.tasks.extractive_qa.squad import read_qa

    path = RESULTS / "xquad_extractive.json"
    out = json.loads(path.read_text())
    records = read_qa(held)[:n]
    golds = [r["answers"]["text"] for r in records]
    for row in out["runs"]:
        if row["strategy"] == "-":
            answers = [first_sentence(r["context"]) for r in records]
        else:
            predictor = Predictor(WORK / f"minilm-{row['strategy']}")
            inputs = [{"question": r["question"], "context": r["context"]} for r in records]
            answers = [p["answer"] for p in predictor.predict(inputs)]
        scores = squad_scores(answers, golds)
        row["first_n"] = {k: round(v, 2) for k, v in scores.items()}
    path.write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / "xquad_extractive.md").write_text(markdown(out))


def markdown(out: dict) -> str:
    rows = [
        "| system | EM | F1 | steps | train s | wall s | real tokens/s | load avg |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in out["runs"]:
        name = r["model"] if r["strategy"] == "-" else f"{r['model']} {r['strategy']}"
        rows.append(
            f"| {name} | {r['exact_match']:.1f} | {r['f1']:.1f} | {r.get('steps', '-')} | "
            f"{r.get('train_seconds', '-')} | {r.get('wall_seconds', '-')} | "
            f"{r.get('real_tokens_per_second', '-')} | "
            f"{' → '.join(str(x) for x in r.get('load_average', [])) or '-'} |"
        )
    s = out["setup"]
    first = [r for r in out["runs"] if "first_n" in r]
    if first:
        n = first[0]["first_n"]["n_examples"]
        rows += [
            "",
            f"On the first {n} held-out questions only (the generative-QA benchmark's subset):",
            "",
            "| system | EM | F1 |",
            "|---|---|---|",
        ]
        for r in first:
            name = r["model"] if r["strategy"] == "-" else f"{r['model']} {r['strategy']}"
            rows.append(
                f"| {name} | {r['first_n']['exact_match']:.1f} | {r['first_n']['f1']:.1f} |"
            )
    return (
        "# XQuAD-en extractive QA (held-out articles)\n\n"
        f"Train: first {s['train_articles']} articles ({s['n_train_questions']} questions); "
        f"scored on the last {s['held_out_articles']} ({s['n_heldout_questions']} questions). "
        f"max_length {s['max_length']}, doc_stride {s['doc_stride']}, batch {s['batch_size']}, "
        f"{s['epochs']} epochs, {s['threads']} torch threads on {s['machine']}.\n\n"
        + "\n".join(rows)
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--held-out", type=int, default=6, help="articles held back (last N)")
    parser.add_argument("--lr-full", type=float, default=None, help="None: strategy default")
    parser.add_argument("--lr-lora", type=float, default=None, help="None: strategy default")
    parser.add_argument(
        "--rescore-first",
        type=int,
        default=None,
        help="no training: score the saved runs on the first N held-out questions",
    )
    args = parser.parse_args()
    args.learning_rate = {"full": args.lr_full, "lora": args.lr_lora}
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from tunewise.tasks.extractive_qa.squad import read_qa, split_by_article

    train, held = split_by_article(XQUAD, args.held_out, WORK / "split")
    if args.rescore_first:
        rescore_first(args.rescore_first, held)
        print((RESULTS / "xquad_extractive.md").read_text())
        return
    n_articles = len(json.loads(XQUAD.read_text(encoding="utf-8"))["data"])
    runs = [baseline(held)]
    for strategy in args.strategies:
        runs.append(run(strategy, train, held, args))
        print(json.dumps(runs[-1]), flush=True)
    out = {
        "benchmark": "xquad-en extractive QA",
        "setup": {
            "data": str(XQUAD.relative_to(ROOT.parent)),
            "train_articles": n_articles - args.held_out,
            "held_out_articles": args.held_out,
            "n_train_questions": len(read_qa(train)),
            "n_heldout_questions": len(read_qa(held)),
            "max_length": args.max_length,
            "doc_stride": args.doc_stride,
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "threads": torch.get_num_threads(),
            "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores",
            "date": time.strftime("%Y-%m-%d"),
        },
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "xquad_extractive.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / "xquad_extractive.md").write_text(markdown(out))
    print(markdown(out))


if __name__ == "__main__":
    main()
