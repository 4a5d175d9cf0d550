"""`serve --backend onnx`: an encoder task's model exported once at start-up (`export --format
onnx`, with its parity check) and run by onnxruntime in place of the torch forward pass.

On 2 CPU cores onnxruntime runs minilm about twice as fast as torch's eager forward for a single
sentence (fused attention and layer norm, no Python between ops). Everything around the forward
pass (tokenizing, batching, decoding) stays the task's own, so answers equal the torch backend's
within the export's parity tolerance (1e-4 on the logits).

`--backend auto` (the default) takes this path wherever it fits (an encoder task on the CPU with
onnxruntime installed, and a graph that passes the parity check) and torch otherwise, logging why.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from tunewise.errors import TunewiseError

log = logging.getLogger("tunewise.serve")


class OnnxModel(nn.Module):
    """An exported graph behind the torch model's call signature: `model(**batch)` returns the
    same output fields (`logits`, or `start_logits` / `end_logits` for extractive QA)."""

    def __init__(self, path: Path, outputs: list[str], threads: int) -> None:
        super().__init__()
        self.path = path
        self.set_threads(threads)
        self.outputs = outputs  # the graph's outputs, in its order (`export.onnx.output_names`)
        # no weights live here; one empty tensor tells `device_of` the graph runs on the CPU
        self.register_buffer("anchor", torch.empty(0), persistent=False)

    def set_threads(self, threads: int) -> None:
        """A new session with this many intra-op threads (the server shares the cores out)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )

    def parameters(self, recurse: bool = True) -> Any:
        yield self.anchor

    def forward(self, **batch: torch.Tensor) -> SimpleNamespace:
        from tunewise.export.onnx import run_session  # the export's parity check feeds it alike

        got = run_session(self.session, batch)
        return SimpleNamespace(**dict(zip(self.outputs, map(torch.from_numpy, got), strict=True)))


def use_onnx(predictor: Any) -> tuple[tempfile.TemporaryDirectory, dict[str, Any]]:
    """Export the predictor's (already folded) model to a temporary folder, check it against the
    torch model, and put an `OnnxModel` in its place. Returns the folder (kept alive as long as
    the model serves) and the export report. Non-encoder tasks and failed parity are refused."""
    from tunewise.export.onnx import check_task, export_onnx, output_names
    from tunewise.inference.batches import device_of

    if device_of(predictor.model).type != "cpu":
        raise TunewiseError("--backend onnx runs on the CPU; serve GPU runs with --backend torch.")
    try:
        check_task(predictor.task.name)
    except TunewiseError as exc:
        raise TunewiseError(f"--backend onnx: {exc}") from None
    folder = tempfile.TemporaryDirectory(prefix="tunewise-onnx-")
    try:
        report = export_onnx(predictor, lambda model: model, Path(folder.name))
    except Exception as exc:  # an exporter failing on an unusual model, too
        folder.cleanup()
        why = str(exc) if isinstance(exc, TunewiseError) else f"the export failed ({exc!r})."
        raise TunewiseError(f"--backend onnx: {why} Serve with --backend torch.") from None
    threads = torch.get_num_threads()
    outputs = output_names(predictor.task.name)
    predictor.model = OnnxModel(Path(folder.name) / report["file"], outputs, threads)
    return folder, report


def pick_backend(
    predictor: Any, asked: str
) -> tuple[str, tempfile.TemporaryDirectory | None, dict[str, Any] | None, str | None]:
    """(backend, export folder, export report, why torch) for `--backend asked`: torch as asked;
    onnx as asked, or refused with the reason; auto: onnx where it fits and its export passes,
    else torch with the reason (an exporter failing on an unusual model does not stop serving)."""
    if asked == "torch":
        return "torch", None, None, None
    try:  # use_onnx checks the task and the device before it exports anything
        return "onnx", *use_onnx(predictor), None
    except TunewiseError as exc:
        if asked == "onnx":
            raise
        log.info("backend torch (auto): %s", exc)
        return "torch", None, None, str(exc)
