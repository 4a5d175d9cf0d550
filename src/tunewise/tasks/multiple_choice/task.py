"""Multiple choice / ranking: score each candidate for a question (or context), pick the best.

Records hold a question (optionally with a context before it), a list of candidates and the gold
answer, given as an index or as the gold candidate's text (or a letter A, B, ...). Examples may
have different numbers of candidates. Metrics: accuracy and mean reciprocal rank (MRR).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import SplitFile, TaskOptions
from tunewise.data.readers import read_records
from tunewise.errors import DataError
from tunewise.tasks.base import Task
from tunewise.tasks.multiple_choice.data import (
    ChoiceCollator,
    candidates_of,
    gold_index,
    locate,
    pick_field,
    text_of,
)
from tunewise.tasks.multiple_choice.head import HEAD_MODULES, ChoiceScorer

QUESTION_FIELDS = ["question", "query", "prompt", "goal", "ctx", "sentence", "text"]
CHOICE_FIELDS = ["choices", "endings", "candidates", "options"]
LABEL_FIELDS = ["label", "answer", "gold", "answerKey"]


class MultipleChoiceOptions(TaskOptions):
    model_config = ConfigDict(extra="forbid")
    type: Literal["multiple_choice"] = "multiple_choice"
    # The question's field; field names given as a list mean "the first of these the records
    # have".
    question_field: str | list[str] = Field(default_factory=lambda: list(QUESTION_FIELDS))
    context_field: str | None = None  # optional passage put before the question (RACE style)
    # the candidates (a list of texts)
    choices_field: str | list[str] = Field(default_factory=lambda: list(CHOICE_FIELDS))
    # the gold candidate: its index, its text or its letter
    label_field: str | list[str] = Field(default_factory=lambda: list(LABEL_FIELDS))


class MultipleChoiceTask(Task):
    name = "multiple_choice"
    predict_fields = ("question", "context", "choices")  # context: joined to the question
    Options = MultipleChoiceOptions
    default_metric = "accuracy"
    head_modules = HEAD_MODULES

    # -- state: nothing is learned from the data (candidates come with every example) ------------
    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        return None

    # -- data ------------------------------------------------------------------------------------
    def read(self, spec: SplitFile, *, fit: bool = False, labelled: bool = True) -> Any:
        return self._to_dataset(read_records(spec.path, spec.format), spec.path, labelled)

    def records_to_dataset(self, records: list[str] | list[dict[str, Any]]) -> Any:
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise DataError(
                    f"input {i}: multiple choice needs a record with a question and its "
                    f"candidates, e.g. {{'question': ..., 'choices': [...]}}; got {rec!r}."
                )
        return self._to_dataset(list(enumerate(records)), "input", False, context_optional=True)

    def _to_dataset(
        self,
        records: list[tuple[int, dict]],
        path: str,
        labelled: bool,
        context_optional: bool = False,  # records from `read` already carry it in the question
    ) -> Any:
        from datasets import Dataset

        o = self.options
        first = records[0][1]
        q_field = pick_field(o.question_field, first, path, "question_field")
        c_field = pick_field(o.choices_field, first, path, "choices_field")
        y_field = pick_field(o.label_field, first, path, "label_field") if labelled else None
        cols: dict[str, list] = {"question": [], "choices": [], "line": []}
        if y_field:
            cols["label"] = []
        for line, rec in records:
            loc = f"{path}, {locate(path, line)}"
            question = text_of(rec, q_field, loc)
            if o.context_field and not (context_optional and o.context_field not in rec):
                question = f"{text_of(rec, o.context_field, loc)} {question}"
            choices = candidates_of(rec, c_field, loc)
            cols["question"].append(question)
            cols["choices"].append(choices)
            cols["line"].append(line)
            if y_field:
                cols["label"].append(gold_index(rec, y_field, choices, loc))
        return Dataset.from_dict(cols)

    def label_counts(self, dataset: Any) -> dict[str, int]:
        """Examples per number of candidates and per gold position (a skewed position is a
        shortcut a model can learn)."""
        counts: dict[str, int] = {}
        for choices in dataset["choices"]:
            key = f"{len(choices)} candidates"
            counts[key] = counts.get(key, 0) + 1
        for y in dataset["label"] if "label" in dataset.column_names else []:
            counts[f"gold at {y}"] = counts.get(f"gold at {y}", 0) + 1
        return dict(sorted(counts.items()))

    def tokenize(self, dataset: Any, tokenizer: Any) -> Any:
        max_length = self.model_cfg.max_length

        def encode(batch: dict[str, list]) -> dict[str, list]:
            firsts = [
                q for q, cs in zip(batch["question"], batch["choices"], strict=True) for _ in cs
            ]
            seconds = [c for cs in batch["choices"] for c in cs]
            flat = tokenizer(firsts, seconds, truncation="longest_first", max_length=max_length)
            out: dict[str, list] = {k: [] for k in flat}
            start = 0
            for cs in batch["choices"]:
                for k in flat:
                    out[k].append(flat[k][start : start + len(cs)])
                start += len(cs)
            # tokens of the example once padded: candidates × its longest candidate
            out["length"] = [len(ids) * max(map(len, ids)) for ids in out["input_ids"]]
            return out

        drop = [c for c in dataset.column_names if c != "label"]
        ds = dataset.map(encode, batched=True, remove_columns=drop, desc="tokenizing")
        return ds.rename_column("label", "labels") if "label" in ds.column_names else ds

    def collator(self, tokenizer: Any) -> Any:
        return ChoiceCollator(tokenizer)

    # -- model -----------------------------------------------------------------------------------
    def build_model(self, backbone: nn.Module) -> nn.Module:
        from tunewise.models import is_causal_lm

        pooling = self.model_cfg.pooling
        if pooling == "auto":
            pooling = "last" if is_causal_lm(backbone.config) else "mean"
        return ChoiceScorer(backbone, pooling)

    # -- outputs ---------------------------------------------------------------------------------
    def trainer_metrics(self) -> Any:
        from tunewise.evaluation.metrics import scalar_metrics

        # The Trainer pads narrower batches' logits with -100; real scores are never that low.
        return lambda p: scalar_metrics(
            self.compute_metrics(_missing_as_nan(p.predictions, -100.0), p.label_ids)
        )

    def compute_metrics(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        """Accuracy and MRR; `logits` is (examples, most candidates) with NaN where an example
        has fewer candidates. The rank of the gold candidate is 1 + the number of candidates
        scored strictly higher (hand-written: sklearn's ranking metrics need a fixed number of
        candidates per example)."""
        scores = _missing_as_nan(np.asarray(logits, dtype=np.float64))
        labels = np.asarray(labels, dtype=np.int64)
        gold = scores[np.arange(len(labels)), labels]
        ranks = 1 + np.sum(np.nan_to_num(scores, nan=-np.inf) > gold[:, None], axis=1)
        n_choices = np.sum(~np.isnan(scores), axis=1)
        return {
            "accuracy": float(np.mean(ranks == 1)),
            "mrr": float(np.mean(1.0 / ranks)),
            "n_examples": len(labels),
            "mean_candidates": float(np.mean(n_choices)),
            "chance_accuracy": float(np.mean(1.0 / n_choices)),  # what guessing would get
        }

    def decode(self, logits: np.ndarray) -> list[dict[str, Any]]:
        out = []
        for row in _missing_as_nan(np.asarray(logits, dtype=np.float64)):
            valid = row[~np.isnan(row)]
            probs = np.exp(valid - valid.max())
            probs /= probs.sum()
            order = np.argsort(-valid, kind="stable")
            ranking = [{"index": int(i), "score": round(float(probs[i]), 6)} for i in order]
            out.append(
                {"index": ranking[0]["index"], "score": ranking[0]["score"], "ranking": ranking}
            )
        return out

    def evaluate(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        encoded: Any | None = None,
        batch_size: int = 64,
        progress: bool = True,
    ) -> dict[str, Any]:
        if encoded is None:
            encoded = self.tokenize(dataset, tokenizer)
        logits = self._logits(model, encoded, tokenizer, batch_size, progress)
        return self.compute_metrics(logits, np.asarray(encoded["labels"]))

    def predict(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        batch_size: int = 64,
        progress: bool = False,
    ) -> list[dict[str, Any]]:
        """The chosen candidate (text and index), its probability and the full ranking."""
        encoded = self.tokenize(dataset, tokenizer)
        decoded = self.decode(self._logits(model, encoded, tokenizer, batch_size, progress))
        for pred, choices in zip(decoded, dataset["choices"], strict=True):
            pred["choice"] = choices[pred["index"]]
            for item in pred["ranking"]:
                item["choice"] = choices[item["index"]]
        return decoded

    @torch.inference_mode()
    def _logits(
        self, model: nn.Module, encoded: Any, tokenizer: Any, batch_size: int, progress: bool
    ) -> np.ndarray:
        """(examples, most candidates) scores in row order, NaN where a candidate is missing.
        Batches are length-grouped like training's; a batch is as wide as its widest example."""
        from tunewise.inference.batches import MODEL_INPUTS, model_batches

        model.eval()
        collate = self.collator(tokenizer)
        rows = encoded.select_columns([c for c in MODEL_INPUTS if c in encoded.column_names])
        widths = [len(ids) for ids in encoded["input_ids"]]
        out = np.full((len(encoded), max(widths)), np.nan)
        batches = model_batches(
            model, rows, encoded["length"], collate, batch_size, progress=progress, desc="scoring"
        )
        for indices, batch in batches:
            logits = model(**batch).logits.float().cpu()
            for row, i in enumerate(indices):
                out[i, : widths[i]] = logits[row, : widths[i]].numpy()
        return out


def _missing_as_nan(scores: np.ndarray, pad: float | None = None) -> np.ndarray:
    """NaN for absent candidates: the model's dtype-minimum scores (and the Trainer's pad)."""
    scores = np.array(scores, dtype=np.float64)
    missing = scores <= np.finfo(np.float32).min / 2
    if pad is not None:
        missing |= scores == pad
    scores[missing] = np.nan
    return scores
