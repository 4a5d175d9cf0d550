"""A run as it trains and once it is done, read from its own files: progress.json (step, ETA,
loss, evaluations), then tunewise.json / metrics.json and the report's PNGs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tunewise.ui.runs import Job
from tunewise.ui.workspace import MANIFEST, PROGRESS, main_metric, read_json, run_status

EVALS = pd.DataFrame(columns=["step", "epoch", "loss"])
PER_CLASS = pd.DataFrame(columns=["class", "precision", "recall", "f1-score", "support"])


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def progress_view(run_dir: Path, job: Job | None = None) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """(status line, loss curve points, evaluation table) of a run, finished or not."""
    progress = read_json(run_dir / PROGRESS) or {}
    status = run_status(run_dir)
    if job is not None and job.status in ("failed", "stopped", "queued"):
        status = job.status
    step, total = progress.get("step", 0), progress.get("max_steps", 0)
    parts = [f"**{status}**"]
    if total:
        parts.append(f"step {step}/{total} ({step / total:.0%})")
        parts.append(f"epoch {progress.get('epoch', 0):.2f}")
        parts.append(f"elapsed {_duration(progress.get('elapsed_s'))}")
        if status == "training":
            parts.append(f"ETA {_duration(progress.get('eta_s'))}")
    if progress.get("peak_rss_mb"):
        parts.append(f"peak RSS {progress['peak_rss_mb']:,.0f} MB")
    if job is not None and job.error:
        parts.append(f"\n\n`{job.error}`")
    loss = pd.DataFrame(progress.get("loss", []), columns=["step", "epoch", "loss"])
    evals = pd.DataFrame(progress.get("eval", [])).round(4) if progress.get("eval") else EVALS
    return " · ".join(parts), loss, evals


def report_view(run_dir: Path) -> tuple[str, str | None, pd.DataFrame, str | None]:
    """(metrics markdown, confusion-matrix PNG, per-class table, loss-curve PNG) once the run
    has finished; empty while it trains."""
    manifest = read_json(run_dir / MANIFEST)
    if not manifest:
        return "", None, PER_CLASS, None
    metrics = manifest.get("metrics", {})
    name, value = main_metric(manifest)
    lines = [f"### Report: {run_dir.name}", ""]
    if value is not None:
        lines.append(f"validation **{name}: {value:.4f}**" if isinstance(value, float) else "")
    params = manifest.get("strategy", {}).get("parameters", {})
    training = manifest.get("training", {})
    lines += [
        f"strategy `{manifest['strategy']['name']}`: {params.get('trainable', 0):,} trainable "
        f"parameters ({params.get('percent', 0):.2f}%); learning rate "
        f"{training.get('learning_rate', 0):.3g} ({training.get('learning_rate_source', '')}); "
        f"{training.get('steps')} steps in {training.get('train_seconds')} s",
        "",
        "| split | metric | value |",
        "|---|---|---|",
    ]
    for split, values in metrics.items():
        for k, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                lines.append(f"| {split} | {k} | {round(v, 4)} |")
    per_class = metrics.get("validation", {}).get("per_class") or metrics.get("validation", {}).get(
        "per_type"
    )
    table = PER_CLASS
    if per_class:
        table = pd.DataFrame(
            [{"class": k, **{m: round(x, 4) for m, x in v.items()}} for k, v in per_class.items()]
        )
    cm = run_dir / "confusion_matrix.png"
    curve = run_dir / "loss_curve.png"
    return (
        "\n".join(lines),
        str(cm) if cm.is_file() else None,
        table,
        str(curve) if curve.is_file() else None,
    )
