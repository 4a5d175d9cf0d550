"""Extractive question answering (SQuAD v1.1, and v2.0 with unanswerable questions).

Data: SQuAD JSON or JSONL (`data/squad.py`). Each question + context becomes one or more token
windows (`qa_windows.py`); the model predicts start / end logits per token (`span_head.py`);
answers come back as character spans of the context by n-best decoding over all windows of a
question (`span_decode.py`), and are scored with the official SQuAD EM / F1
(`evaluation/squad.py`). The per-epoch metric the Trainer sees is a cheap window-level proxy
(token-overlap F1 of the best span against the gold token span); the real EM / F1 needs
decoding against the raw contexts and is computed once at the end by `evaluate`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import SplitFile, TaskOptions
from tunewise.errors import DataError
from tunewise.evaluation.squad import squad_scores
from tunewise.inference.batches import RightPadCollator
from tunewise.tasks.base import Task
from tunewise.tasks.extractive_qa.decode import decode_all, window_logits
from tunewise.tasks.extractive_qa.head import HEAD_MODULES, SpanQuestionAnswering
from tunewise.tasks.extractive_qa.schema import SCHEMA
from tunewise.tasks.extractive_qa.squad import read_qa
from tunewise.tasks.extractive_qa.windows import (
    WindowSpec,
    encode_windows,
    null_index,
)


class ExtractiveQAOptions(TaskOptions):
    model_config = ConfigDict(extra="forbid")
    type: Literal["extractive_qa"] = "extractive_qa"
    # Tokens shared by consecutive windows of a long context (model.max_length sets the window
    # size); None: a quarter of max_length.
    doc_stride: int | None = Field(None, ge=0)
    max_question_tokens: int = Field(64, gt=0)  # longer questions are cut
    max_answer_length: int = Field(30, gt=0)  # in tokens
    n_best: int = Field(20, gt=0)  # start / end candidates per window
    # SQuAD 2.0: questions may have no answer; the model answers "" when the no-answer score
    # beats the best span by more than null_score_threshold.
    version_2_with_negative: bool = False
    null_score_threshold: float = 0.0  # no-answer margin (SQuAD 2.0)
    # An answer whose text is not at its answer_start: fix (move to the nearest occurrence),
    # error, or skip it.
    answer_policy: Literal["fix", "error", "skip"] = "fix"


class ExtractiveQATask(Task):
    name = "extractive_qa"
    predict_fields = ("question", "context")
    prepare_schema = SCHEMA
    summary_keys = ("exact_match", "f1")
    summary_digits = 2
    Options = ExtractiveQAOptions
    default_metric = "span_f1"  # per-epoch proxy; final metrics are exact_match / f1
    head_modules = HEAD_MODULES
    token_level = True

    # -- state: nothing is learned from the data -------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        pass

    # -- data ------------------------------------------------------------------------------------
    def read(self, spec: SplitFile, *, fit: bool = False, labelled: bool = True) -> Any:
        from datasets import Dataset

        records = read_qa(
            spec.path, spec.format, labelled=labelled, answer_policy=self.options.answer_policy
        )
        if labelled and not self.options.version_2_with_negative:
            bad = next((r for r in records if not r["answers"]["text"]), None)
            if bad is not None:
                raise DataError(
                    f"{bad['where']}: the question has no answer (unanswerable). Set "
                    "task.version_2_with_negative: true to train and score SQuAD 2.0 style."
                )
        keep = ["id", "title", "question", "context"] + (["answers"] if labelled else [])
        return Dataset.from_dict({k: [r[k] for r in records] for k in keep})

    def records_to_dataset(self, records: list[str] | list[dict[str, Any]]) -> Any:
        from datasets import Dataset

        rows = []
        for i, rec in enumerate(records):
            if not isinstance(rec, dict) or not all(
                isinstance(rec.get(k), str) and rec[k].strip() for k in ("question", "context")
            ):
                raise DataError(
                    f"input {i}: extractive QA needs a record with non-empty 'question' and "
                    f"'context' strings (got {str(rec)[:80]!r})."
                )
            rows.append({"question": rec["question"], "context": rec["context"]})
        return Dataset.from_dict({k: [r[k] for r in rows] for k in ("question", "context")})

    def label_counts(self, dataset: Any) -> dict[str, int]:
        if "answers" not in dataset.column_names:
            return {}
        answered = sum(1 for a in dataset["answers"] if a["text"])
        return {"answerable": answered, "unanswerable": len(dataset) - answered}

    def window_spec(self, tokenizer: Any) -> WindowSpec:
        o = self.options
        return WindowSpec.build(
            tokenizer, self.model_cfg.max_length, o.doc_stride, o.max_question_tokens
        )

    def tokenize(self, dataset: Any, tokenizer: Any) -> Any:
        spec = self.window_spec(tokenizer)
        labelled = "answers" in dataset.column_names

        def encode(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
            out = encode_windows(
                tokenizer,
                batch["question"],
                batch["context"],
                spec,
                batch["answers"] if labelled else None,
            )
            out["example_index"] = [indices[i] for i in out["example_index"]]
            out["null_token"] = [null_index(ids, tokenizer) for ids in out["input_ids"]]
            return out

        return dataset.map(
            encode,
            batched=True,
            with_indices=True,
            remove_columns=dataset.column_names,
            desc="windowing",
        )

    def collator(self, tokenizer: Any) -> Any:
        return RightPadCollator(tokenizer)  # start / end positions are scalars: no fill

    # -- model -----------------------------------------------------------------------------------
    def build_model(self, backbone: nn.Module) -> nn.Module:
        return SpanQuestionAnswering(backbone)

    # -- window-level outputs (the Trainer's per-epoch view) -------------------------------------
    def decode(self, logits: Any) -> list[dict[str, Any]]:
        """Best token span per window from (start, end) logits of shape (windows, tokens);
        padding may hold any value below -1e3 (Trainer pads with -100, the head with -1e4)."""
        start, end = (np.asarray(x, dtype=np.float32) for x in logits)
        valid = (start > -1e3) & (end > -1e3)
        length = self.options.max_answer_length
        n, seq = start.shape
        i, j = np.arange(seq)[:, None], np.arange(seq)[None, :]
        allowed = (j >= i) & (j - i < length)
        out = []
        for row in range(n):
            scores = start[row][:, None] + end[row][None, :]
            ok = allowed & valid[row][:, None] & valid[row][None, :]
            scores = np.where(ok, scores, -np.inf)
            s, e = np.unravel_index(int(np.argmax(scores)), scores.shape)
            out.append({"start_token": int(s), "end_token": int(e), "logit": float(scores[s, e])})
        return out

    def compute_metrics(self, logits: Any, labels: Any) -> dict[str, Any]:
        """Window-level proxy: exact and token-overlap F1 of the best span vs. the gold one."""
        gold_start, gold_end = (np.asarray(x) for x in labels)
        exact, f1 = [], []
        for pred, gs, ge in zip(self.decode(logits), gold_start, gold_end, strict=True):
            ps, pe = pred["start_token"], pred["end_token"]
            overlap = max(0, min(pe, ge) - max(ps, gs) + 1)
            exact.append(float(ps == gs and pe == ge))
            if overlap == 0:
                f1.append(0.0)
            else:
                p, r = overlap / (pe - ps + 1), overlap / (ge - gs + 1)
                f1.append(2 * p * r / (p + r))
        return {
            "span_exact": 100 * float(np.mean(exact)),
            "span_f1": 100 * float(np.mean(f1)),
            "n_windows": len(f1),
        }

    def trainer_metrics(self) -> Any:
        return lambda p: self.compute_metrics(p.predictions, p.label_ids)

    # -- question-level evaluation and prediction ------------------------------------------------
    def answer(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        encoded: Any | None = None,
        batch_size: int = 64,
        progress: bool = False,
    ) -> list[dict[str, Any]]:
        """{"answer", "score", "start", "end"} per question (offsets are context characters)."""
        if encoded is None:
            encoded = self.tokenize(dataset, tokenizer)
        logits = window_logits(model, encoded, self.collator(tokenizer), batch_size, progress)
        o = self.options
        return decode_all(
            dataset["context"],
            encoded,
            logits,
            encoded["null_token"],
            o.n_best,
            o.max_answer_length,
            o.version_2_with_negative,
            o.null_score_threshold,
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
        preds = self.answer(model, tokenizer, dataset, encoded, batch_size, progress)
        golds = [a["text"] for a in dataset["answers"]]
        metrics = squad_scores([p["answer"] for p in preds], golds)
        if self.options.version_2_with_negative:
            for name, keep in (("has_answer", True), ("no_answer", False)):
                idx = [i for i, g in enumerate(golds) if bool(g) == keep]
                part = squad_scores([preds[i]["answer"] for i in idx], [golds[i] for i in idx])
                metrics.update({f"{name}_{k}": v for k, v in part.items()})
        return metrics

    def predict(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        batch_size: int = 64,
        progress: bool = False,
    ) -> list[dict[str, Any]]:
        return self.answer(model, tokenizer, dataset, None, batch_size, progress)
