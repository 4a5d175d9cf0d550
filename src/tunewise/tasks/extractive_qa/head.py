"""A span head for extractive QA: backbone → linear → start / end logits per token.

Written here rather than using `AutoModelForQuestionAnswering` so that every backbone (encoders
and decoders loaded as the bare `AutoModel`) gets the same head under the same module name,
`qa_outputs`, which strategies treat as "the head" (always trained). The class name contains
"QuestionAnswering" on purpose: HF Trainer then takes `start_positions` / `end_positions` as the
labels and reports an evaluation loss.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import QuestionAnsweringModelOutput

from tunewise.tasks.heads import BackboneHead, head_linear

HEAD_MODULES = ["qa_outputs"]
# Logit given to padding positions: far below any real logit, still finite in half precision.
MASKED_LOGIT = -1e4


class SpanQuestionAnswering(BackboneHead):
    """Start and end logits for each token; loss = mean of the two cross-entropies."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__(backbone, dropout=False)
        self.qa_outputs = head_linear(backbone.config.hidden_size, 2)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
    ) -> QuestionAnsweringModelOutput:
        hidden = self.token_states(input_ids, attention_mask, token_type_ids)
        logits = self.qa_outputs(hidden).float()
        logits = logits.masked_fill(attention_mask.unsqueeze(-1) == 0, MASKED_LOGIT)
        start_logits, end_logits = logits.unbind(dim=-1)
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = (
                nn.functional.cross_entropy(start_logits, start_positions)
                + nn.functional.cross_entropy(end_logits, end_positions)
            ) / 2
        return QuestionAnsweringModelOutput(
            loss=loss, start_logits=start_logits, end_logits=end_logits
        )
