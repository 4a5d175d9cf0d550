"""A per-token classification head on top of any transformer backbone.

HF's *ForTokenClassification classes exist per architecture; one module works for every
backbone and names its head `classifier`, the module every strategy trains in full.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import DataCollatorForTokenClassification
from transformers.modeling_outputs import TokenClassifierOutput

from tunewise.tasks.token_align import IGNORE

HEAD_MODULES = ["classifier"]


class TokenClassifier(nn.Module):
    """backbone → dropout → linear on every token; cross-entropy over labelled tokens only."""

    def __init__(self, backbone: nn.Module, num_labels: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_labels = num_labels
        drop = getattr(backbone.config, "hidden_dropout_prob", None) or 0.1
        self.dropout = nn.Dropout(drop)
        self.classifier = nn.Linear(backbone.config.hidden_size, num_labels)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    @property
    def config(self):  # peft and Trainer look for `model.config`
        return self.backbone.config

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_: object,
    ) -> TokenClassifierOutput:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.backbone(**kwargs).last_hidden_state
        logits = self.classifier(self.dropout(hidden))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(
                logits.reshape(-1, self.num_labels), labels.reshape(-1), ignore_index=IGNORE
            )
        return TokenClassifierOutput(loss=loss, logits=logits)


class RightPaddedCollator(DataCollatorForTokenClassification):
    """Pads inputs (and labels with -100) on the right whatever the tokenizer's default, so an
    example's first `length` logits are its own tokens' (decoders often pad on the left)."""

    def torch_call(self, features: list[dict[str, Any]]) -> Any:
        side, self.tokenizer.padding_side = self.tokenizer.padding_side, "right"
        try:
            return super().torch_call(features)
        finally:
            self.tokenizer.padding_side = side
