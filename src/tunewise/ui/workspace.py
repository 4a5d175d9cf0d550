"""What a workspace directory holds: run directories (any folder with `tunewise.json`, from the
UI or the CLI), runs still training (`progress.json`, no manifest yet) and sweeps (`sweep.json`).
Read-only: the UI only ever reads these files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "tunewise.json"
PROGRESS = "progress.json"
UI_DIR = ".tunewise-ui"  # the UI's own job files (configs, logs) inside the workspace
SKIP = {"model", "tokenizer", "tensorboard", "checkpoints", "__pycache__", ".git", UI_DIR}


def read_json(path: Path) -> Any:
    """The file's JSON, or None while it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _walk(workspace: Path, marker: str) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(workspace):
        dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith("."))
        if marker in files:
            found.append(Path(root))
    return found


def find_runs(workspace: Path, finished_only: bool = True) -> list[Path]:
    """Run directories under `workspace`, newest first; unfinished ones too if asked."""
    runs = set(_walk(workspace, MANIFEST))
    if not finished_only:
        runs |= set(_walk(workspace, PROGRESS))
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


def find_sweeps(workspace: Path) -> list[Path]:
    return sorted(_walk(workspace, "sweep.json"), key=lambda p: p.stat().st_mtime, reverse=True)


def label(run_dir: Path, workspace: Path) -> str:
    """The run as the UI names it: its path relative to the workspace."""
    try:
        return str(Path(run_dir).resolve().relative_to(Path(workspace).resolve()))
    except ValueError:
        return str(run_dir)


def _path_of(spec: Any) -> str:
    return str(spec.get("path", "")) if isinstance(spec, dict) else str(spec or "")


def main_metric(manifest: dict[str, Any]) -> tuple[str, Any]:
    """The metric that picked the best checkpoint and its validation value."""
    name = manifest.get("training", {}).get("best_checkpoint_metric") or "accuracy"
    return name, manifest.get("metrics", {}).get("validation", {}).get(name)


def run_row(run_dir: Path, workspace: Path) -> dict[str, Any]:
    """One line of the Compare table, from the run's manifest (and progress.json's memory)."""
    m = read_json(run_dir / MANIFEST) or {}
    progress = read_json(run_dir / PROGRESS) or {}
    training = m.get("training", {})
    params = m.get("strategy", {}).get("parameters", {})
    validation = m.get("metrics", {}).get("validation", {})
    metric, value = main_metric(m)
    data = m.get("config", {}).get("data", {})
    weights = m.get("strategy", {}).get("saved_weights", {})
    return {
        "run": label(run_dir, workspace),
        "task": m.get("task", {}).get("type"),
        "strategy": m.get("strategy", {}).get("name"),
        "model": m.get("base_model", {}).get("name"),
        "data": Path(_path_of(data.get("train"))).name,
        "n_train": training.get("n_train"),
        "metric": metric,
        "value": _round(value),
        "accuracy": _round(validation.get("accuracy")),
        "macro_f1": _round(validation.get("macro_f1")),
        "loss": _round(validation.get("loss")),
        "trainable_%": _round(params.get("percent")),
        "train_s": training.get("train_seconds"),
        "peak_rss_mb": progress.get("peak_rss_mb") or m.get("peak_rss_mb"),
        "artifact_kb": round(weights["bytes"] / 1024, 1) if weights.get("bytes") else None,
        "created": m.get("created"),
    }


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def run_status(run_dir: Path) -> str:
    """finished (manifest written), training / evaluating (progress.json) or starting."""
    if (run_dir / MANIFEST).is_file():
        return "finished"
    progress = read_json(run_dir / PROGRESS)
    return progress.get("status", "training") if progress else "starting"


def sweep_summary(sweep_dir: Path) -> tuple[list[dict[str, Any]], list[Path]]:
    """The sweep's rows (strategy, status, metrics, trainable %, time, memory) and its plots."""
    rows = []
    for r in read_json(sweep_dir / "sweep.json") or []:
        metrics = r.get("metrics") or {}
        rows.append(
            {
                "strategy": r.get("strategy"),
                "status": r.get("status"),
                "trainable_%": _round(r.get("trainable_percent")),
                "wall_s": r.get("wall_seconds"),
                "peak_rss_mb": r.get("peak_rss_mb"),
                **{
                    k: _round(v)
                    for k, v in metrics.items()
                    if isinstance(v, (int, float)) and k != "n_examples"
                },
                "error": r.get("error"),
            }
        )
    return rows, sorted(sweep_dir.glob("*.png"))
