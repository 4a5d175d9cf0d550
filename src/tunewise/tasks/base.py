"""The Task interface: everything that differs between problem types lives behind it.

A task reads and validates its data, learns what it must from the training split (e.g. the
label set), builds its model head, tokenizes, computes metrics and decodes outputs into what a
user sees. The training recipe and the predictor only talk to this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch import nn

from tunewise.config import DataConfig, ModelConfig, SplitFile, TaskOptions
from tunewise.data.schemas import SchemaSpec


class Task(ABC):
    name: ClassVar[str]
    Options: ClassVar[type[TaskOptions]]
    default_metric: ClassVar[str]  # picks the best checkpoint unless eval.metric says otherwise
    greater_is_better: ClassVar[bool] = True
    head_modules: ClassVar[list[str]]  # new (randomly initialised) modules; they always train
    # The transformers Auto class that loads the base model: "AutoModel" gives the bare backbone
    # a task head sits on; LM tasks use "AutoModelForCausalLM", "AutoModelForSeq2SeqLM", ...
    auto_model: ClassVar[str] = "AutoModel"
    # Properties strategies check for compatibility (see `strategies.base.Strategy.incompatible`):
    token_level: ClassVar[bool] = False  # outputs aligned to input tokens (NER, extractive QA)
    generative: ClassVar[bool] = False  # trains/evaluates a language-model head on text
    supports_packing: ClassVar[bool] = False  # training.packing: a batch's examples in one row
    # training.length_grouping "auto" for fixed-count batches: random batches (as a plain HF
    # script; same-length batches cost CoNLL NER 2.4 F1 points, benchmarks/ner_vs_hf.py).
    length_grouping: ClassVar[str] = "none"
    # The task computes with the strategy's adapters switched off (DPO's reference model), so
    # inference must not fold them into the weights.
    needs_unmerged_adapters: ClassVar[bool] = False
    # Evaluate the untrained model on the validation split too, so the run records "before" next
    # to "after" (`loss_before`, `perplexity_before`...): LM tasks, whose base model already scores.
    evaluate_before_training: ClassVar[bool] = False
    # Examples per batch when the config does not set training.batch_size (None: the config's
    # default). More, smaller steps can suit a task better on small data (see token NER).
    default_batch_size: ClassVar[int | None] = None
    # `tokenize` reads in-memory columns (`Columns`) as well as a `datasets` table, so raw inputs
    # skip building one (~15 ms per request, as much as minilm's forward pass); also lets the
    # server run several model workers (`serving.state`).
    in_memory_inputs: ClassVar[bool] = False
    # Fields of an input record that `predict` reads (`tunewise predict --input` keeps these).
    predict_fields: ClassVar[tuple[str, ...]] = ("text",)
    # What `tunewise data prepare --task NAME` checks records against (None: no schema, the
    # task's files are prepared by hand). See `tunewise.data.schemas.SchemaSpec`.
    prepare_schema: ClassVar[SchemaSpec | None] = None
    # Metrics printed after evaluation (`summary`; empty: the default metric), and their digits.
    summary_keys: ClassVar[tuple[str, ...]] = ()
    summary_digits: ClassVar[int] = 4

    def __init__(self, options: TaskOptions, data: DataConfig, model: ModelConfig) -> None:
        self.options = options
        self.data_cfg = data
        self.model_cfg = model

    # -- state learned from the training split, saved in the manifest ---------------------------
    @abstractmethod
    def state(self) -> dict[str, Any]: ...

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None: ...

    # -- data ------------------------------------------------------------------------------------
    @abstractmethod
    def read(self, spec: SplitFile, *, fit: bool = False, labelled: bool = True) -> Any:
        """Validated examples of one file as a `datasets.Dataset` (fit: learn state from it)."""

    @abstractmethod
    def tokenize(self, dataset: Any, tokenizer: Any) -> Any:
        """Model inputs (no padding) plus a `length` column for length-grouped batching."""

    @abstractmethod
    def collator(self, tokenizer: Any) -> Any: ...

    # -- model -----------------------------------------------------------------------------------
    @abstractmethod
    def build_model(self, backbone: nn.Module) -> nn.Module:
        """Backbone + this task's head; the head lives in `head_modules`."""

    # -- outputs ---------------------------------------------------------------------------------
    @abstractmethod
    def compute_metrics(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]: ...

    def decode(self, logits: np.ndarray) -> list[dict[str, Any]]:
        """User-facing predictions from the logits of the default `predict`, one dict per
        example. Tasks whose `predict` works another way (generation) do not need it."""
        raise NotImplementedError(f"{type(self).__name__} overrides predict() instead of decode()")

    def packed_collator(self, tokenizer: Any) -> Any:
        """The collator for `training.packing: true` (a batch's examples in one row); tasks that
        cannot pack raise a ConfigError saying why."""
        from tunewise.errors import ConfigError

        raise ConfigError(
            f"training.packing is for causal-LM generation tasks (instruction, chat, "
            f"generative_qa, summarization, translation); task '{self.name}' cannot pack."
        )

    def loss_module(self, model: nn.Module) -> Callable[..., Any] | None:
        """A loss the Trainer computes instead of the model's own (`loss(model, inputs,
        num_items_in_batch)`), e.g. causal LMs' answer-positions-only loss; None: the model's."""
        return None

    def label_counts(self, dataset: Any) -> dict[str, int]:
        """Examples per label, for the manifest and data report ({} when labels don't apply)."""
        return {}

    # -- evaluation and prediction (defaults: one logits row per example) ----------------------
    def trainer_metrics(self) -> Callable[[Any], dict[str, Any]] | None:
        """`compute_metrics` for the Trainer's per-epoch evaluation; None: loss only (e.g. when
        metrics need generation or span decoding, which `evaluate` does once at the end)."""
        from tunewise.evaluation.metrics import scalar_metrics

        return lambda p: scalar_metrics(self.compute_metrics(p.predictions, p.label_ids))

    def evaluate(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        encoded: Any | None = None,
        batch_size: int = 64,
        progress: bool = True,
    ) -> dict[str, Any]:
        """The task's metrics for a labelled dataset (as `read` returns it; `encoded` is its
        tokenized form when the caller already has it). Final evaluation, `tunewise eval` and
        the predictor all come here, so they agree."""
        from tunewise.evaluation.inference import predict_logits

        if encoded is None:
            encoded = self.tokenize(dataset, tokenizer)
        logits = predict_logits(model, encoded, self.collator(tokenizer), batch_size, progress)
        return self.compute_metrics(logits, np.asarray(encoded["labels"]))

    def predict(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        batch_size: int = 64,
        progress: bool = False,
    ) -> list[dict[str, Any]]:
        """User-facing predictions for an unlabelled dataset, one dict per row, in order."""
        from tunewise.evaluation.inference import predict_logits

        encoded = self.tokenize(dataset, tokenizer)
        logits = predict_logits(model, encoded, self.collator(tokenizer), batch_size, progress)
        return self.decode(logits)

    def predict_records(
        self,
        model: nn.Module,
        tokenizer: Any,
        records: list[str] | list[dict[str, Any]],
        batch_size: int = 64,
        progress: bool = False,
    ) -> list[dict[str, Any]]:
        """Predictions for raw inputs (texts, or dicts with the task's input fields), in order."""
        if self.in_memory_inputs:
            from tunewise.inference.columns import Columns

            table = Columns(self.input_columns(records))
            return self.predict(model, tokenizer, table, batch_size, progress)
        from tunewise.inference.fingerprints import random_fingerprints

        with random_fingerprints():  # in-memory inputs: hashing the tokenizer cost ~150 ms/call
            dataset = self.records_to_dataset(records)
            return self.predict(model, tokenizer, dataset, batch_size, progress)

    def input_columns(self, records: list[str] | list[dict[str, Any]]) -> dict[str, list[Any]]:
        """Raw inputs given to `predict` (texts, or dicts with the task's input fields) as columns
        shaped like the dataset `read(..., labelled=False)` returns."""
        rows = [r if isinstance(r, dict) else {"text": r} for r in records]
        keys = list(dict.fromkeys(k for r in rows for k in r))
        return {k: [r.get(k) for r in rows] for k in keys}

    def records_to_dataset(self, records: list[str] | list[dict[str, Any]]) -> Any:
        """`input_columns(records)` as a `datasets.Dataset`."""
        from datasets import Dataset

        return Dataset.from_dict(self.input_columns(records))

    def summary(self, metrics: dict[str, Any]) -> str:
        """One line of the headline metrics, printed after evaluation."""
        keys = self.summary_keys or (self.default_metric,)
        return format_summary(metrics, (*keys, "n_examples"), self.summary_digits)

    def plots(self, metrics: dict[str, Any], out_dir: Path) -> dict[str, Path]:
        """Task-specific figures for the report (name → PNG path)."""
        return {}


def format_summary(metrics: dict[str, Any], keys: tuple[str, ...], digits: int = 4) -> str:
    """'k=v, ...' for the keys present in `metrics` (floats to `digits` places)."""
    return ", ".join(
        f"{k}={metrics[k]:.{digits}f}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}"
        for k in keys
        if k in metrics
    )
