"""Causal-LM loss on the positions that carry loss only, projected onto the vocabulary in chunks.

A transformers causal LM projects every position onto the vocabulary (49,152 words for SmolLM2)
and keeps those fp32 logits for the backward pass, although answer-only training throws away
every prompt and padding row. Here the model runs with its output head swapped for the identity,
so its "logits" are the final hidden states; the states at positions whose next token carries a
label are gathered, and only those go through the real head, in chunks: with the head frozen (LoRA
and the other PEFT strategies) each chunk's gradient is taken in the same loop and its logits
dropped; with a trainable head the chunks' logits are recomputed in the backward pass instead of
kept. No (tokens x vocabulary) tensor exists at any time, and the
head's FLOPs (about a fifth of a 135M model's) are spent on answer tokens alone.

Hand-written: transformers' `logits_to_keep` keeps one set of sequence positions shared by every
row, and Liger's fused linear cross-entropy needs a GPU (Triton).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from tunewise.inference.batches import IGNORE

# Answer positions projected at once: 256 x 49k fp32 logits are 50 MB, and their backward pass
# (logits, log-softmax, gradient) 150 MB at the step's memory peak; 1,024 held 600 MB there.
CHUNK = 256
# Config attributes of models that post-process their logits (soft-capping, scaling): the hidden
# states cannot stand in for them, so those models keep transformers' own loss.
LOGIT_POSTPROCESSING = ("final_logit_softcapping", "logit_scale", "logits_scaling")


def _output_head(model: nn.Module) -> tuple[nn.Module, str, nn.Module] | None:
    """(parent module, attribute name, head) of a causal LM's output projection, or None."""
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    if head is None:
        return None
    for parent in model.modules():
        for name, child in parent.named_children():
            if child is head:
                return parent, name, head
    return None


def supports_position_loss(model: nn.Module) -> bool:
    """True when the model's logits are its output head applied to its final hidden states."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    if any(getattr(config, key, None) not in (None, 1.0) for key in LOGIT_POSTPROCESSING):
        return False
    return _output_head(model) is not None


@contextmanager
def hidden_states_as_logits(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block the model's output head is the identity; yields the real head."""
    found = _output_head(model)
    if found is None:
        raise ValueError(f"{type(model).__name__} has no output head to swap")
    parent, name, head = found
    setattr(parent, name, nn.Identity())
    try:
        yield head
    finally:
        setattr(parent, name, head)


def _nll_sum(head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(head(hidden).float(), targets, reduction="sum")


class _FrozenHeadNll(torch.autograd.Function):
    """The summed NLL through a frozen head, chunk by chunk, with its gradient w.r.t. the states
    computed in the same loop (as Liger's fused linear cross-entropy does on GPU): no chunk's
    logits outlive their iteration, and the backward pass only scales the kept gradient, so
    nothing is recomputed (recomputing the chunks cost ~9% of a smollm2 LoRA step)."""

    @staticmethod
    def forward(ctx: Any, states: torch.Tensor, head: nn.Module, targets, chunk: int):
        grads = torch.empty_like(states)
        total = states.new_zeros((), dtype=torch.float32)
        with torch.enable_grad():
            for start in range(0, len(targets), chunk):
                part = states[start : start + chunk].detach().requires_grad_(True)
                loss = _nll_sum(head, part, targets[start : start + chunk])
                (grads[start : start + chunk],) = torch.autograd.grad(loss, part)
                total += loss.detach()
        ctx.save_for_backward(grads)
        return total

    @staticmethod
    def backward(ctx: Any, grad_total: torch.Tensor):
        (grads,) = ctx.saved_tensors
        return grads * grad_total.to(grads.dtype), None, None, None


def causal_nll(
    model: nn.Module, inputs: dict[str, Any], labels: torch.Tensor, chunk: int = CHUNK
) -> tuple[torch.Tensor, int]:
    """Summed next-token NLL over the labelled positions, and their count.

    `labels` are aligned with `input_ids` (position t + 1's label is what position t predicts);
    IGNORE marks prompt, padding and the first token of each packed example.
    """
    with hidden_states_as_logits(model) as head:
        hidden = model(**inputs).logits
    keep = labels[:, 1:] != IGNORE
    states, targets = hidden[:, :-1][keep], labels[:, 1:][keep]
    training = torch.is_grad_enabled() and states.requires_grad
    if training and not any(p.requires_grad for p in head.parameters()):
        return _FrozenHeadNll.apply(states, head, targets, chunk), len(targets)
    total = hidden.new_zeros((), dtype=torch.float32)
    recompute = training and len(targets) > chunk
    for start in range(0, len(targets), chunk):
        part = (head, states[start : start + chunk], targets[start : start + chunk])
        if recompute:  # keep no chunk's logits: recompute them in the backward pass
            total = total + checkpoint(_nll_sum, *part, use_reentrant=False)
        else:
            total = total + _nll_sum(*part)
    return total, len(targets)


class AnswerOnlyLoss:
    """The Trainer's loss for causal-LM tasks: mean NLL over answer tokens (over the whole
    accumulated batch when the Trainer counts them, as transformers' own causal loss does, or
    over the epoch's mean per step: `training.loss_normalization`, `TunewiseTrainer`)."""

    @staticmethod
    def tokens(labels: Any) -> int:
        """Positions that carry loss in unshifted causal-LM labels (a row's first never does),
        counted as the Trainer counts `num_items_in_batch`."""
        return sum(sum(1 for t in row[1:] if t != IGNORE) for row in labels)

    def __call__(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        inputs["use_cache"] = False  # no KV cache in training (and packed masks need none)
        total, count = causal_nll(model, inputs, labels)
        if num_items_in_batch is not None:
            return total / num_items_in_batch
        return total / max(count, 1)
