"""Sequence classification: single- or multi-label, single texts or text pairs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import SplitFile, TaskOptions
from tunewise.data.readers import read_records, where
from tunewise.errors import DataError
from tunewise.evaluation.metrics import classification_metrics
from tunewise.tasks.base import Task
from tunewise.tasks.classification.schema import SCHEMA
from tunewise.tasks.heads import HEAD_MODULES, PooledClassifier


class ClassificationOptions(TaskOptions):
    model_config = ConfigDict(extra="forbid")
    type: Literal["classification"] = "classification"
    multi_label: bool | None = None  # None: detected from the labels (lists or label_separator)
    threshold: float = Field(0.5, gt=0, lt=1)  # multi-label: probability that switches a label on


class ClassificationTask(Task):
    name = "classification"
    predict_fields = ("text", "text_pair")
    in_memory_inputs = True
    summary_keys = ("accuracy", "macro_f1", "micro_f1")
    prepare_schema = SCHEMA
    Options = ClassificationOptions
    default_metric = "accuracy"
    head_modules = HEAD_MODULES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.labels: list[str] = []
        self.multi_label: bool = bool(self.options.multi_label)

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"labels": self.labels, "multi_label": self.multi_label}

    def load_state(self, state: dict[str, Any]) -> None:
        self.labels = list(state["labels"])
        self.multi_label = bool(state["multi_label"])

    # -- data ------------------------------------------------------------------------------------
    def read(self, spec: SplitFile, *, fit: bool = False, labelled: bool = True) -> Any:
        from datasets import Dataset

        records = read_records(spec.path, spec.format)
        first = records[0][1]
        text_col = _pick_column(spec.text_column, first, spec.path, "text_column")
        pair_col = (
            _pick_column(spec.text_pair_column, first, spec.path, "text_pair_column")
            if spec.text_pair_column
            else None
        )
        label_col = spec.label_column if labelled else None
        if label_col and label_col not in first:
            raise DataError(
                f"{spec.path}: no label column '{label_col}'; the records have "
                f"{_columns(first)}. Set data.label_column (or per file: "
                f"data.<split>.label_column)."
            )
        columns: dict[str, list[Any]] = {"text": [], "line": []}
        if pair_col:
            columns["text_pair"] = []
        raw_labels: list[Any] = []
        for line, rec in records:
            columns["text"].append(_text(rec, text_col, spec.path, line))
            if pair_col:
                columns["text_pair"].append(_text(rec, pair_col, spec.path, line))
            columns["line"].append(line)
            if label_col:
                raw_labels.append(self._raw_label(rec, label_col, spec.path, line))
        if label_col:
            if fit:
                self._fit_labels(raw_labels)
            columns["label"] = [
                self._encode(raw, spec.path, line)
                for raw, line in zip(raw_labels, columns["line"], strict=True)
            ]
        return Dataset.from_dict(columns)

    def _raw_label(self, rec: dict, col: str, path: str, line: int) -> list[str]:
        value = rec.get(col)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise DataError(
                f"{path}, {where(path, line)}: field '{col}' (the label) is missing or empty."
            )
        sep = self.data_cfg.label_separator
        if isinstance(value, list):
            items = value
        elif sep and isinstance(value, str):
            items = [v for v in value.split(sep) if v.strip()]
        else:
            items = [value]
        mapping = {str(k): v for k, v in (self.data_cfg.label_map or {}).items()}
        names = []
        for item in items:
            if isinstance(item, (dict, list)):
                raise DataError(
                    f"{path}, {where(path, line)}: field '{col}' holds {item!r}, not a label."
                )
            name = _label_str(item)
            names.append(mapping.get(name, name))
        if isinstance(value, list) or sep:
            names.append("\x00multi")  # marks a multi-label record for detection in _fit_labels
        return names

    def _fit_labels(self, raw_labels: list[list[str]]) -> None:
        if self.options.multi_label is None:
            self.multi_label = any(r and r[-1] == "\x00multi" for r in raw_labels)
        names = {n for r in raw_labels for n in r if n != "\x00multi"}
        self.labels = sorted(names, key=lambda s: (0, int(s), s) if _is_int(s) else (1, 0, s))
        if len(self.labels) < 2 and not self.multi_label:
            raise DataError(
                f"The training data has a single label ({self.labels}): classification needs two "
                "or more."
            )

    def _encode(self, raw: list[str], path: str, line: int) -> Any:
        names = [n for n in raw if n != "\x00multi"]
        unknown = [n for n in names if n not in self.labels]
        if unknown:
            raise DataError(
                f"{path}, {where(path, line)}: label {unknown[0]!r} never occurs in the training "
                f"data (known labels: {', '.join(self.labels)}). Fix the record or map it with "
                "data.label_map."
            )
        if self.multi_label:
            vec = [0.0] * len(self.labels)
            for n in names:
                vec[self.labels.index(n)] = 1.0
            return vec
        if len(names) != 1:
            raise DataError(
                f"{path}, {where(path, line)}: {len(names)} labels in a single-label task."
            )
        return self.labels.index(names[0])

    def label_counts(self, dataset: Any) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for y in dataset["label"]:
            if self.multi_label:
                counts.update(self.labels[i] for i, v in enumerate(y) if v)
            else:
                counts[self.labels[y]] += 1
        return {name: counts[name] for name in self.labels}

    def _encoder(self, tokenizer: Any, has_pair: bool) -> Any:
        max_length = self.model_cfg.max_length

        def encode(batch: dict[str, list]) -> dict[str, list]:
            pair = batch["text_pair"] if has_pair else None
            out = tokenizer(batch["text"], pair, truncation=True, max_length=max_length)
            out["length"] = [len(ids) for ids in out["input_ids"]]
            return out

        return encode

    def tokenize(self, dataset: Any, tokenizer: Any) -> Any:
        encode = self._encoder(tokenizer, "text_pair" in dataset.column_names)
        keep = {"label"}
        drop = [c for c in dataset.column_names if c not in keep]
        ds = dataset.map(encode, batched=True, remove_columns=drop, desc="tokenizing")
        return ds.rename_column("label", "labels") if "label" in ds.column_names else ds

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    # -- model -----------------------------------------------------------------------------------
    def build_model(self, backbone: nn.Module) -> nn.Module:
        from tunewise.models import is_causal_lm

        pooling = self.model_cfg.pooling
        if pooling == "auto":
            pooling = "last" if is_causal_lm(backbone.config) else "mean"
        return PooledClassifier(backbone, len(self.labels), pooling, self.multi_label)

    # -- outputs ---------------------------------------------------------------------------------
    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
        z = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    def _predicted(self, probs: np.ndarray) -> np.ndarray:
        if self.multi_label:
            return (probs >= self.options.threshold).astype(int)
        return probs.argmax(axis=-1)

    def compute_metrics(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        pred = self._predicted(self.probabilities(logits))
        truth = labels.astype(int)
        return classification_metrics(truth, pred, self.labels, self.multi_label)

    def decode(self, logits: np.ndarray) -> list[dict[str, Any]]:
        probs = self.probabilities(logits)
        pred = self._predicted(probs)
        out = []
        for p, y in zip(probs, pred, strict=True):
            scores = {name: round(float(s), 6) for name, s in zip(self.labels, p, strict=True)}
            if self.multi_label:
                on = [i for i, v in enumerate(y) if v]
                out.append(
                    {
                        "label": [self.labels[i] for i in on],
                        "score": [round(float(p[i]), 6) for i in on],
                        "scores": scores,
                    }
                )
            else:
                out.append(
                    {"label": self.labels[int(y)], "score": round(float(p[y]), 6), "scores": scores}
                )
        return out

    def plots(self, metrics: dict[str, Any], out_dir: Path) -> dict[str, Path]:
        from tunewise.evaluation.plots import confusion_matrix_plot

        if "confusion_matrix" not in metrics:
            return {}
        path = confusion_matrix_plot(
            metrics["confusion_matrix"],
            self.labels,
            out_dir / "confusion_matrix.png",
            self.multi_label,
        )
        return {"confusion matrix": path}


def _columns(record: dict) -> str:
    return ", ".join(f"'{k}'" for k in record) or "no fields"


def _pick_column(candidates: str | list[str] | None, first: dict, path: str, key: str) -> str:
    names = [candidates] if isinstance(candidates, str) else list(candidates or [])
    for name in names:
        if name in first:
            return name
    raise DataError(
        f"{path}: no column {' or '.join(repr(n) for n in names)}; the records have "
        f"{_columns(first)}. Set data.{key} (a name or a list of names; per file: "
        f"data.<split>.{key})."
    )


def _text(rec: dict, col: str, path: str, line: int) -> str:
    value = rec.get(col)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise DataError(
            f"{path}, {where(path, line)}: field '{col}' is missing or empty (got {value!r})."
        )
    return value


def _label_str(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _is_int(s: str) -> bool:
    return s.lstrip("-").isdigit()
