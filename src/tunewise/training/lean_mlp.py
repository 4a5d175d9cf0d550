"""Gated MLPs that keep two tensors for the backward pass instead of four.

LLaMA-style blocks compute `down(act(gate(x)) * up(x))`. Autograd keeps `gate`, `act(gate)`,
`up` and the product for the backward pass: four (tokens × intermediate) tensors per block,
~40% of what a smollm2 training step holds. The backward needs only `gate` and `up`: the other
two are one elementwise pass away, and the down projection's input gradient goes through its
weight, not its input. `training.recompute_mlp` (default on) runs `act(gate) * up` and the down
projection (frozen, frozen with a LoRA update, or trainable) as one autograd node that keeps
`gate` and `up` and recomputes the rest in backward: no matmul is repeated. Modules are matched
by their forward's code (transformers copies LlamaMLP's into Mistral, Qwen2/3, Gemma and
others), swapped in for `trainer.train` only, and anything else (dropout on the LoRA path,
several adapters, autocast, quantized layers) runs the module's own forward. Hand-written: no
library recomputes part of a module's activations without recomputing its matmuls on CPU.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from tunewise.strategies.lora_fused import FusedLoraLinear, b_grad, bottleneck_grad

GATED_FORWARD = "self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))"


class _GatedDownFunction(torch.autograd.Function):
    """y = (act(gate) · up) Wᵀ + b [+ s·((act(gate) · up) Aᵀ) Bᵀ], keeping gate and up."""

    @staticmethod
    def forward(ctx: Any, gate, up, weight, bias, lora_a, lora_b, scaling: float, act: Callable):
        a = act(gate) * up
        a2 = a.reshape(-1, a.shape[-1])
        y = torch.addmm(bias, a2, weight.t()) if bias is not None else a2 @ weight.t()
        h = None
        if lora_a is not None:
            h = a2 @ lora_a.t()
            y.addmm_(h, lora_b.t(), alpha=scaling)
        ctx.save_for_backward(gate, up, weight, lora_a, lora_b, h)
        ctx.scaling, ctx.act = scaling, act
        return y.view(*gate.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx: Any, grad):
        gate, up, weight, lora_a, lora_b, h = ctx.saved_tensors
        needs = ctx.needs_input_grad
        g = grad.reshape(-1, grad.shape[-1])
        with torch.enable_grad():  # the activation again, with its own derivative
            gate_ = gate.detach().requires_grad_(True)
            act = ctx.act(gate_)
        a2 = (act.detach() * up).reshape(-1, up.shape[-1])
        grad_a = g @ weight
        grad_w = g.t() @ a2 if needs[2] else None
        grad_bias = g.sum(0) if needs[3] else None
        grad_lora_a = grad_lora_b = None
        if lora_a is not None:
            gh = bottleneck_grad(g, lora_b, ctx.scaling)
            grad_a.addmm_(gh, lora_a)
            grad_lora_a = gh.t() @ a2 if needs[4] else None
            grad_lora_b = b_grad(g, h, ctx.scaling) if needs[5] else None
        grad_a = grad_a.view(up.shape)
        grad_up = grad_a * act.detach() if needs[1] else None
        grad_gate = None
        if needs[0]:
            (grad_gate,) = torch.autograd.grad(act, gate_, grad_a * up)
        return grad_gate, grad_up, grad_w, grad_bias, grad_lora_a, grad_lora_b, None, None


def _down_parts(down: nn.Module, x: torch.Tensor) -> tuple[Any, ...] | None:
    """(weight, bias, A, B, scaling) of the down projection, or None where it is not a plain
    linear layer (with at most one plain LoRA update) of x's dtype."""
    if isinstance(down, FusedLoraLinear):
        return down._fused_parts(x)
    if type(down) is nn.Linear and down.weight.dtype == x.dtype:
        return down.weight, down.bias, None, None, 0.0
    return None


def lean_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The gated MLP's forward with the backward above, or its own forward where it does not
    apply (no gradient needed, autocast, an unsupported down projection)."""
    original = type(module).__bases__[0].forward  # the model's own class
    if not torch.is_grad_enabled() or torch.is_autocast_enabled(x.device.type):
        return original(module, x)
    parts = _down_parts(module.down_proj, x)
    if parts is None:
        return original(module, x)
    gate, up = module.gate_proj(x), module.up_proj(x)
    if gate.dtype != x.dtype or up.dtype != x.dtype:
        return module.down_proj(module.act_fn(gate) * up)
    return _GatedDownFunction.apply(gate, up, *parts, module.act_fn)


def is_gated_mlp(module: nn.Module) -> bool:
    """A module whose forward is LlamaMLP's (matched on its code, so copies count too)."""
    if not all(hasattr(module, n) for n in ("gate_proj", "up_proj", "down_proj", "act_fn")):
        return False
    try:
        source = inspect.getsource(type(module).forward)
    except (OSError, TypeError):
        return False
    return GATED_FORWARD in "".join(source.split()).replace("*", " * ")


_LEAN_CLASSES: dict[type, type] = {}


def _lean_class(cls: type) -> type:
    if cls not in _LEAN_CLASSES:
        _LEAN_CLASSES[cls] = type(f"Lean{cls.__name__}", (cls,), {"forward": lean_forward})
    return _LEAN_CLASSES[cls]


@contextmanager
def recompute_mlp(model: nn.Module, enabled: bool = True) -> Iterator[int]:
    """While active, the model's gated MLPs keep only `gate` and `up` for the backward pass.
    Yields how many modules were swapped; the model is as before afterwards."""
    swapped: list[tuple[nn.Module, type]] = []
    if enabled:
        for module in model.modules():
            if is_gated_mlp(module):
                swapped.append((module, type(module)))
                module.__class__ = _lean_class(type(module))
    try:
        yield len(swapped)
    finally:
        for module, cls in swapped:
            module.__class__ = cls
