"""`tunewise export RUN --format hf|onnx --output DIR`: a finished run as a directory that runs
without tunewise (see docs/export.md). `export` checks everything it can before writing, builds
the directory beside DIR and renames it into place only once the parity check passed."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from tunewise.errors import ConfigError, TunewiseError

FORMATS = ("hf", "onnx")
QUANTIZE = ("int8",)


def export(
    run_dir: str | Path,
    format: str = "hf",
    output: str | Path | None = None,
    quantize: str | None = None,
    data: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export a run; returns the report (also written to DIR/export.json)."""
    from tunewise.artifacts import atomic_write_text, write_json
    from tunewise.export.card import model_card
    from tunewise.registry import STRATEGIES
    from tunewise.serving.predictor import Predictor

    if format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not '{format}'.")
    if quantize is not None and quantize not in QUANTIZE:
        raise ConfigError(f"--quantize must be one of {', '.join(QUANTIZE)}, not '{quantize}'.")
    if quantize and format != "onnx":
        raise ConfigError("--quantize int8 applies to --format onnx (onnxruntime quantization).")
    if output is None:
        raise ConfigError("Give --output DIR for the exported model.")
    out = Path(output)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not overwrite)):
        raise TunewiseError(
            f"--output '{out}' exists and is {'not empty' if out.is_dir() else 'a file'}; "
            "refusing to replace it. Choose another directory, or pass --overwrite "
            "(overwrite=True) to replace a directory."
        )
    predictor = Predictor(run_dir, device="cpu")
    if format == "onnx":
        from tunewise.export.onnx import check_task

        check_task(predictor.task.name)
    strategy = STRATEGIES.get(predictor.config.strategy.name)(predictor.config.strategy)
    name = strategy.name
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.export-"))
    try:
        if format == "hf":
            from tunewise.export.hf import export_hf

            report = export_hf(predictor, lambda m: _merge(strategy, m, name), work)
        else:
            from tunewise.export.onnx import export_onnx

            report = export_onnx(predictor, strategy.merge, work)
        report = {
            "format": format,
            "run": str(run_dir),
            "task": predictor.task.name,
            "strategy": name,
            "labels": getattr(predictor.task, "labels", None) or None,
            "output": str(out),
            **report,
        }
        if quantize:
            from tunewise.export.quantize import quantize_int8

            report["quantize"] = quantize_int8(predictor, work, data)
        atomic_write_text(work / "README.md", model_card(predictor.manifest, format, report))
        write_json(work / "export.json", report)
        _readable(work)
        if out.exists():
            shutil.rmtree(out)  # empty, or --overwrite was given (checked above)
        work.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _readable(root: Path) -> None:
    """Ordinary permissions (the umask's) instead of the private ones temporary files get, so
    a server or container running as another user can read the export."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    os.chmod(root, 0o777 & ~umask)
    for path in root.rglob("*"):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def _merge(strategy: Any, model: Any, name: str) -> Any:
    try:
        return strategy.merge(model)
    except TunewiseError as exc:
        raise TunewiseError(
            f"Cannot export a '{name}' run as a plain transformers directory (--format hf): "
            f"{exc} For an encoder task (classification, NER, extractive QA, multiple choice), "
            "--format onnx exports the whole graph with these modules in it."
        ) from None
