"""PNG plots for the run report: loss curves and confusion matrices (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay


def loss_curve(log_history: list[dict[str, Any]], path: Path) -> Path | None:
    """Training loss per logged step and evaluation loss per evaluation, on one chart."""
    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    evals = [(h["step"], h["eval_loss"]) for h in log_history if "eval_loss" in h]
    if not train and not evals:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss", lw=1.5)
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="validation loss", lw=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def confusion_matrix_plot(matrix: list, labels: list[str], path: Path, multi_label: bool) -> Path:
    """Counts per (true, predicted) label; one 2×2 panel per label for multi-label tasks."""
    if not multi_label:
        size = max(4.0, 0.6 * len(labels) + 2)
        fig, ax = plt.subplots(figsize=(size, size), dpi=110)
        ConfusionMatrixDisplay(np.array(matrix), display_labels=labels).plot(
            ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45
        )
        ax.set_title("confusion matrix (rows: true)")
    else:
        cols = min(4, len(labels))
        rows = (len(labels) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), dpi=110, squeeze=False)
        for ax, name, m in zip(axes.flat, labels, matrix, strict=False):
            ConfusionMatrixDisplay(np.array(m), display_labels=["no", "yes"]).plot(
                ax=ax, cmap="Blues", colorbar=False
            )
            ax.set_title(name)
        for ax in list(axes.flat)[len(labels) :]:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
