"""Inference benchmark (issue 12 §3), every figure measured side by side in one run:

1. SST-2 dev predictions per second: `tunewise predict`'s streaming path (windows sorted by
   length, strategy folded into the weights, inference mode) vs a `transformers.pipeline(
   "text-classification")` loop on the same weights, at batch sizes 1 and 64. tunewise's
   classification head (mean pooling) has no transformers class, so the pipeline is handed the
   merged model object itself (with the two attributes a pipeline reads, `device` and `dtype`).
2. ONNX int8 vs fp32 (`tunewise export --format onnx --quantize int8`): latency and accuracy on
   SST-2 dev, from the export report.
3. smollm2-135m generation: generated tokens/s for 1 prompt, and for 8 prompts decoded one at a
   time vs batched (KV-cached, left-padded, per-row stop: `tasks/generation/inference.py`).

    python benchmarks/inference.py            # full: minilm trained on 4,000 SST-2 examples
    python benchmarks/inference.py --quick    # smoke: tiny sizes, results to benchmarks/work/
    python benchmarks/inference.py --only generation --run runs/sst2   # some parts, a given run

Writes benchmarks/results/inference.json and .md (--quick: benchmarks/work/inference_quick.*).
SST-2 and alpaca are read in place from ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "data"
SST2, ALPACA = DATA / "sst2", DATA / "alpaca-en-demo" / "train.json"
RESULTS, WORK = ROOT / "benchmarks" / "results", ROOT / "benchmarks" / "work"


def train_run(out: Path, samples: int) -> Path:
    import tunewise

    cfg = {
        "model": {"name": "minilm", "max_length": 128},
        "task": {"type": "classification"},
        "data": {
            "train": str(SST2 / "train.tsv"),
            "validation": str(SST2 / "dev.tsv"),
            "text_column": ["sentence", "content"],
        },
        "strategy": {"name": "lora"},
        "training": {"epochs": 1, "max_train_samples": samples},
        "eval": {"each_epoch": False, "batch_size": 128},
        "output_dir": str(out),
        "seed": 0,
    }
    return tunewise.finetune(cfg, overwrite=True).run_dir


def dev_texts(limit: int | None) -> tuple[list[str], list[int]]:
    from tunewise.data.readers import read_records

    rows = [(r["content"], int(r["label"])) for _, r in read_records(SST2 / "dev.tsv")]
    rows = rows[:limit] if limit else rows
    return [t for t, _ in rows], [y for _, y in rows]


def bench_predict(run: Path, texts: list[str], work: Path) -> dict:
    """tunewise's file path vs a pipeline loop on the same (merged) weights."""
    import torch
    from transformers import pipeline

    import tunewise
    from tunewise.serving.batch_predict import fold_for_inference, predict_file

    predictor = tunewise.load(run, device="cpu")
    fold_for_inference(predictor)
    source = work / "dev_inputs.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    model = predictor.model
    model.device, model.dtype = torch.device("cpu"), torch.float32  # what a pipeline reads
    labels = predictor.task.labels
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {name: i for i, name in enumerate(labels)}
    from transformers.utils import logging

    logging.set_verbosity_error()  # "PooledClassifier is not supported" lists every class
    pipe = pipeline("text-classification", model=model, tokenizer=predictor.tokenizer)
    out: dict = {"examples": len(texts)}
    warm = work / "warm_inputs.jsonl"  # first calls pay one-off set-up: not measured
    warm.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[:64]), encoding="utf-8")
    predict_file(predictor, warm, work / "warm_preds.jsonl", progress=False)
    pipe(texts[:64], batch_size=64)
    for batch in (1, 64):
        target = work / f"preds_{batch}.jsonl"
        start = time.perf_counter()
        predict_file(predictor, source, target, batch_size=batch, progress=False)
        ours = time.perf_counter() - start
        mine = [json.loads(x)["label"] for x in target.read_text().splitlines()]
        start = time.perf_counter()
        # batch 1: one call per text, as a naive endpoint does; 64: the pipeline's own batching
        theirs = [pipe(t)[0] for t in texts] if batch == 1 else pipe(texts, batch_size=batch)
        naive = time.perf_counter() - start
        agree = sum(a == b["label"] for a, b in zip(mine, theirs, strict=True)) / len(texts)
        out[f"batch_{batch}"] = {
            "tunewise_per_second": round(len(texts) / ours, 1),
            "pipeline_per_second": round(len(texts) / naive, 1),
            "speedup": round(naive / ours, 2),
            "label_agreement": round(agree, 4),
        }
        print(f"batch {batch}: {out[f'batch_{batch}']}", flush=True)
    return out


def bench_onnx(run: Path, work: Path, limit: int | None) -> dict:
    """int8 vs fp32 on SST-2 dev (the run's validation file; --quick: its first `limit`)."""
    import tunewise

    target = work / "onnx"
    shutil.rmtree(target, ignore_errors=True)
    data = None
    if limit:
        lines = (SST2 / "dev.tsv").read_text(encoding="utf-8").splitlines()[: limit + 1]
        data = work / "dev_subset.tsv"
        data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = tunewise.api.export(run, format="onnx", output=target, quantize="int8", data=data)
    keep = ("max_abs_diff", "examples_checked")
    return {**{k: report[k] for k in keep}, **report["quantize"]}


