"""`export --format onnx`: the whole tunewise model (backbone, pooling, head; adapters and
virtual tokens too when they cannot be merged) as one ONNX graph through `torch.onnx` (optimum's
exporter does not install with transformers 5), the tokenizer beside it, and a parity check
against onnxruntime."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tunewise.errors import TunewiseError
from tunewise.export.samples import batches, encoded_examples, max_diff, outputs

ENCODER_TASKS = ("classification", "token_classification", "extractive_qa", "multiple_choice")
TOLERANCE = 1e-4
OPSET = 17


class Graph(nn.Module):
    """Positional tensors in, plain output tensors out: what the ONNX exporter traces."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *tensors: torch.Tensor) -> Any:
        out = self.model(**dict(zip(self.names, tensors, strict=True)))
        if getattr(out, "start_logits", None) is not None:
            return out.start_logits, out.end_logits
        return out.logits


def check_task(task_name: str) -> None:
    if task_name not in ENCODER_TASKS:
        raise TunewiseError(
            f"--format onnx exports encoder tasks ({', '.join(ENCODER_TASKS)}); task "
            f"'{task_name}' generates text, which needs a KV-cached decoding loop, not one "
            "graph. Export it with --format hf and serve that directory with vLLM, TGI or "
            "llama.cpp (see docs/export.md)."
        )


def output_names(task_name: str) -> list[str]:
    return ["start_logits", "end_logits"] if task_name == "extractive_qa" else ["logits"]


def export_onnx(predictor: Any, merged_fn: Any, out: Path, n_check: int = 16) -> dict[str, Any]:
    """Write DIR/model.onnx and the tokenizer; returns the report with the parity check
    (against the run's model as tunewise runs it, before any merge). `merged_fn` folds the
    strategy into plain weights where it can; strategies that cannot stay in the graph."""
    import onnxruntime as ort

    task = predictor.task
    check_task(task.name)
    encoded, source = encoded_examples(predictor, n_check)
    collator = task.collator(predictor.tokenizer)
    checks = batches(encoded, collator, 4)  # padded batches: the graph must handle padding
    reference = [outputs(predictor.model, b) for b in checks]
    try:
        model, merged = merged_fn(predictor.model), True
    except TunewiseError:
        model, merged = predictor.model, False
    names = [k for k in checks[0] if k != "labels"]
    choice = task.name == "multiple_choice"
    axes = {0: "batch", 1: "choices", 2: "sequence"} if choice else {0: "batch", 1: "sequence"}
    outs = output_names(task.name)
    out_axes = {"logits": {0: "batch", 1: "choices" if choice else "labels"}}
    if task.name == "token_classification":
        out_axes["logits"] = {0: "batch", 1: "sequence"}
    out_axes.update({n: {0: "batch", 1: "sequence"} for n in ("start_logits", "end_logits")})
    graph = Graph(model, names).eval()
    path = out / "model.onnx"
    sample = tuple(checks[0][n] for n in names)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                sample,
                str(path),
                dynamo=False,  # the TorchScript exporter: the dynamo one needs onnxscript
                input_names=names,
                output_names=outs,
                dynamic_axes={**{n: axes for n in names}, **{n: out_axes[n] for n in outs}},
                opset_version=OPSET,
            )
    except Exception as exc:  # any tracing failure becomes one clear message
        raise TunewiseError(
            f"torch.onnx could not export this {task.name} model "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]}). Serve the run with "
            "tunewise instead."
        ) from None
    predictor.tokenizer.save_pretrained(out)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    diff, n = 0.0, 0
    for batch, want in zip(checks, reference, strict=True):
        got = run_session(session, batch)
        diff = max(diff, max_diff(want, got, batch["attention_mask"].numpy()))
        n += len(batch["input_ids"])
    report = {
        "file": "model.onnx",
        "merged": merged,
        "opset": OPSET,
        "inputs": names,
        "outputs": outs,
        "max_abs_diff": diff,
        "examples_checked": n,
        "checked_on": source,
        "tolerance": TOLERANCE,
        "parity": diff <= TOLERANCE,
    }
    if diff > TOLERANCE:
        raise TunewiseError(
            f"The ONNX graph does not reproduce the run (max |Δlogit| = {diff:.2e} on {n} "
            "examples); nothing was kept."
        )
    return report


def run_session(session: Any, batch: dict[str, torch.Tensor]) -> list[np.ndarray]:
    wanted = {i.name for i in session.get_inputs()}
    feed = {k: v.numpy() for k, v in batch.items() if k in wanted}
    return list(session.run(None, feed))
