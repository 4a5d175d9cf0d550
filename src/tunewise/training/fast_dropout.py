"""Dropout whose masks are cheap to draw on CPU, swapped in for the length of `trainer.train`.

torch draws a CPU dropout mask with one Mersenne-Twister call per element (`bernoulli_`), ~13 ns
each on this machine: 12-18% of a minilm training step went to it (torch.profiler), more than
the layer norms, GELUs and softmaxes together. Here one 64-bit draw gives four 16-bit uniforms
(a 1.2M-element mask: 2.3 ms against 16 ms for `bernoulli_`); an element is dropped when its
uniform falls below round(p·65536), and the kept ones are scaled by 65536 / (65536 − that), so the
layer stays unbiased and the drop rate is p to within 8e-6. The draws come from torch's default
generator, so seeds, and gradient checkpointing's replay of the RNG state, work as before.

Hand-written: torch has no faster CPU dropout. It covers the model's `nn.Dropout` modules (hidden
dropout) and, through transformers' attention registry, dropout on the attention probabilities
of bidirectional (encoder) attention; anything else (CUDA, causal attention, GQA, position
biases) runs transformers' own SDPA, except one more CPU training shortcut the swapped-in
attention takes: grouped-query attention (LLaMA, Qwen, ...) goes to torch's SDPA with
`enable_gqa` instead of through transformers' `repeat_kv` copies, which autograd keeps (smollm2:
3 key/value heads copied to 9, 94 MB of a 4 x 256-token step). Outside `fast_dropout()` the
model is untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

ATTENTION = "tunewise_sdpa"
# what SDPA's math below covers; any other set argument (sliding windows, sinks, ...): SDPA itself
_PLAIN_KWARGS = {"dropout", "scaling", "is_causal", "position_bias", "position_ids"}
_PLAIN_KWARGS |= {"encoder_hidden_states", "output_attentions", "use_cache", "cache_position"}
_SPAN = 65536


def _keep_mask(shape: torch.Size, p: float) -> tuple[torch.Tensor, float]:
    """(bool mask of kept elements, scale of the kept ones) for drop probability p."""
    n = shape.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    uniform = words.view(torch.int16)[:n].view(shape)  # four uniform int16 per draw
    threshold = round(p * _SPAN)
    return uniform >= threshold - _SPAN // 2, _SPAN / (_SPAN - threshold)


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, p: float) -> torch.Tensor:
        keep, scale = _keep_mask(x.shape, p)
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return torch.where(keep, x, 0.0).mul_(scale)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (keep,) = ctx.saved_tensors
        return torch.where(keep, grad, 0.0).mul_(ctx.scale), None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """`F.dropout` with the cheap masks on CPU; torch's own elsewhere."""
    if not training or p == 0:
        return x
    if x.device.type != "cpu" or not 0 < p < 1:
        return nn.functional.dropout(x, p, training)
    return _Dropout.apply(x, p)


class FastDropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


def attention(module: nn.Module, query, key, value, attention_mask, **kwargs):
    """transformers' SDPA attention, with the cheap masks when encoder attention drops out."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    p = kwargs.get("dropout", 0.0)
    plain = (
        not module.training
        or not p
        or query.device.type != "cpu"
        or getattr(module, "is_causal", False)
        or kwargs.get("is_causal")
        or kwargs.get("position_bias") is not None
        or getattr(module, "num_key_value_groups", 1) > 1
        or key.shape[1] != query.shape[1]
        or _unknown_arguments(kwargs)
    )
    if plain and _native_gqa(module, query, key, kwargs):
        return _gqa_attention(module, query, key, value, attention_mask, **kwargs)
    if plain:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    scaling = kwargs.get("scaling") or query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None and attention_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    elif attention_mask is not None:
        scores = scores + attention_mask
    probs = dropout(scores.softmax(dim=-1), p)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


def _unknown_arguments(kwargs: dict[str, Any]) -> bool:
    """An attention argument set that the paths here do not cover (sliding windows, sinks...)."""
    return any(v is not None for k, v in kwargs.items() if k not in _PLAIN_KWARGS)


def _native_gqa(module: nn.Module, query, key, kwargs: dict[str, Any]) -> bool:
    """Grouped-query attention in CPU training, where transformers would copy each key and value
    head `num_key_value_groups` times (`repeat_kv`) whenever there is a padding mask, and
    autograd would keep the copies: torch's CPU flash kernel takes the groups as they are."""
    return (
        module.training
        and query.device.type == "cpu"
        and getattr(module, "num_key_value_groups", 1) > 1
        and query.shape[2] == key.shape[2] > 1  # no KV cache
        and kwargs.get("position_bias") is None
        and not _unknown_arguments(kwargs)
    )


def _gqa_attention(module: nn.Module, query, key, value, attention_mask, **kwargs):
    """transformers' `sdpa_attention_forward` for the case above, with `enable_gqa`."""
    is_causal = kwargs.get("is_causal")
    is_causal = getattr(module, "is_causal", True) if is_causal is None else is_causal
    out = nn.functional.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=attention_mask,
        dropout_p=kwargs.get("dropout", 0.0),
        scale=kwargs.get("scaling"),
        is_causal=bool(attention_mask is None and is_causal),
        enable_gqa=True,
    )
    return out.transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)


@contextmanager
def fast_dropout(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Within the block: the model's nn.Dropout layers and SDPA encoder attention use the cheap
    masks; after it (also on error) the model is exactly as before."""
    swapped = [m for m in model.modules() if type(m) is nn.Dropout] if enabled else []
    configs = []
    if enabled:
        _register()
        every = {id(m.config): m.config for m in model.modules() if hasattr(m, "config")}
        configs = [c for c in every.values() if getattr(c, "_attn_implementation", "") == "sdpa"]
    for m in swapped:
        m.__class__ = FastDropout  # same state, only forward differs
    for c in configs:
        c._attn_implementation = ATTENTION
    try:
        yield
    finally:
        for m in swapped:
            m.__class__ = nn.Dropout
        for c in configs:
            c._attn_implementation = "sdpa"