def bench_generation(n_prompts: int, new_tokens: int) -> dict:
    from tunewise.serving.predictor import Predictor
    from tunewise.tasks.generation.inference import generate_texts

    records = json.loads(ALPACA.read_text(encoding="utf-8"))[:n_prompts]
    predictor = Predictor.from_base(
        "smollm2-135m",
        "instruction",
        [f"task.max_new_tokens={new_tokens}", "model.max_length=512"],
        device="cpu",
    )
    task, tok = predictor.task, predictor.tokenizer
    prompts = task.prompts(task.records_to_dataset(records), tok)

    def run(items: list, batch: int) -> tuple[float, int]:
        start = time.perf_counter()
        texts = generate_texts(predictor.model, tok, items, task.options, True, batch)
        seconds = time.perf_counter() - start
        return seconds, sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)

    run(prompts[:1], 1)  # warm-up
    one_s, one_n = run(prompts[:1], 1)
    seq_s, seq_n = run(prompts, 1)
    bat_s, bat_n = run(prompts, len(prompts))
    return {
        "prompts": len(prompts),
        "max_new_tokens": new_tokens,
        "one_prompt_tokens_per_second": round(one_n / one_s, 1),
        "one_at_a_time_tokens_per_second": round(seq_n / seq_s, 1),
        "batched_tokens_per_second": round(bat_n / bat_s, 1),
        "batched_speedup": round((bat_n / bat_s) / (seq_n / seq_s), 2),
        "seconds_one_at_a_time": round(seq_s, 2),
        "seconds_batched": round(bat_s, 2),
    }


def markdown(result: dict) -> str:
    lines = [
        "# Inference benchmark" + (" (--quick smoke, no measurement)" if result["quick"] else ""),
        "",
        f"`python benchmarks/inference.py{' --quick' if result['quick'] else ''}` on "
        f"{result['cpus']} CPU cores, torch threads {result['threads']}.",
    ]
    if "predict" in result:
        lines += predict_table(result["predict"])
    if "onnx" in result:
        lines += onnx_table(result["onnx"])
    if "generation" in result:
        lines += generation_table(result["generation"])
    return "\n".join(lines) + "\n"


def predict_table(p: dict) -> list[str]:
    lines = [
        "",
        f"## SST-2 dev predictions/s (minilm + LoRA, {p['examples']} sentences)",
        "",
        "| batch | tunewise predict | pipeline loop | speedup | same labels |",
        "|---|---|---|---|---|",
    ]
    for b in (1, 64):
        r = p[f"batch_{b}"]
        lines.append(
            f"| {b} | {r['tunewise_per_second']} | {r['pipeline_per_second']} | "
            f"{r['speedup']}× | {r['label_agreement']:.2%} |"
        )
    return lines


def onnx_table(q: dict) -> list[str]:
    metric = q["metric"]
    return [
        "",
        "## ONNX fp32 vs int8 (onnxruntime dynamic quantization)",
        "",
        "| | fp32 | int8 |",
        "|---|---|---|",
        f"| {metric} | {q[f'{metric}_fp32']:.4f} | {q[f'{metric}_int8']:.4f} |",
        f"| latency, batch 1 (ms) | {q['latency_ms_batch1_fp32']} | "
        f"{q['latency_ms_batch1_int8']} |",
        f"| examples/s, batch 32 | {q['examples_per_second_fp32']} | "
        f"{q['examples_per_second_int8']} |",
        f"| size (MB) | {q['size_mb_fp32']} | {q['size_mb_int8']} |",
        "",
        f"int8: {q['speedup_batch1']}× faster at batch 1, {q['speedup_batched']}× batched; "
        f"accuracy change {q['accuracy_change'] * 100:+.2f} points on {q['examples']} examples.",
    ]


def generation_table(g: dict) -> list[str]:
    return [
        "",
        f"## smollm2-135m generation ({g['prompts']} prompts, up to {g['max_new_tokens']} "
        "new tokens, greedy)",
        "",
        "| mode | generated tokens/s |",
        "|---|---|",
        f"| 1 prompt | {g['one_prompt_tokens_per_second']} |",
        f"| {g['prompts']} prompts one at a time | {g['one_at_a_time_tokens_per_second']} |",
        f"| {g['prompts']} prompts batched | {g['batched_tokens_per_second']} |",
        "",
        f"Batched decoding: {g['batched_speedup']}× the tokens/s of one at a time.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--run", type=Path, help="reuse a trained SST-2 run directory")
    parser.add_argument(
        "--only", default="predict,onnx,generation", help="comma-separated parts to run"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    WORK.mkdir(parents=True, exist_ok=True)
    work = WORK / ("inference_quick" if args.quick else "inference")
    work.mkdir(parents=True, exist_ok=True)
    parts = set(args.only.split(","))
    result: dict = {"quick": args.quick, "cpus": os.cpu_count(), "threads": torch.get_num_threads()}
    if parts & {"predict", "onnx"}:
        run = args.run or train_run(work / "run", 64 if args.quick else 4000)
        result["run"] = str(run)
    if "predict" in parts:
        result["predict"] = bench_predict(run, dev_texts(48 if args.quick else None)[0], work)
    if "onnx" in parts:
        result["onnx"] = bench_onnx(run, work, 48 if args.quick else None)
    if "generation" in parts:
        result["generation"] = bench_generation(8, 4 if args.quick else 64)
    target = WORK if args.quick else RESULTS
    name = "inference_quick" if args.quick else "inference"
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (target / f"{name}.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
