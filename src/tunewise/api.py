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


def load(
    run_dir: str | Path,
    device: str | None = None,
    trust_remote_code: bool = False,
    task: str | None = None,
) -> Any:
    """A `Predictor` for a finished run: `.predict(["text", ...])`, `.evaluate(path)`; `task`
    names the head of a multi-task run.

    A run whose manifest sets `model.trust_remote_code` loads only with
    `trust_remote_code=True` here: the manifest alone never runs the model folder's code."""
    from tunewise.serving.predictor import Predictor

    return Predictor(run_dir, device=device, trust_remote_code=trust_remote_code, task=task)


def evaluate(
    run_dir: str | Path,
    data: str | Path,
    output: str | Path | None = None,
    trust_remote_code: bool = False,
    perturb: str | list[str] | None = None,
    seed: int = 42,
    task: str | None = None,
) -> dict[str, Any]:
    """The run's task metrics on a labelled file; optionally written to `output` as JSON.
    `perturb` ("typos,synonyms,case,punctuation"): also the metrics on seeded perturbations of
    the file, under `perturbed: {kind: {...}}` (see tunewise.evaluation.perturb); `task`: the
    head of a multi-task run to score."""
    if output:
        from tunewise.artifacts import check_writable_file

        check_writable_file(Path(output), "--output")
    from tunewise.serving.batch_predict import fold_for_inference

    kinds = None
    if perturb:
        from tunewise.evaluation.perturb import check_kinds, evaluate_perturbed

        kinds = check_kinds(perturb)  # before the model loads
    predictor = load(run_dir, trust_remote_code=trust_remote_code, task=task)
    fold_for_inference(predictor)  # same outputs (within float rounding), fewer matmuls
    if kinds:
        metrics = evaluate_perturbed(predictor, data, kinds, seed)
    else:
        metrics = predictor.evaluate(data)
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

    if output:
        from tunewise.artifacts import check_writable_file

        check_writable_file(Path(output), "--output")
    metrics = Predictor.from_base(model, task, overrides).evaluate(data)
    if output:
        write_json(Path(output), metrics)
    return metrics


def predict(
    run_dir: str | Path,
    texts: list[str],
    trust_remote_code: bool = False,
    task: str | None = None,
) -> list[dict[str, Any]]:
    """Predictions for raw texts, in order (`task`: the head of a multi-task run)."""
    return load(run_dir, trust_remote_code=trust_remote_code, task=task).predict(texts)


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

    for flag, value in (
        ("--train-size", train_size),
        ("--memory-gb", memory_gb),
        ("--time-budget", time_budget_s),
        ("--max-length", max_length),
        ("--epochs", epochs),
    ):
        if value is not None and not value > 0:  # also refuses NaN
            raise ConfigError(f"recommend: {flag} must be a positive number, not {value}.")
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


def tune(
    config: str | Path | dict[str, Any] | Config,
    trials: int,
    output_dir: str | Path,
    storage: str | None = None,
    study: str | None = None,
    overrides: list[str] | None = None,
) -> Any:
    """Optuna hyperparameter search until the study holds `trials` trials (joining or resuming
    the study in `storage`); writes DIR/trials.json, trials.md, best.yaml, report.md. Returns a
    `TuneResult` (trials, best, metric, direction, storage)."""
    from tunewise.tune.study import tune as run

    return run(config, trials, output_dir, storage, study, overrides)


def merge(run_dir: str | Path, trust_remote_code: bool = False) -> Any:
    """A finished run's model with the strategy folded into plain weights (LoRA, IA3, diff
    pruning; full/partial/frozen/BitFit as trained); ConfigError for adapters and prompts."""
    predictor = load(run_dir, device="cpu", trust_remote_code=trust_remote_code)
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
    from tunewise.data.select import METHODS, select
    from tunewise.errors import DataError

    if method not in METHODS:  # before the run's model loads
        raise DataError(f"Unknown selection method '{method}'; known: {', '.join(METHODS)}.")
    return select(load(run_dir), pool, k, method, seed, output)


# -- the model after training: collect, retrain, drift (docs/lifecycle.md) ----------------------


def collect_data(
    requests_dir: str | Path,
    output: str | Path,
    task: str | None = None,
    run: str | Path | None = None,
    unlabelled: str | Path | None = None,
) -> dict[str, Any]:
    """Logged requests (`serve --log-requests DIR`) joined with their feedback into a training
    file for the task (or `run`'s task), validated and deduplicated; `unlabelled` also writes
    the requests without feedback, for `select_for_annotation`. Returns the counts."""
    from tunewise.lifecycle.collect import collect

    return collect(requests_dir, output, task=task, run=run, unlabelled=unlabelled)


