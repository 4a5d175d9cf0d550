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


def evaluate_base(
    model: str,
    task: str,
    data: str | Path,
    output: str | Path | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """A base model's metrics for a task with no fine-tuning (the "before" figure), e.g.
    `evaluate_base("smollm2-135m", "instruction", "test.json")`; `overrides` are config
    `a.b=value` strings (model.max_length=512, task.eval_generate_samples=50)."""
    from tunewise.serving.predictor import Predictor

    metrics = Predictor.from_base(model, task, overrides).evaluate(data)
    if output:
        write_json(Path(output), metrics)
    return metrics


def predict(run_dir: str | Path, texts: list[str]) -> list[dict[str, Any]]:
    """Predictions for raw texts, in order."""
    return load(run_dir).predict(texts)
