"""`tunewise drift`: served traffic against the run's training data, and whether to retrain.

Four signals, each compared with a baseline drawn from the training distribution:
- input length (the run's tokenizer): population stability index (PSI) over the training
  lengths' decile bins, plus scipy's two-sample Kolmogorov-Smirnov test;
- out-of-vocabulary rate: the share of words never seen in the training data (and of tokenizer
  unknown tokens), against the same rate on held-out reference data (the run's validation set);
- predicted labels: traffic's predicted-label distribution against the training labels (total
  variation, PSI, scipy's chi-square), and against the model's own predictions on the reference
  data, which is what the recommendation uses (a model biased towards one label is not drift);
- confidence: the mean prediction score on traffic against the reference data.
Thresholds are arguments (defaults in THRESHOLDS, PSI 0.2 being the usual "significant shift").
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from tunewise.artifacts import atomic_write_text, read_manifest, write_json
from tunewise.config import validate_config
from tunewise.errors import TunewiseError
from tunewise.lifecycle.drift_report import recommend, render
from tunewise.lifecycle.logs import input_of, read_logs
from tunewise.lifecycle.records import canonical_records, record_text

THRESHOLDS = {
    "length_psi": 0.2,  # PSI of token lengths above this: inputs changed shape
    "oov_increase": 0.05,  # unseen-word rate above the reference's by this much (absolute)
    "label_psi": 0.2,  # predicted-label PSI against the model's predictions on reference data
    "confidence_drop": 0.1,  # mean confidence below the reference's by this much
    "min_requests": 30,  # fewer logged requests: too little traffic to judge
}
# Fields of a training record that are targets, not inputs (dropped before the model predicts).
TARGETS = {"label", "tags", "answers", "answer", "output", "response", "target", "summary"}
REFERENCE_LIMIT = 500  # reference examples the model predicts (confidence, label baseline)
EPS = 1e-4
_WORD = re.compile(r"\w+")


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two distributions (proportions, smoothed)."""
    p = np.clip(np.asarray(expected, float), EPS, None)
    q = np.clip(np.asarray(actual, float), EPS, None)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def length_shift(train: list[int], traffic: list[int]) -> dict[str, Any]:
    from scipy.stats import ks_2samp

    edges = np.unique(np.quantile(train, np.linspace(0.1, 0.9, 9)))

    def hist(x: list[int]) -> np.ndarray:  # bin i = (edge i-1, edge i]
        return np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)

    ks = ks_2samp(train, traffic)
    return {
        "train": _summary(train),
        "traffic": _summary(traffic),
        "psi": round(psi(hist(train) / len(train), hist(traffic) / len(traffic)), 4),
        "ks_statistic": round(float(ks.statistic), 4),
        "ks_pvalue": float(ks.pvalue),
    }


def _summary(x: list[int]) -> dict[str, float]:
    a = np.asarray(x)
    return {
        "mean": round(float(a.mean()), 2),
        "p50": float(np.median(a)),
        "p95": float(np.quantile(a, 0.95)),
    }


def _unseen(texts: list[str], vocabulary: set[str]) -> float:
    words = [w for t in texts for w in _WORD.findall(t.lower())]
    return round(sum(w not in vocabulary for w in words) / max(len(words), 1), 4)


def _unk_rate(tokenizer: Any, texts: list[str]) -> float:
    if tokenizer.unk_token_id is None:
        return 0.0
    ids = [i for t in texts for i in tokenizer(t, add_special_tokens=False)["input_ids"]]
    return round(sum(i == tokenizer.unk_token_id for i in ids) / max(len(ids), 1), 4)


def label_shift(reference: Counter, traffic: Counter) -> dict[str, Any]:
    """TV distance, PSI and chi-square of traffic's label counts against `reference` counts."""
    from scipy.stats import chisquare

    labels = sorted(set(reference) | set(traffic))
    ref = np.array([reference.get(k, 0) for k in labels], float)
    obs = np.array([traffic.get(k, 0) for k in labels], float)
    p, q = ref / max(ref.sum(), 1), obs / max(obs.sum(), 1)
    expected = np.clip(p, EPS, None)
    expected = expected / expected.sum() * obs.sum()
    chi = chisquare(obs, expected)
    return {
        "reference": {k: round(float(v), 4) for k, v in zip(labels, p, strict=True)},
        "traffic": {k: round(float(v), 4) for k, v in zip(labels, q, strict=True)},
        "total_variation": round(float(0.5 * np.abs(p - q).sum()), 4),
        "psi": round(psi(p, q), 4),
        "chi_square": round(float(chi.statistic), 4),
        "chi_square_pvalue": float(chi.pvalue),
    }


