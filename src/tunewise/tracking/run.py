"""One run's tracking: the MLflow run / W&B run is opened here before training (so the
Trainer's MLflowCallback / WandbCallback log into it: training args, per-step and per-epoch
metrics), holds the resolved config as params, and receives tunewise's final metrics and the
report, plots and (optionally) the whole run directory as artifacts at the end.

TensorBoard needs nothing here: the recipe attaches the Trainer's TensorBoardCallback with the
run's own `tensorboard/` log dir. Only rank 0 tracks anything.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from tunewise.errors import ConfigError
from tunewise.training.distributed import is_main_process

ARTIFACTS = ("report.md", "metrics.json", "config.yaml", "tunewise.json")


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} → {"a.b": 1}; lists stay values."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def report_to(cfg: Any) -> list[str]:
    """The Trainer integrations to switch on (TensorBoard is attached by the recipe)."""
    if not is_main_process():
        return []
    return [b for b in cfg.tracking.backends if b in ("mlflow", "wandb")]


def final_metrics(metrics: dict[str, dict[str, Any]]) -> dict[str, float]:
    return {
        f"{split}/{key}": float(value)
        for split, values in metrics.items()
        for key, value in values.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


class Tracker:
    """Opens the chosen trackers' runs, then closes them with the final metrics and artifacts."""

    def __init__(self, cfg: Any, run_dir: Path, name: str | None = None) -> None:
        """`run_dir`: where the run writes now (its work directory); `name`: the run's own name
        (the final output directory's), which tracker runs are called by."""
        self.options = cfg.tracking
        self.run_dir = Path(run_dir)
        self.enabled = is_main_process()
        self.mlflow: Any = None
        self.wandb_run: Any = None
        self.params = flatten(cfg.to_dict(), "config")
        self.name = self.options.run_name or name or self.run_dir.name

    def start(self, extra_params: dict[str, Any] | None = None) -> Tracker:
        if not self.enabled:
            return self
        params = {**self.params, **(extra_params or {})}
        if "mlflow" in self.options.backends:
            self._start_mlflow(params)
        if "wandb" in self.options.backends:
            self._start_wandb(params)
        return self

    def _start_mlflow(self, params: dict[str, Any]) -> None:
        import mlflow

        abort_active()  # a run left open by a trial that was pruned or failed
        opts = self.options.mlflow
        if opts.tracking_uri:
            mlflow.set_tracking_uri(opts.tracking_uri)
        experiment = opts.experiment or self.options.group
        if experiment:
            mlflow.set_experiment(experiment)
        mlflow.start_run(run_name=self.name)
        items = [(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            mlflow.log_params(dict(items[i : i + 100]))
        self.mlflow = mlflow

    def _start_wandb(self, params: dict[str, Any]) -> None:
        try:
            import wandb
        except ImportError as exc:  # a dependency; a broken install is the user's to fix
            raise ConfigError(f"tracking: wandb is chosen but cannot be imported: {exc}") from None
        opts = self.options.wandb
        if wandb.run is not None:
            wandb.finish(exit_code=1)
        directory = Path(opts.dir) if opts.dir else self.run_dir
        directory.mkdir(parents=True, exist_ok=True)
        self.wandb_run = wandb.init(
            project=opts.project or os.environ.get("WANDB_PROJECT") or "tunewise",
            group=opts.group or self.options.group,
            name=self.name,
            dir=str(directory),
            mode=opts.mode or os.environ.get("WANDB_MODE") or "offline",
            config=params,
        )

    def finish(self, metrics: dict[str, dict[str, Any]]) -> None:
        """Final metrics and artifacts, then close the runs."""
        if not self.enabled:
            return
        values = final_metrics(metrics)
        files = [self.run_dir / f for f in ARTIFACTS] + sorted(self.run_dir.glob("*.png"))
        files = [f for f in files if f.is_file()]
        if self.mlflow is not None:
            mlflow = self.mlflow
            if hasattr(mlflow, "flush_async_logging"):
                mlflow.flush_async_logging()
            mlflow.log_metrics(values)
            for f in files:
                mlflow.log_artifact(str(f))
            if self.options.log_run_dir:
                mlflow.log_artifacts(str(self.run_dir), artifact_path="run_dir")
            mlflow.end_run()
            self.mlflow = None
        if self.wandb_run is not None:
            import wandb

            run = self.wandb_run
            run.summary.update(values)
            for f in files:  # copies (not wandb.save's links): the work directory is renamed
                shutil.copy2(f, Path(run.dir) / f.name)
            if self.options.log_run_dir:
                artifact = wandb.Artifact(f"run-{run.id}", type="run_dir")
                artifact.add_dir(str(self.run_dir))
                run.log_artifact(artifact)
            run.finish()
            self.wandb_run = None


def abort_active(status: str = "FAILED") -> None:
    """Close a tracker run that an exception left open (a failed or pruned trial), so the
    next run in this process starts cleanly."""
    import sys

    mlflow = sys.modules.get("mlflow")
    if mlflow is not None and mlflow.active_run() is not None:
        mlflow.end_run(status=status)
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1)
