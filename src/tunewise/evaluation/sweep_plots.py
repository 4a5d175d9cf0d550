"""Plots of a strategy sweep (matplotlib, no display): the metric against trainable parameters
and against wall time, and peak memory per strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _scatter(points: list[tuple[str, float, float]], xlabel: str, ylabel: str, log: bool, path):
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for name, x, y in points:
        ax.scatter(x, y, s=30)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def sweep_plots(rows: list[dict[str, Any]], metric: str, out: Path) -> dict[str, Path]:
    """PNG files (title → path) for the finished entries of a sweep."""
    ok = [r for r in rows if r["status"] == "ok" and isinstance(r["metrics"].get(metric), float)]
    if not ok:
        return {}
    plots = {
        f"{metric} vs trainable %": _scatter(
            [(r["strategy"], max(r["trainable_percent"], 1e-4), r["metrics"][metric]) for r in ok],
            "trainable parameters (% of model, log)",
            metric,
            True,
            out / "metric_vs_trainable.png",
        ),
        f"{metric} vs wall time": _scatter(
            [(r["strategy"], r["wall_seconds"], r["metrics"][metric]) for r in ok],
            "wall seconds (load + train + evaluate)",
            metric,
            False,
            out / "metric_vs_time.png",
        ),
    }
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.bar([r["strategy"] for r in ok], [r["peak_rss_mb"] for r in ok], color="tab:gray")
    ax.set_ylabel("peak RSS (MB)")
    ax.tick_params(axis="x", rotation=45)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out / "peak_memory.png")
    plt.close(fig)
    plots["peak memory per strategy"] = out / "peak_memory.png"
    return plots
