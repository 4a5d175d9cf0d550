"""The public Python API; the CLI only wraps these functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunewise.artifacts import write_json
from tunewise.config import Config, load_config


def finetune(
    config: str | Path | dict[str, Any] | Config,
    overrides: list[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
) -> Any:
    """Train as the config says and return a `RunResult` (run_dir, metrics, manifest).

    `config` is a YAML path, a dict or a `Config`; `overrides` are `a.b=value` strings.
    """
    from tunewise.training.recipe import finetune as run

    return run(load_config(config, overrides), overwrite=overwrite, resume=resume)


def load(run_dir: str | Path, device: str | None = None) -> Any:
    """A `Predictor` for a finished run: `.predict(["text", ...])`, `.evaluate(path)`."""
    from tunewise.serving.predictor import Predictor

    return Predictor(run_dir, device=device)


def evaluate(
    run_dir: str | Path, data: str | Path, output: str | Path | None = None
) -> dict[str, Any]:
    """The run's task metrics on a labelled file; optionally written to `output` as JSON."""
    metrics = load(run_dir).evaluate(data)
    if output:
        write_json(Path(output), metrics)
    return metrics


def predict(run_dir: str | Path, texts: list[str]) -> list[dict[str, Any]]:
    """Predictions for raw texts, in order."""
    return load(run_dir).predict(texts)
