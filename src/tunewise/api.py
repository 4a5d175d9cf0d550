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


def load(run_dir: str | Path, device: str | None = None, task: str | None = None) -> Any:
    """A `Predictor` for a finished run: `.predict(["text", ...])`, `.evaluate(path)`;
    `task` names the head of a multi-task run."""
    from tunewise.serving.predictor import Predictor

    return Predictor(run_dir, device=device, task=task)


def evaluate(
    run_dir: str | Path,
    data: str | Path,
    output: str | Path | None = None,
    perturb: str | list[str] | None = None,
    seed: int = 42,
    task: str | None = None,
) -> dict[str, Any]:
    """The run's task metrics on a labelled file; optionally written to `output` as JSON.
    `perturb` ("typos,synonyms,case,punctuation"): also the metrics on seeded perturbations of
    the file, under `perturbed: {kind: {...}}` (see tunewise.evaluation.perturb); `task`: the
    head of a multi-task run to score."""
    if perturb:
        from tunewise.evaluation.perturb import check_kinds, evaluate_perturbed

        kinds = check_kinds(perturb)  # before the model loads
        metrics = evaluate_perturbed(load(run_dir, task=task), data, kinds, seed)
    else:
        metrics = load(run_dir, task=task).evaluate(data)
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


def predict(run_dir: str | Path, texts: list[str], task: str | None = None) -> list[dict[str, Any]]:
    """Predictions for raw texts, in order (`task`: the head of a multi-task run)."""
    return load(run_dir, task=task).predict(texts)


def strategy_matrix() -> dict[str, Any]:
    """Which strategy can train which registered task, with the reason where it cannot."""
    from tunewise.strategies.compat import matrix

    return matrix()


def recommend(
    task: str,
    model: str,
    train_size: int | None = None,
    data: str | Path | None = None,
    memory_gb: float | None = None,
    device: str = "cpu",
    time_budget_s: float | None = None,
    max_length: int = 128,
    epochs: float = 1.0,
) -> list[dict[str, Any]]:
    """Strategies ranked best first for this scenario, each with estimated trainable
    parameters, peak memory, seconds per epoch and the reasons (see docs/strategies.md).
    `data` (a training file) gives the size and the mean tokens per example."""
    from tunewise.advisor.rank import Scenario, average_tokens
    from tunewise.advisor.rank import recommend as rank
    from tunewise.errors import ConfigError

    avg = None
    if data is not None:
        n, avg = average_tokens(data, model)
        train_size = train_size or n
    if not train_size:
        raise ConfigError("recommend needs --train-size N or --data FILE (the training set).")
    scenario = Scenario(
        task=task,
        train_size=train_size,
        model=model,
        memory_gb=memory_gb,
        time_budget_s=time_budget_s,
        device=device,
        avg_tokens=avg,
        max_length=max_length,
        epochs=epochs,
    )
    return rank(scenario)


def sweep(
    config: str | Path | dict[str, Any] | Config,
    strategies: list[str],
    output_dir: str | Path,
    overrides: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Train `config` once per strategy (resumable) and write DIR/sweep.json, sweep.md, plots."""
    from tunewise.sweep import sweep as run

    return run(config, strategies, output_dir, overrides)


def merge(run_dir: str | Path) -> Any:
    """A finished run's model with the strategy folded into plain weights (LoRA, IA3, diff
    pruning; full/partial/frozen/BitFit as trained); ConfigError for adapters and prompts."""
    predictor = load(run_dir, device="cpu")
    from tunewise.registry import STRATEGIES

    cls = STRATEGIES.get(predictor.config.strategy.name)
    return cls(predictor.config.strategy).merge(predictor.model)


def prepare_data(
    inputs: str | Path | dict[str, str | Path],
    output_dir: str | Path,
    task: str = "classification",
    options: dict[str, Any] | Any = None,
    seed: int = 42,
    fmt: str = "auto",
) -> Any:
    """Validate, clean, deduplicate, filter, split (and augment) data into `output_dir`:
    train/validation/test.jsonl, rejected.jsonl, removed.jsonl, prepare.json, data_report.md.
    `options` is a `data.prepare` section (dict or PrepareConfig); returns a PrepareResult."""
    from tunewise.data.prepare import prepare

    return prepare(inputs, output_dir, task, options, seed=seed, fmt=fmt)


def data_stats(
    path: str | Path,
    task: str = "classification",
    fmt: str = "auto",
    columns: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Sizes, label distribution, length statistics and duplicate counts of a data file."""
    from tunewise.data.prepare import stats

    return stats(path, task, fmt, columns)


def select_for_annotation(
    run_dir: str | Path,
    pool: str | Path,
    k: int = 200,
    method: str = "entropy",
    seed: int = 42,
    output: str | Path | None = None,
) -> list[dict[str, Any]]:
    """The k unlabelled pool examples a finished run is least sure about (active learning)."""
    from tunewise.data.select import select

    return select(run_dir, pool, k, method, seed, output)
