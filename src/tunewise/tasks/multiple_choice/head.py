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

from tunewise.tasks.heads import BackboneHead, head_linear, pool

HEAD_MODULES = ["scorer"]


class ChoiceScorer(BackboneHead):
    """backbone → pooling → dropout → linear(hidden, 1), one score per candidate."""

    def __init__(self, backbone: nn.Module, pooling: str) -> None:
        super().__init__(backbone)
        self.pooling = pooling
        self.scorer = head_linear(backbone.config.hidden_size, 1)

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
        mask = attention_mask.reshape(n * c, length)[present]
        types = None if token_type_ids is None else token_type_ids.reshape(n * c, length)[present]
        hidden = self.token_states(input_ids.reshape(n * c, length)[present], mask, types)
        pooled = pool(hidden, mask, self.pooling)
        scores = self.scorer(self.dropout(pooled)).squeeze(-1)
        logits = torch.full((n * c,), torch.finfo(scores.dtype).min, dtype=scores.dtype)
        logits = logits.to(scores.device).masked_scatter(present, scores).reshape(n, c)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return MultipleChoiceModelOutput(loss=loss, logits=logits)
