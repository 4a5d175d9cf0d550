"""Entity-level metrics for token classification, from `seqeval`.

seqeval's default mode matches the CoNLL `conlleval` script: an entity counts only when its type
and its exact word span are both right, and an I- tag after O opens an entity (so imperfect BIO
predictions are scored the way the shared task scored them).
"""

from __future__ import annotations

from typing import Any

from seqeval.metrics import accuracy_score, classification_report


def entity_metrics(y_true: list[list[str]], y_pred: list[list[str]]) -> dict[str, Any]:
    """Micro precision/recall/F1 over entities, macro F1 over types, per-type figures, word
    accuracy and counts. Sentences must be word-aligned (same length pairwise)."""
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    micro = report.pop("micro avg")
    macro = report.pop("macro avg")
    report.pop("weighted avg", None)
    per_type = {
        kind: {
            "precision": float(v["precision"]),
            "recall": float(v["recall"]),
            "f1": float(v["f1-score"]),
            "support": int(v["support"]),
        }
        for kind, v in sorted(report.items())
    }
    return {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "macro_f1": float(macro["f1-score"]),
        "accuracy": float(accuracy_score(y_true, y_pred)) if any(y_true) else 0.0,
        "n_examples": len(y_true),
        "n_entities": int(micro["support"]),
        "per_type": per_type,
    }
