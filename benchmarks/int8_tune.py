"""Which onnxruntime dynamic-quantization settings keep SST-2 accuracy, chosen on held-out data.

    python benchmarks/int8_tune.py     # ~5 min; needs inference.py's run and its ONNX export

The minilm SST-2 run of `benchmarks/inference.py` (4,000 examples) exported to ONNX fp32 is
quantized to int8 with several `quantize_dynamic` settings. SST-2 dev is split once (seed 0,
`heldout.py`): a setting is chosen on the tuning half only (the most accurate of those at least
1.8x as fast as fp32 at batch 32), and the report half is scored for every setting, the choice
included. Speed: examples/s at batch 32 and latency at batch 1, fp32 and every setting timed in
turn, three rounds, medians; 2 threads. Results: benchmarks/results/int8_tune.json and .md.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work"
RUN, FP32 = WORK / "inference" / "run", WORK / "inference" / "onnx" / "model.onnx"
OUT, RESULTS = WORK / "int8_tune", ROOT / "benchmarks" / "results"
DEV = ROOT.parent / "shared" / "data" / "sst2" / "dev.tsv"

# name -> quantize_dynamic keyword arguments (weights int8; activations quantized on the fly)
VARIANTS = {
    "default": {},  # what `export --quantize int8` does today: every MatMul/Gather, per tensor
    "per_channel": {"per_channel": True},
    "weights_only": {"extra_options": {"MatMulConstBOnly": True}},  # attention matmuls stay fp32
    "weights_only_per_channel": {"per_channel": True, "extra_options": {"MatMulConstBOnly": True}},
    "matmul_only": {"op_types_to_quantize": ["MatMul"]},  # embeddings (Gather) stay fp32
    "matmul_weights_per_channel": {
        "op_types_to_quantize": ["MatMul"],
        "per_channel": True,
        "extra_options": {"MatMulConstBOnly": True},
    },
}


def halves(predictor):
    from heldout import split_halves
    from tunewise.export.samples import batches

    out = {}
    for name, path in zip(("tune", "report"), split_halves(DEV), strict=True):
        dataset = predictor.read(path)
        encoded = predictor.task.tokenize(dataset, predictor.tokenizer)
        out[name] = batches(encoded, predictor.task.collator(predictor.tokenizer), 32)
    return out


def accuracy(session, groups) -> float:
    from tunewise.export.onnx import run_session

    right = total = 0
    for batch in groups:
        logits = run_session(session, batch)[0]
        right += int((logits.argmax(-1) == batch["labels"].numpy()).sum())
        total += len(logits)
    return right / total


def speed(session, groups, singles) -> tuple[float, float]:
    from tunewise.export.onnx import run_session

    run_session(session, groups[0])
    start = time.perf_counter()
    n = sum(len(run_session(session, b)[0]) for b in groups)
    batched = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for b in singles:
        run_session(session, b)
    return batched, 1000 * (time.perf_counter() - start) / len(singles)


def main() -> None:
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    import tunewise
    from tunewise.export.samples import batches

    predictor = tunewise.load(RUN, device="cpu")
    data = halves(predictor)
    OUT.mkdir(parents=True, exist_ok=True)
    files = {"fp32": FP32}
    for name, kwargs in VARIANTS.items():
        files[name] = OUT / f"{name}.onnx"
        quantize_dynamic(str(FP32), str(files[name]), weight_type=QuantType.QInt8, **kwargs)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    sessions = {
        k: ort.InferenceSession(str(v), options, providers=["CPUExecutionProvider"])
        for k, v in files.items()
    }
    tokenize = predictor.task.tokenize
    one = predictor.read(DEV).select(range(64))
    singles = batches(
        tokenize(one, predictor.tokenizer), predictor.task.collator(predictor.tokenizer), 1
    )
    timing: dict[str, list[tuple[float, float]]] = {k: [] for k in files}
    for _ in range(3):
        for name, session in sessions.items():
            timing[name].append(speed(session, data["tune"], singles))
    result: dict = {
        "load": os.getloadavg(),
        "examples": {k: sum(len(b["labels"]) for b in v) for k, v in data.items()},
    }
    rows = {}
    for name, session in sessions.items():
        rows[name] = {
            "tune_accuracy": round(accuracy(session, data["tune"]), 4),
            "report_accuracy": round(accuracy(session, data["report"]), 4),
            "examples_per_s": round(statistics.median(t[0] for t in timing[name]), 1),
            "latency_ms_batch1": round(statistics.median(t[1] for t in timing[name]), 3),
            "size_mb": round(files[name].stat().st_size / 2**20, 1),
        }
    base = rows["fp32"]
    for row in rows.values():
        row["speedup_batched"] = round(row["examples_per_s"] / base["examples_per_s"], 2)
        row["speedup_batch1"] = round(base["latency_ms_batch1"] / row["latency_ms_batch1"], 2)
        for half in ("tune", "report"):
            row[f"{half}_change_points"] = round(
                100 * (row[f"{half}_accuracy"] - base[f"{half}_accuracy"]), 2
            )
    fast = [k for k in VARIANTS if rows[k]["speedup_batched"] >= 1.8] or list(VARIANTS)
    chosen = max(fast, key=lambda k: (rows[k]["tune_accuracy"], rows[k]["speedup_batched"]))
    result.update({"rows": rows, "chosen_on_tuning_half": chosen})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "int8_tune.json").write_text(json.dumps(result, indent=1))
    md = [
        "# int8 dynamic quantization settings (SST-2, minilm, held-out)",
        "",
        f"`python benchmarks/int8_tune.py`, 2 threads, load average {result['load'][0]:.2f}; "
        f"tuning half {result['examples']['tune']} / report half {result['examples']['report']} "
        "SST-2 dev sentences. Chosen on the tuning half (most accurate of those ≥ 1.8× fp32 at "
        f"batch 32): **{chosen}**.",
        "",
        "| setting | tune acc | Δ pts | report acc | Δ pts | ex/s b32 | × fp32 | ms b1 | × fp32 "
        "| MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        md.append(
            f"| {name} | {r['tune_accuracy']} | {r['tune_change_points']} | {r['report_accuracy']} "
            f"| {r['report_change_points']} | {r['examples_per_s']} | {r['speedup_batched']} | "
            f"{r['latency_ms_batch1']} | {r['speedup_batch1']} | {r['size_mb']} |"
        )
    (RESULTS / "int8_tune.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    main()
