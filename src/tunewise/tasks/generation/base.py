"""What every text-generation task shares: causal LM or seq2seq model, answer-only loss,
perplexity, and task metrics from generated text.

A task module only says how to read its records, how a record becomes a user turn (causal LMs,
through the model's chat template) or a source text (seq2seq models such as T5/BART), what the
answer is and how generated answers are scored. The LM head is pretrained, so nothing is new:
`head_modules` is empty and the strategy decides what trains.
"""

from __future__ import annotations

import random
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import SplitFile, TaskOptions
from tunewise.errors import ConfigError
from tunewise.evaluation.text_metrics import perplexity
from tunewise.tasks.base import Task, format_summary
from tunewise.tasks.generation import encoding
from tunewise.tasks.generation.inference import (
    answer_nll,
    generate_texts,
    nll_from_logits,
)
from tunewise.tasks.generation.readers import Row


class GenerationOptions(TaskOptions):
    model_config = ConfigDict(extra="forbid")
    # {canonical field: the file's field}, e.g. {document: article, summary: highlights}
    fields: dict[str, str] = Field(default_factory=dict)
    # The user turn (causal LMs) / source text (seq2seq) as a template over the record's fields,
    # e.g. "Summarize: {document}". None: the task's own.
    prompt: str | None = None
    system_prompt: str | None = None  # prepended as a system turn (causal LMs)
    max_target_length: int = Field(256, gt=0)  # seq2seq: target tokens kept
    # Final evaluation generates answers for this many examples (seeded sample) and scores them
    # with the task's metrics; 0: loss and perplexity only.
    eval_generate_samples: int = Field(32, ge=0)
    max_new_tokens: int = Field(64, gt=0)  # tokens generated per answer at most
    do_sample: bool = False  # False: greedy (or beam search with num_beams > 1)
    temperature: float = Field(1.0, gt=0)  # sampling temperature (do_sample)
    top_p: float = Field(1.0, gt=0, le=1)  # nucleus sampling mass (do_sample)
    num_beams: int = Field(1, gt=0)  # beam search width (1: greedy or sampling)


class _AutoModel:
    """`auto_model` that depends on the model: on the class (what strategies inspect) it reads
    "AutoModelForCausalLM"; on a task instance it is "AutoModelForSeq2SeqLM" when the configured
    model is an encoder-decoder, which `assemble` then loads."""

    def __get__(self, task: GenerationTask | None, owner: type) -> str:
        if task is not None and task.seq2seq:
            return "AutoModelForSeq2SeqLM"
        return "AutoModelForCausalLM"


