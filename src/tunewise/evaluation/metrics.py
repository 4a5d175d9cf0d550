"""Classification metrics, all from scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
)


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, label_names: list[str], multi_label: bool = False
) -> dict[str, Any]:
    """Accuracy, macro/micro/weighted P/R/F1, per-class report and confusion matrix.

    Single-label: y_* are class ids. Multi-label: y_* are 0/1 indicator matrices and accuracy is
    the exact-match (subset) accuracy.
    """
    ids = list(range(len(label_names)))
    kwargs: dict[str, Any] = {"zero_division": 0}
    if not multi_label:
        kwargs["labels"] = ids
    out: dict[str, Any] = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "n_examples": len(y_true),
    }
    for average in ("macro", "micro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=average, **kwargs)
        out[f"{average}_precision"] = float(p)
        out[f"{average}_recall"] = float(r)
        out[f"{average}_f1"] = float(f)
    report = classification_report(
        y_true, y_pred, target_names=label_names, output_dict=True, **kwargs
    )
    out["per_class"] = {
        name: {k: float(v) for k, v in report[name].items()} for name in label_names
    }
    if multi_label:
        out["confusion_matrix"] = multilabel_confusion_matrix(y_true, y_pred).tolist()
    else:
        out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=ids).tolist()
    out["labels"] = list(label_names)
    return out


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Only the numbers, for logs and best-checkpoint selection."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
