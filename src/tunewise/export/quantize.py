"""`export --format onnx --quantize int8`: onnxruntime dynamic quantization (int8 weights,
activations quantized on the fly), with its accuracy and latency change against the fp32 graph
measured on the same labelled examples and written into the export report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from tunewise.errors import TunewiseError
from tunewise.export.onnx import run_session
from tunewise.export.samples import batches, data_file, encoded_examples

BATCH = 32


def _settings() -> dict[str, Any]:
    """int8 weights per output channel, only in matmuls against constant weights: embeddings
    (Gather) and the attention's activation x activation matmuls stay fp32. Chosen on the tuning
    half of SST-2 dev among six settings (`benchmarks/int8_tune.py`): -0.46 points there against
    -2.98 for onnxruntime's defaults (per tensor, every MatMul and Gather), at 1.9x fp32's speed."""
    from onnxruntime.quantization import QuantType

    return {
        "weight_type": QuantType.QInt8,
        "per_channel": True,
        "op_types_to_quantize": ["MatMul"],
        "extra_options": {"MatMulConstBOnly": True},
    }


def quantize_int8(
    predictor: Any, out: Path, data: str | Path | None = None, limit: int = 1000
) -> dict[str, Any]:
    """Write DIR/model.int8.onnx; returns accuracy and latency of fp32 vs int8."""
    import onnxruntime as ort
    from onnxruntime.quantization import quantize_dynamic

    path = data_file(predictor, data)
    if path is None:
        raise TunewiseError(
            "--quantize int8 measures the accuracy change on labelled data: the run's validation "
            "and train files are no longer readable, so give --data FILE (labelled, in the "
            "run's format)."
        )
    encoded, source = encoded_examples(predictor, limit, labelled=True, path=path)
    if "labels" not in encoded.column_names and "start_positions" not in encoded.column_names:
        raise TunewiseError(f"{path}: no labels to measure accuracy on; give a labelled --data.")
    quantize_dynamic(str(out / "model.onnx"), str(out / "model.int8.onnx"), **_settings())
    collator = predictor.task.collator(predictor.tokenizer)
    if "start_positions" in encoded.column_names:
        encoded = encoded.remove_columns(
            [c for c in ("start_positions", "end_positions") if c in encoded.column_names]
        )
    groups = batches(encoded, collator, BATCH)
    singles = batches(encoded.select(range(min(BATCH, len(encoded)))), collator, 1)
    result: dict[str, Any] = {
        "method": "onnxruntime dynamic",
        "weight_type": "QInt8",
        "per_channel": True,
        "quantized": "MatMul with constant weights (embeddings and attention stay fp32)",
    }
    logits: dict[str, list[list[np.ndarray]]] = {}
    for name, file in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
        session = ort.InferenceSession(str(out / file), providers=["CPUExecutionProvider"])
        run_session(session, groups[0])  # warm-up
        start = time.perf_counter()
        logits[name] = [run_session(session, b) for b in groups]
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        for b in singles:
            run_session(session, b)
        single = (time.perf_counter() - start) / len(singles)
        result[f"examples_per_second_{name}"] = round(len(encoded) / seconds, 2)
        result[f"latency_ms_batch1_{name}"] = round(1000 * single, 3)
        result[f"size_mb_{name}"] = round((out / file).stat().st_size / 2**20, 2)
    metric, fp32, int8 = _scores(predictor.task, groups, logits)
    result.update(
        {
            "metric": metric,
            f"{metric}_fp32": round(fp32, 6),
            f"{metric}_int8": round(int8, 6),
            "accuracy_change": round(int8 - fp32, 6),
            "latency_change": round(
                result["latency_ms_batch1_int8"] / max(result["latency_ms_batch1_fp32"], 1e-9), 4
            ),
            "speedup_batch1": round(
                result["latency_ms_batch1_fp32"] / max(result["latency_ms_batch1_int8"], 1e-9), 3
            ),
            "speedup_batched": round(
                result["examples_per_second_int8"] / max(result["examples_per_second_fp32"], 1e-9),
                3,
            ),
            "examples": len(encoded),
            "measured_on": source,
        }
    )
    return result


def _scores(task: Any, groups: list[dict], logits: dict) -> tuple[str, float, float]:
    """(metric name, fp32 value, int8 value): accuracy against the labels where the task's
    outputs are labels (classification, multiple choice: per example; NER: per labelled
    token); extractive QA: how often int8's best start and end tokens equal fp32's."""
    if task.name == "extractive_qa":
        same, total = 0, 0
        for b, f, q in zip(groups, logits["fp32"], logits["int8"], strict=True):
            mask = b["attention_mask"].numpy().astype(bool)
            for fx, qx in zip(f, q, strict=True):
                fx, qx = np.where(mask, fx, -np.inf), np.where(mask, qx, -np.inf)
                same += int((fx.argmax(-1) == qx.argmax(-1)).sum())
                total += len(fx)
        return "span_agreement_with_fp32", 1.0, same / max(total, 1)
    values = []
    for name in ("fp32", "int8"):
        right = total = 0
        for b, out in zip(groups, logits[name], strict=True):
            labels = b["labels"].numpy()
            scores = out[0]
            if getattr(task, "multi_label", False):
                right += int(((scores > 0) == (labels > 0.5)).all(-1).sum())
                total += len(labels)
                continue
            keep = labels != -100
            right += int(((scores.argmax(-1) == labels) & keep).sum())
            total += int(keep.sum())
        values.append(right / max(total, 1))
    metric = "token_accuracy" if task.name == "token_classification" else "accuracy"
    return metric, values[0], values[1]