def retrain(
    run_dir: str | Path,
    data: str | Path,
    output_dir: str | Path,
    replay: float = 0.2,
    eval_data: str | Path | None = None,
    threshold: float = 0.0,
    metric: str | None = None,
    registry: str | Path | None = None,
    overrides: list[str] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Continue `run_dir` on new `data` mixed with a `replay` share of its own training data,
    into `output_dir`; compare old and new on `eval_data` and the run's validation set; mark the
    new run promoted (and write `registry`/promoted.json) only if it is not worse by more than
    `threshold`. Returns the comparison (also output_dir/comparison.json and .md)."""
    from tunewise.lifecycle.retrain import retrain as run

    return run(
        run_dir,
        data,
        output_dir,
        replay,
        eval_data,
        threshold,
        metric,
        registry,
        overrides,
        overwrite,
    )


def drift(
    run_dir: str | Path,
    requests_dir: str | Path,
    output: str | Path | None = None,
    thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Served traffic (`serve --log-requests DIR`) against the run's training data: input
    length, out-of-vocabulary rate, predicted labels vs training labels, confidence; with a
    retrain recommendation. `output` (report.md) also gets a .json beside it."""
    from tunewise.lifecycle.drift import drift as run

    return run(run_dir, requests_dir, output, thresholds)


def predict_file(
    run_dir: str | Path,
    input: str | Path,
    output: str | Path | None,
    resume: bool = False,
    batch_size: int = 64,
    window: int = 4096,
    progress: bool = True,
    text_column: str | None = None,
    trust_remote_code: bool = False,
    task: str | None = None,
) -> dict[str, Any]:
    """Predictions for every record of a JSONL/CSV/TSV file, streamed in windows into `output`
    (one JSON line per good record, in order, with its input `line`; bad records to
    OUTPUT.rejects.jsonl); `resume` continues an interrupted output; `text_column` names the
    field holding the text when it is not the run's; `task`: a multi-task run's head. Returns
    the counts."""
    from tunewise.serving.batch_predict import fold_for_inference
    from tunewise.serving.batch_predict import predict_file as run

    predictor = load(run_dir, trust_remote_code=trust_remote_code, task=task)
    fold_for_inference(predictor)  # LoRA / IA3 / diff pruning folded: fewer matmuls per batch
    return run(
        predictor, input, output, resume, batch_size, window, progress, text_column=text_column
    )


def export(
    run_dir: str | Path,
    format: str = "hf",
    output: str | Path | None = None,
    quantize: str | None = None,
    data: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """A finished run as a directory that needs no tunewise: "hf" (merged transformers model +
    tokenizer + model card, loadable with the plain Auto classes) or "onnx" (the whole graph,
    encoder tasks; `quantize="int8"` adds an int8 copy with its accuracy and latency change).
    Returns the report, also written to OUTPUT/export.json."""
    from tunewise.export import export as run

    return run(run_dir, format, output, quantize, data, overwrite)


def create_app(run_dir: str | Path, settings: Any = None, device: str | None = None) -> Any:
    """The FastAPI app serving a finished run (`tunewise serve`): /v1/predict, OpenAI-compatible
    /v1/chat/completions and /v1/completions, /health, /v1/models, /metrics, /v1/feedback and
    /admin/reload. `settings` is a `tunewise.serving.settings.ServeSettings` (defaults if None)."""
    from tunewise.serving.app import create_app as build

    return build(run_dir, settings, device)


def serve(run_dir: str | Path, settings: Any = None, device: str | None = None) -> None:
    """Serve a finished run with uvicorn until interrupted; in-flight requests finish first."""
    from tunewise.serving.app import serve as run

    run(run_dir, settings, device)


def check_config(
    config: str | Path | dict[str, Any] | Config, overrides: list[str] | None = None
) -> Config:
    """Validate a config the way `tunewise train` does before it loads anything: every key and
    value, then that the strategy can train the task; the same ConfigError messages."""
    from tunewise.registry import STRATEGIES, TASKS
    from tunewise.strategies.compat import META_STRATEGIES, check_compatible

    cfg = load_config(config, overrides)
    if cfg.strategy.name not in META_STRATEGIES:
        check_compatible(STRATEGIES.get(cfg.strategy.name), TASKS.get(cfg.task.type))
    return cfg


def stream(run: Any, text: str | dict[str, Any]) -> Any:
    """For a generation run (a run directory or a loaded Predictor): an iterator over the text
    generated so far for one input, growing token by token."""
    from tunewise.serving.text_stream import stream_text

    predictor = load(run) if isinstance(run, (str, Path)) else run
    return stream_text(predictor, text)
