"""A per-token classification head on top of any transformer backbone.

HF's *ForTokenClassification classes exist per architecture; one module works for every
backbone and names its head `classifier`, the module every strategy trains in full.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import TokenClassifierOutput

from tunewise.inference.batches import IGNORE
from tunewise.tasks.heads import BackboneHead, head_linear

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
