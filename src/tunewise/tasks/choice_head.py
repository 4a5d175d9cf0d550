"""A candidate scorer for multiple choice / ranking on any transformer backbone.

Every (question, candidate) pair is encoded on its own, pooled to one vector (`heads.pool`) and
mapped to a single score by a linear layer; a softmax over an example's candidates gives the
loss. Batches hold examples with different numbers of candidates: a missing candidate is a row
whose attention mask is all zero. It is never run through the backbone and its score is the
dtype's minimum, so it takes no probability mass and never outranks a real candidate.

HF's *ForMultipleChoice classes exist only for some encoders and use the [CLS] pooler (untrained
in all-MiniLM-L6-v2); this module works for encoders and decoders alike and names its head
`scorer`, so every strategy trains it the same way.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import MultipleChoiceModelOutput

from tunewise.tasks.heads import pool

HEAD_MODULES = ["scorer"]


class ChoiceScorer(nn.Module):
    """backbone → pooling → dropout → linear(hidden, 1), one score per candidate."""

    def __init__(self, backbone: nn.Module, pooling: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        drop = getattr(backbone.config, "hidden_dropout_prob", None) or 0.1
        self.dropout = nn.Dropout(drop)
        self.scorer = nn.Linear(backbone.config.hidden_size, 1)
        nn.init.normal_(self.scorer.weight, std=0.02)
        nn.init.zeros_(self.scorer.bias)

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
    ) -> MultipleChoiceModelOutput:
        """Inputs are (examples, candidates, tokens); logits are (examples, candidates)."""
        n, c, length = input_ids.shape
        present = attention_mask.reshape(n * c, length).any(dim=1)
        kwargs = {
            "input_ids": input_ids.reshape(n * c, length)[present],
            "attention_mask": attention_mask.reshape(n * c, length)[present],
        }
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids.reshape(n * c, length)[present]
        hidden = self.backbone(**kwargs).last_hidden_state
        pooled = pool(hidden, kwargs["attention_mask"], self.pooling)
        scores = self.scorer(self.dropout(pooled)).squeeze(-1)
        logits = torch.full((n * c,), torch.finfo(scores.dtype).min, dtype=scores.dtype)
        logits = logits.to(scores.device).masked_scatter(present, scores).reshape(n, c)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return MultipleChoiceModelOutput(loss=loss, logits=logits)
