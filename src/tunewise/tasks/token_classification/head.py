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

from tunewise.tasks.heads import BackboneHead, head_linear
from tunewise.tasks.token_classification.align import IGNORE

HEAD_MODULES = ["classifier"]


class TokenClassifier(BackboneHead):
    """backbone → dropout → linear on every token; cross-entropy over labelled tokens only."""

    def __init__(self, backbone: nn.Module, num_labels: int) -> None:
        super().__init__(backbone)
        self.num_labels = num_labels
        self.classifier = head_linear(backbone.config.hidden_size, num_labels)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_: object,
    ) -> TokenClassifierOutput:
        hidden = self.token_states(input_ids, attention_mask, token_type_ids)
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