def _labels(predictions: list[dict[str, Any]]) -> Counter:
    out: Counter = Counter()
    for p in predictions:
        label = p.get("label") if isinstance(p, dict) else None
        for item in label if isinstance(label, list) else [label]:
            if item is not None:
                out[str(item)] += 1
    return out


def _scores(requests: list[dict[str, Any]]) -> list[float]:
    out = []
    for r in requests:
        score = r.get("score")
        if score is None and isinstance(r.get("prediction"), dict):
            score = r["prediction"].get("score")
        if isinstance(score, (int, float)):
            out.append(float(score))
    return out


def drift(
    run: str | Path,
    requests_dir: str | Path,
    output: str | Path | None = None,
    thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The drift report (also written to `output` .md and .json; default REQUESTS_DIR/drift.md)."""
    from transformers import AutoTokenizer

    from tunewise.errors import ConfigError

    limits = {**THRESHOLDS, **(thresholds or {})}
    unknown = set(limits) - set(THRESHOLDS)
    if unknown:
        raise ConfigError(
            f"drift: unknown threshold(s) {sorted(unknown)}; known: {list(THRESHOLDS)}."
        )
    manifest = read_manifest(Path(run))
    cfg = validate_config(manifest["config"], str(Path(run) / "tunewise.json"))
    task = cfg.task.type
    logs = read_logs(requests_dir)
    traffic = [record_text(input_of(r), task) for r in logs.requests]
    train_spec = cfg.data.split("train")
    assert train_spec is not None
    train_records = canonical_records(train_spec.path, task, train_spec)
    ref_spec = cfg.data.split("validation")
    if ref_spec is not None:
        ref_records = canonical_records(ref_spec.path, task, ref_spec)
    else:  # no validation file: a seeded fifth of train is the held-out reference
        order = np.random.default_rng(cfg.seed).permutation(len(train_records)).tolist()
        cut = max(1, len(train_records) // 5)
        ref_records = [train_records[i] for i in order[:cut]]
        train_records = [train_records[i] for i in order[cut:]]
    train = [record_text(r, task) for r in train_records]
    reference = [record_text(r, task) for r in ref_records]
    tokenizer = AutoTokenizer.from_pretrained(Path(run) / "tokenizer")

    def lengths(texts: list[str]) -> list[int]:
        return [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]

    vocabulary = {w for t in train for w in _WORD.findall(t.lower())}
    report: dict[str, Any] = {
        "run": str(run),
        "requests": str(requests_dir),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "task": task,
        "n_requests": len(traffic),
        "n_train": len(train),
        "n_reference": len(reference),
        "thresholds": limits,
        "length": length_shift(lengths(train), lengths(traffic)) if traffic else None,
        "oov": {
            "unseen_word_rate": {
                "reference": _unseen(reference, vocabulary),
                "traffic": _unseen(traffic, vocabulary),
            },
            "tokenizer_unk_rate": {
                "train": _unk_rate(tokenizer, train),
                "traffic": _unk_rate(tokenizer, traffic),
            },
        },
    }
    _model_signals(report, run, logs.requests, ref_records, manifest)
    recommend(report, limits)
    path = Path(output) if output else Path(requests_dir) / "drift.md"
    write_json(path.with_suffix(".json"), report)
    atomic_write_text(path, render(report))
    report["report"] = str(path)
    return report


def _model_signals(
    report: dict[str, Any],
    run: str | Path,
    requests: list[dict],
    reference: list[dict[str, Any]],
    manifest: dict,
) -> None:
    """Label and confidence signals: traffic vs training labels and vs the model's own
    predictions on the reference texts (the model is loaded once for those)."""
    predictions = [r.get("prediction") for r in requests if isinstance(r.get("prediction"), dict)]
    served = _labels(predictions)
    scores = _scores(requests)
    if not served and not scores:
        return
    from tunewise.serving.predictor import Predictor

    sample = [{k: v for k, v in r.items() if k not in TARGETS} for r in reference[:REFERENCE_LIMIT]]
    try:
        model_preds = Predictor(run).predict(sample) if sample else []
    except TunewiseError as exc:  # inputs the task cannot predict from: no model baseline
        report["baseline_error"] = str(exc)
        model_preds = []
    if served:
        train_counts = Counter(manifest.get("data", {}).get("train", {}).get("label_counts", {}))
        baseline = _labels(model_preds)
        report["labels"] = {
            "vs_training_labels": label_shift(train_counts, served) if train_counts else None,
            "vs_reference_predictions": label_shift(baseline, served) if baseline else None,
        }
    if scores:
        ref_scores = [
            float(p["score"]) for p in model_preds if isinstance(p.get("score"), (int, float))
        ]
        report["confidence"] = {
            "traffic_mean": round(float(np.mean(scores)), 4),
            "reference_mean": round(float(np.mean(ref_scores)), 4) if ref_scores else None,
        }