class GenerationTask(Task):
    Options = GenerationOptions
    default_metric = "loss"
    greater_is_better = False
    head_modules: ClassVar[list[str]] = []
    generative = True
    supports_packing = True  # training.packing (causal models; seq2seq refuse at load)
    # long, uneven texts: batches grouped by length in random windows (HF's group_by_length)
    # pad far less; LLaMA-Factory with it: 209 vs 136-151 tokens/s on the same job
    length_grouping = "window"
    evaluate_before_training = True  # the base model already scores: record before vs after
    auto_model = _AutoModel()  # type: ignore[assignment]
    # The field a bare string fills in `predict`, and the one shortened when a prompt is too long.
    input_field: ClassVar[str]
    long_field: ClassVar[str | None] = None
    supports_seq2seq: ClassVar[bool] = True
    headline: ClassVar[tuple[str, ...]] = ()  # task metrics shown in the one-line summary

    # -- hooks for each task -----------------------------------------------------------------------
    def read_rows(self, spec: SplitFile, labelled: bool) -> list[Row]:
        raise NotImplementedError

    def normalise(
        self, record: dict[str, Any], where: str, index: int, fields: dict[str, str]
    ) -> Row:
        """One record given to `predict` (same fields as the files, renamed by `fields`)."""
        raise NotImplementedError

    def user_text(self, row: Row) -> str:
        """The user turn for a causal LM."""
        raise NotImplementedError

    def source_text(self, row: Row) -> str:
        """The encoder input for a seq2seq model."""
        return self.user_text(row)

    def answer(self, row: Row) -> str:
        raise NotImplementedError

    def references(self, row: Row) -> list[str]:
        return [self.answer(row)]

    def score(self, predictions: list[str], references: list[list[str]]) -> dict[str, Any]:
        return {}

    # -- model kind --------------------------------------------------------------------------------
    @cached_property
    def seq2seq(self) -> bool:
        """True for encoder-decoder models (T5, BART), read from the model's config."""
        from tunewise.models import load_config, resolve

        m = self.model_cfg
        source = resolve(m.name, m.gguf_file, m.revision)
        kwargs: dict[str, Any] = {"trust_remote_code": m.trust_remote_code}
        if m.revision and not source.alias:
            kwargs["revision"] = m.revision
        return bool(getattr(load_config(source, **kwargs), "is_encoder_decoder", False))

    def build_model(self, backbone: nn.Module) -> nn.Module:
        self.__dict__["seq2seq"] = bool(getattr(backbone.config, "is_encoder_decoder", False))
        if self.seq2seq and not self.supports_seq2seq:
            raise ConfigError(
                f"Task '{self.name}' needs a decoder-only (causal) language model; "
                f"'{self.model_cfg.name}' is an encoder-decoder model."
            )
        return backbone

    # -- state and data ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        return None

    def read(self, spec: SplitFile, *, fit: bool = False, labelled: bool = True) -> Any:
        from datasets import Dataset

        return Dataset.from_list(self.read_rows(spec, labelled))

    def records_to_dataset(self, records: list[str] | list[dict[str, Any]]) -> Any:
        from datasets import Dataset

        rows = []
        for i, rec in enumerate(records):
            if not isinstance(rec, dict) or set(rec) == {"text"}:  # a bare text: the main input
                rec = {self.input_field: rec["text"] if isinstance(rec, dict) else rec}
            # Records may use the file's field names (task.fields) or the canonical ones, as
            # `read` returns them.
            mapped = any(name in rec for name in self.options.fields.values())
            row = self.normalise(rec, "predict input", i, self.options.fields if mapped else {})
            row["line"] = i
            rows.append(row)
        return Dataset.from_list(rows)

    def format_prompt(self, template: str, row: Row) -> str:
        values = {**self.options.model_dump(), **row}
        try:
            return template.format_map(values)
        except (KeyError, IndexError, ValueError) as exc:
            names = ", ".join(sorted(k for k in row if k != "line"))
            raise ConfigError(
                f"task.prompt {template!r} cannot be filled ({type(exc).__name__}: {exc}); "
                f"placeholders may name the record's fields: {names}."
            ) from None

    def conversation(self, row: Row, with_answer: bool) -> list[dict[str, str]]:
        """Messages for a causal LM: optional system turn, the user turn, the answer."""
        messages = []
        if self.options.system_prompt:
            messages.append({"role": "system", "content": self.options.system_prompt})
        text = self.format_prompt(self.options.prompt, row) if self.options.prompt else None
        messages.append({"role": "user", "content": text or self.user_text(row)})
        if with_answer:
            messages.append({"role": "assistant", "content": self.answer(row)})
        return messages

    def _fit(self, row: Row, tokenizer: Any, encode: Any, limit: int) -> Any:
        return encoding.fit(row, self.long_field, tokenizer, encode, limit)

    def tokenize(self, dataset: Any, tokenizer: Any) -> Any:
        limit = self.model_cfg.max_length

        def causal(row: Row) -> dict[str, Any]:
            out = self._fit(
                row,
                tokenizer,
                lambda r: encoding.encode_conversation(
                    tokenizer, self.conversation(r, with_answer=True), 10**9
                ),
                limit,
            )
            out = {k: v[:limit] for k, v in out.items()}
            out["length"] = len(out["input_ids"])
            return out

        def seq2seq(row: Row) -> dict[str, Any]:
            out = tokenizer(self.source_text(row), truncation=True, max_length=limit)
            target = tokenizer(
                text_target=self.answer(row),
                truncation=True,
                max_length=self.options.max_target_length,
            )
            return {
                "input_ids": out["input_ids"],
                "attention_mask": out["attention_mask"],
                "labels": target["input_ids"],
                "length": len(out["input_ids"]),
            }

        return dataset.map(
            seq2seq if self.seq2seq else causal,
            remove_columns=dataset.column_names,
            desc="tokenizing",
        )

    def prompts(self, dataset: Any, tokenizer: Any) -> list[list[int]]:
        """Token ids of each row's generation prompt (no answer)."""
        limit = self.model_cfg.max_length
        out = []
        for row in dataset:
            if self.seq2seq:
                ids = tokenizer(self.source_text(row), truncation=True, max_length=limit)
                out.append(list(ids["input_ids"]))
                continue
            out.append(
                self._fit(
                    row,
                    tokenizer,
                    lambda r: encoding.encode_prompt(
                        tokenizer, self.conversation(r, with_answer=False), 10**9
                    ),
                    limit,
                )[-limit:]
            )
        return out

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForSeq2Seq

        # Pads input_ids / attention_mask with the tokenizer and labels with -100, per batch.
        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=encoding.IGNORE)

    def loss_module(self, model: nn.Module) -> Any:
        """Causal LMs: the loss on answer positions only, their logits in chunks (see
        training/lm_loss.py); seq2seq models score only the target already."""
        from tunewise.training.lm_loss import AnswerOnlyLoss, supports_position_loss

        return AnswerOnlyLoss() if not self.seq2seq and supports_position_loss(model) else None

    def packed_collator(self, tokenizer: Any) -> Any:
        """One row per batch: examples concatenated, position ids restarting at each, the first
        label of each example ignored; attention stays inside an example (transformers builds a
        block-diagonal causal mask from the restarting position ids when no mask is given)."""
        from transformers import DataCollatorWithFlattening

        if self.seq2seq:
            raise ConfigError(
                "training.packing needs a decoder-only (causal) model; encoder-decoder models "
                f"such as '{self.model_cfg.name}' keep padded batches."
            )
        return DataCollatorWithFlattening(return_position_ids=True, separator_id=encoding.IGNORE)

    # -- outputs -----------------------------------------------------------------------------------
    def trainer_metrics(self) -> None:
        return None  # per-epoch evaluation reports the loss; generation runs once at the end

    def compute_metrics(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        return perplexity(*nll_from_logits(logits, labels, causal=not self.seq2seq))

    def generate(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        batch_size: int = 8,
        streamer: Any | None = None,
        progress: bool = False,
    ) -> list[str]:
        """Generated answers for the rows of `dataset`, with the task's generation settings."""
        return generate_texts(
            model,
            tokenizer,
            self.prompts(dataset, tokenizer),
            self.options,
            causal=not self.seq2seq,
            batch_size=min(batch_size, 16),  # the KV cache, not the weights, bounds the batch
            streamer=streamer,
            progress=progress,
        )

    def evaluate(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        encoded: Any | None = None,
        batch_size: int = 64,
        progress: bool = True,
    ) -> dict[str, Any]:
        """Answer-token loss and perplexity on every example; task metrics from generated text on
        `eval_generate_samples` of them (a seeded sample, so runs compare on the same ones)."""
        if encoded is None:
            encoded = self.tokenize(dataset, tokenizer)
        causal = not self.seq2seq
        nll, n_tokens = answer_nll(
            model, encoded, self.collator(tokenizer), causal, batch_size, progress=progress
        )
        metrics: dict[str, Any] = {**perplexity(nll, n_tokens), "n_examples": len(dataset)}
        n = min(self.options.eval_generate_samples, len(dataset))
        if n:
            picked = sorted(random.Random(0).sample(range(len(dataset)), n))
            subset = dataset.select(picked)
            predictions = self.generate(model, tokenizer, subset, batch_size, progress=progress)
            references = [self.references(row) for row in subset]
            metrics.update(self.score(predictions, references))
            metrics["n_generated"] = n
            metrics["samples"] = [
                {"line": row["line"], "prediction": p, "references": r}
                for row, p, r in list(zip(subset, predictions, references, strict=True))[:5]
            ]
        return metrics

    def predict(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        batch_size: int = 64,
        progress: bool = False,
    ) -> list[dict[str, Any]]:
        texts = self.generate(model, tokenizer, dataset, batch_size, progress=progress)
        return [{"generated_text": t} for t in texts]

    def summary(self, metrics: dict[str, Any]) -> str:
        return format_summary(metrics, ("loss", "perplexity", *self.headline, "n_examples"))
