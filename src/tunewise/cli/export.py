"""`tunewise export`: a finished run as a standalone transformers or ONNX directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tunewise.cli._app import fail
from tunewise.errors import TunewiseError


def export(
    run: Annotated[Path, typer.Argument(help="Run directory from `tunewise train`.")],
    format: Annotated[
        str, typer.Option("--format", help="hf (transformers directory) or onnx (encoder tasks).")
    ] = "hf",
    output: Annotated[Path | None, typer.Option(help="Directory to write (new or empty).")] = None,
    quantize: Annotated[
        str | None, typer.Option(help="onnx only: int8 (onnxruntime dynamic quantization).")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Labelled file for the int8 accuracy check (default: the run's own)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --output.")] = False,
) -> None:
    """Export RUN: merged weights + tokenizer + model card (hf), or one ONNX graph with a
    parity check (onnx); the report goes to OUTPUT/export.json."""
    from tunewise import api

    try:
        report = api.export(
            run, format=format, output=output, quantize=quantize, data=data, overwrite=overwrite
        )
    except TunewiseError as exc:
        fail(exc)
    keys = ("format", "max_abs_diff", "examples_checked", "greedy_identical", "quantize")
    typer.echo(json.dumps({k: report[k] for k in keys if k in report}, indent=2))
    typer.echo(f"exported to {output}")
