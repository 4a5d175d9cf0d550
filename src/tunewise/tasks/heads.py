"""A pooled classification head on top of any transformer backbone.

HF's *ForSequenceClassification classes pool differently per architecture (BERT: the [CLS]
pooler, which all-MiniLM-L6-v2 never trained; LLaMA: the last token). One module with an explicit
pooling choice works for every backbone and lets strategies treat "the head" uniformly: it is the
`classifier` submodule, always trained.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

HEAD_MODULES = ["classifier"]


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """One vector per sequence from token states (batch, seq, dim) and the attention mask."""
    if how == "cls":
        return hidden[:, 0]
    if how == "last":  # last real token; works for left and right padding
        positions = torch.arange(mask.shape[1], device=mask.device)
        last = (mask * positions).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def head_linear(in_features: int, out_features: int) -> nn.Linear:
    """A new head layer, initialised as BERT initialises its heads (normal(0, 0.02), zero bias)."""
    layer = nn.Linear(in_features, out_features)
    nn.init.normal_(layer.weight, std=0.02)
    nn.init.zeros_(layer.bias)
    return layer


def drop_pooler(backbone: nn.Module) -> nn.Module:
    """Remove the backbone's [CLS] pooler: every head here reads token states, and an unused
    pooler would only inflate parameter counts (and train under `full`)."""
    if getattr(backbone, "pooler", None) is not None:
        backbone.pooler = None
    return backbone


class BackboneHead(nn.Module):
    """What every task head shares: the backbone (without its unused pooler), the `config` that
    peft and the Trainer look for, a dropout at the backbone's own rate, and the pass from
    inputs to token states."""

    def __init__(self, backbone: nn.Module, dropout: bool = True) -> None:
        super().__init__()
        self.backbone = drop_pooler(backbone)
        if dropout:
            rate = getattr(backbone.config, "hidden_dropout_prob", None) or 0.1
            self.dropout = nn.Dropout(rate)

    @property
    def config(self):  # peft and Trainer look for `model.config`
        return self.backbone.config

    def token_states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.backbone(**kwargs).last_hidden_state


class PooledClassifier(BackboneHead):
    """backbone → pooling → dropout → linear; single-label (softmax) or multi-label (sigmoid)."""

    def __init__(
        self, backbone: nn.Module, num_labels: int, pooling: str, multi_label: bool = False
    ) -> None:
        super().__init__(backbone)
        self.pooling = pooling
        self.multi_label = multi_label
        self.num_labels = num_labels
        self.classifier = head_linear(backbone.config.hidden_size, num_labels)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_: object,
    ) -> SequenceClassifierOutput:
        hidden = self.token_states(input_ids, attention_mask, token_type_ids)
        logits = self.classifier(self.dropout(pool(hidden, attention_mask, self.pooling)))
        loss = None
        if labels is not None:
            if self.multi_label:
                loss = nn.functional.binary_cross_entropy_with_logits(
                    logits, labels.to(logits.dtype)
                )
            else:
                loss = nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)
