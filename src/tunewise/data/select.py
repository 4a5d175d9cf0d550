"""Annotation support: pick the unlabelled examples most worth labelling, and move them to and
from Label Studio.

Uncertainty sampling (Settles 2009) on the class probabilities of a trained run's Predictor:
entropy, margin (1 − gap between the top two), least confidence (1 − top probability), or a
seeded random baseline. Multi-label runs score each label as its own yes/no question and average.
Label Studio's task JSON ("data", "predictions", "annotations") is its documented import/export
format for a Choices labelling config (from_name "label", to_name "text").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tunewise.artifacts import atomic_write_text, check_writable_file
from tunewise.errors import DataError

METHODS = ("entropy", "margin", "least_confidence", "random")


def uncertainty(probs: np.ndarray, method: str, multi_label: bool = False) -> np.ndarray:
    """One score per row of class probabilities; higher means less certain."""
    p = np.clip(np.asarray(probs, dtype=float), 1e-12, 1.0)
    if multi_label:  # each label a Bernoulli: average the per-label scores
        stacked = np.stack([p, 1 - p], axis=-1).reshape(-1, 2)
        return uncertainty(stacked, method).reshape(p.shape).mean(axis=1)
    if method == "entropy":
        return -(p * np.log(p)).sum(axis=1)
    top = np.sort(p, axis=1)[:, ::-1]
    if method == "margin":
        return 1.0 - (top[:, 0] - (top[:, 1] if p.shape[1] > 1 else 0.0))
    if method == "least_confidence":
        return 1.0 - top[:, 0]
    raise DataError(f"Unknown selection method '{method}'; known: {', '.join(METHODS)}.")


def select(
    predictor: Any,
    pool: str | Path,
    k: int,
    method: str = "entropy",
    seed: int = 42,
    output: str | Path | None = None,
    batch_size: int = 64,
) -> list[dict[str, Any]]:
    """The k pool records a trained run's `predictor` (`tunewise.load(run_dir)`) is least sure
    about (most uncertain first)."""

    if output:
        check_output(pool, output)
    if method not in METHODS:
        raise DataError(f"Unknown selection method '{method}'; known: {', '.join(METHODS)}.")
    dataset = predictor.read(pool, labelled=False)
    records = [dataset[i] for i in range(len(dataset))]
    inputs = [{c: r[c] for c in ("text", "text_pair") if c in r} for r in records]
    preds = predictor.predict(inputs, batch_size=batch_size)
    if not preds or "scores" not in preds[0]:
        raise DataError(
            f"Run {getattr(predictor, 'run_dir', '')}: its task gives no class probabilities, "
            "which selection needs."
        )
    labels = list(preds[0]["scores"])
    probs = np.array([[p["scores"][lab] for lab in labels] for p in preds])
    multi = bool(predictor.task.state().get("multi_label"))
    if method == "random":
        scores = np.random.default_rng(seed).random(len(preds))
    else:
        scores = uncertainty(probs, method, multi)
    order = np.argsort(-scores, kind="stable")[:k]
    picked = []
    from tunewise.data.readers import read_records

    raw = dict(read_records(pool))  # every field of the pool record, by line
    for i in order.tolist():
        out = dict(raw.get(records[i].get("line"), records[i]))
        out.update(
            {
                "line": records[i].get("line"),
                "uncertainty": round(float(scores[i]), 6),
                "predicted": preds[i]["label"],
                "scores": preds[i]["scores"],
            }
        )
        picked.append(out)
    if output:
        atomic_write_text(
            Path(output), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in picked)
        )
    return picked


# -- Label Studio --------------------------------------------------------------------------------
def check_output(source: str | Path, output: str | Path) -> None:
    """Before any work: --output can be written, and is not the input itself."""
    check_writable_file(Path(output), "--output")
    if Path(output).resolve() == Path(source).resolve():
        raise DataError(f"--output '{output}' is the input file; choose another name.")


def to_label_studio(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Label Studio tasks; a record's `predicted` label becomes a pre-annotation."""
    tasks = []
    for r in records:
        task: dict[str, Any] = {"data": {k: v for k, v in r.items() if k not in ("scores",)}}
        if "predicted" in r:
            choices = r["predicted"] if isinstance(r["predicted"], list) else [r["predicted"]]
            task["predictions"] = [
                {
                    "model_version": "tunewise",
                    "score": r.get("uncertainty"),
                    "result": [
                        {
                            "from_name": "label",
                            "to_name": "text",
                            "type": "choices",
                            "value": {"choices": [str(c) for c in choices]},
                        }
                    ],
                }
            ]
        tasks.append(task)
    return tasks


def from_label_studio(tasks: Any, source: str = "export") -> tuple[list[dict[str, Any]], int]:
    """(labelled records {text, label, ...}, tasks without a usable annotation)."""
    if not isinstance(tasks, list):
        raise DataError(f"{source}: expected a JSON list of Label Studio tasks.")
    out, unlabelled = [], 0
    for index, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise DataError(f"{source}, task {index}: no 'data' object.")
        data = task["data"]
        if "text" not in data:
            raise DataError(f"{source}, task {index}: field 'data.text' is missing.")
        try:
            annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
            choices = [
                c
                for a in annotations[-1:]  # the latest annotation wins
                for res in a.get("result") or []
                if res.get("type", "choices") == "choices"
                for c in (res.get("value") or {}).get("choices") or []
            ]
        except (AttributeError, TypeError):  # a list where an object belongs, or the reverse
            raise DataError(
                f"{source}, task {index}: 'annotations' is not in Label Studio's export format "
                "(a list of objects whose 'result' items carry value.choices)."
            ) from None
        if not choices:
            unlabelled += 1
            continue
        record = {k: v for k, v in data.items() if k not in ("predicted", "uncertainty")}
        record["label"] = choices[0] if len(choices) == 1 else choices
        out.append(record)
    return out, unlabelled


def export_label_studio(source: str | Path, output: str | Path) -> int:
    """JSONL (e.g. from `data select`) → Label Studio tasks JSON; returns the task count."""
    from tunewise.data.readers import read_records

    check_output(source, output)
    records = [r for _, r in read_records(source)]
    atomic_write_text(
        Path(output), json.dumps(to_label_studio(records), ensure_ascii=False, indent=1)
    )
    return len(records)


def import_label_studio(source: str | Path, output: str | Path) -> tuple[int, int]:
    """Label Studio export JSON → labelled JSONL; returns (records written, skipped tasks)."""
    check_output(source, output)
    try:
        tasks = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{source}: cannot read a Label Studio export ({exc}).") from None
    records, skipped = from_label_studio(tasks, str(source))
    atomic_write_text(
        Path(output), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    )
    return len(records), skipped
