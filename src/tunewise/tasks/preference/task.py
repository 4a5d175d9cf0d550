"""`task: {type: preference, method: dpo|orpo|simpo, beta}`: learn from pairs of answers.

Records hold a prompt and a chosen and a rejected answer (see `data.py`); both conversations are
rendered with the model's chat template and only the answer tokens are scored, exactly as the
other generative tasks encode theirs (`tunewise.tasks.generation.encoding`). Generation
(`predict`) is the generation tasks' own.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from tunewise.config import SplitFile
from tunewise.tasks.generation import encoding
from tunewise.tasks.generation.base import GenerationOptions, GenerationTask
from tunewise.tasks.generation.readers import Row
from tunewise.tasks.preference.data import preference_row, read_preferences

SIDES = ("chosen", "rejected")


class PreferenceOptions(GenerationOptions):
    type: Literal["preference"] = "preference"
    method: Literal["dpo", "orpo", "simpo"] = "dpo"
    # DPO: KL strength; ORPO: weight λ of the odds-ratio term; SimPO: reward scale
    beta: float = Field(0.1, gt=0)
    simpo_gamma: float = Field(0.5, ge=0)  # SimPO's target reward margin γ
    eval_generate_samples: int = Field(0, ge=0)


class PreferenceCollator:
    """Pads the chosen and the rejected side each with transformers' seq2seq collator."""

    def __init__(self, tokenizer: Any) -> None:
        from transformers import DataCollatorForSeq2Seq

        self.pad = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=encoding.IGNORE)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        out = {}
        for side in SIDES:
            keys = ("input_ids", "attention_mask", "labels")
            part = self.pad([{k: r[f"{side}_{k}"] for k in keys} for r in rows])
            out.update({f"{side}_{k}": part[k] for k in keys})
        return out


class PreferenceTask(GenerationTask):
    name = "preference"
    Options = PreferenceOptions
    input_field = "prompt"
    supports_seq2seq = False
    default_metric = "loss"
    headline: ClassVar[tuple[str, ...]] = ("preference_accuracy", "reward_margin")
    predict_fields = ("prompt",)
    # a pair is two rows scored against each other: packing them with other pairs breaks that
    supports_packing = False
    needs_unmerged_adapters = True  # the DPO reference is the model with its adapters disabled

    def loss_module(self, model: nn.Module) -> None:
        return None  # the preference model computes its own (DPO / ORPO / SimPO) loss

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shared: dict[str, Any] = {}

    def state(self) -> dict[str, Any]:
        return dict(self._shared)  # which DPO reference the run used

    def load_state(self, state: dict[str, Any]) -> None:
        self._shared.update(state)

    def read_rows(self, spec: SplitFile, labelled: bool) -> list[Row]:
        return read_preferences(
            spec.path, spec.format, fields=self.options.fields, labelled=labelled
        )

    def normalise(
        self, record: dict[str, Any], where: str, index: int, fields: dict[str, str]
    ) -> Row:
        return preference_row(record, where, index, fields, labelled=False)

    def conversation(self, row: Row, with_answer: bool, side: str = "chosen") -> list[dict]:
        messages = [dict(m) for m in row["messages"]]
        if self.options.system_prompt and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": self.options.system_prompt})
        if with_answer:
            messages.append({"role": "assistant", "content": row[side]})
        return messages

    def answer(self, row: Row) -> str:
        return row["chosen"]

    def build_model(self, backbone: nn.Module) -> nn.Module:
        from tunewise.tasks.preference.model import PreferenceModel

        super().build_model(backbone)  # refuses encoder-decoder models
        return PreferenceModel(backbone, self.options, self._shared)

    def tokenize(self, dataset: Any, tokenizer: Any) -> Any:
        limit = self.model_cfg.max_length

        def encode(row: Row) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for side in SIDES:
                enc = encoding.encode_conversation(
                    tokenizer, self.conversation(row, True, side), limit
                )
                out.update({f"{side}_{k}": v for k, v in enc.items()})
            out["length"] = max(len(out["chosen_input_ids"]), len(out["rejected_input_ids"]))
            return out

        return dataset.map(encode, remove_columns=dataset.column_names, desc="tokenizing")

    def collator(self, tokenizer: Any) -> Any:
        return PreferenceCollator(tokenizer)

    def compute_metrics(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError("preference metrics come from evaluate()")

    @torch.inference_mode()
    def evaluate(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        encoded: Any | None = None,
        batch_size: int = 64,
        progress: bool = True,
    ) -> dict[str, Any]:
        """preference_accuracy (share of pairs whose implicit reward prefers `chosen`),
        reward_margin (mean chosen − rejected reward), loss, and the chosen answers'
        perplexity; plus logprob_accuracy (the chosen answer is likelier per token)."""
        from tunewise.inference.batches import device_of
        from tunewise.training.batching import pack_batches

        if encoded is None:
            encoded = self.tokenize(dataset, tokenizer)
        model.eval()
        device, collate = device_of(model), self.collator(tokenizer)
        columns = [c for c in encoded.column_names if c != "length"]
        rows = encoded.select_columns(columns)
        sums = {"correct": 0.0, "margin": 0.0, "loss": 0.0, "nll": 0.0, "tokens": 0.0, "lp": 0.0}
        for indices in pack_batches(encoded["length"], min(batch_size, 16), seed=None):
            batch = {k: v.to(device) for k, v in collate([rows[i] for i in indices]).items()}
            out = model(**batch)
            c, r = out.chosen_rewards.float(), out.rejected_rewards.float()
            n_c = out.chosen_tokens.float()
            n_r = (batch["rejected_labels"][:, 1:] != encoding.IGNORE).sum(-1).float()
            sums["correct"] += float((c > r).sum())
            sums["margin"] += float((c - r).sum())
            sums["loss"] += float(out.loss) * len(indices)
            sums["nll"] -= float(out.chosen_logps.sum())
            sums["tokens"] += float(n_c.sum())
            avg_c = out.chosen_logps / n_c.clamp(min=1)
            avg_r = out.rejected_logps / n_r.clamp(min=1)
            sums["lp"] += float((avg_c > avg_r).sum())
        n = max(len(encoded), 1)
        nll = sums["nll"] / max(sums["tokens"], 1)
        return {
            "preference_accuracy": sums["correct"] / n,
            "reward_margin": sums["margin"] / n,
            "logprob_accuracy": sums["lp"] / n,
            "loss": sums["loss"] / n,
            "perplexity": float(np.exp(min(nll, 50.0))),
            "n_examples": len(encoded),
        }
