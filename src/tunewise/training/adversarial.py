"""Adversarial training on the input embeddings, as a Trainer hook (`training_step`).

`training.adversarial: {method: fgm|pgd|freelb, epsilon, alpha, steps}`. A forward hook on the
model's word-embedding module adds a perturbation δ (batch, tokens, hidden) to its output, so it
works whether or not the embedding matrix trains (LoRA, prompt tuning, full...). The weights are
never touched: removing the hook restores the clean model exactly.

- FGM (Miyato et al. 2017, "Adversarial Training Methods for Semi-Supervised Text
  Classification"): δ = ε·g/‖g‖ from the clean step's gradient g; the update uses the clean and
  the adversarial gradient.
- PGD (Madry et al. 2018): `steps` ascent steps of size α·g/‖g‖, projected onto the ε-ball; the
  update uses the clean and the last adversarial gradient.
- FreeLB (Zhu et al. 2020, ICLR): the same ascent, with the parameter gradient of every step
  accumulated (each scaled by 1/steps) on top of the clean one.
Norms are per example (L2 over tokens × hidden). No library implements these for an arbitrary
HF model inside Trainer, so they are written here (each is a few lines).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def input_embeddings(model: nn.Module) -> nn.Module:
    """The word-embedding module of the (possibly task-wrapped, peft-wrapped) transformer."""
    from transformers import PreTrainedModel

    for module in model.modules():
        if isinstance(module, PreTrainedModel):
            return module.get_input_embeddings()
    raise TypeError(f"{type(model).__name__} holds no transformers model with input embeddings")


def _unit(g: torch.Tensor) -> torch.Tensor:
    """g scaled to unit L2 norm per example."""
    norm = g.flatten(1).norm(dim=1).clamp(min=1e-12)
    return g / norm.view(-1, *([1] * (g.dim() - 1)))


def _project(delta: torch.Tensor, epsilon: float) -> torch.Tensor:
    norm = delta.flatten(1).norm(dim=1).clamp(min=1e-12)
    scale = (epsilon / norm).clamp(max=1.0)
    return delta * scale.view(-1, *([1] * (delta.dim() - 1)))


@contextmanager
def perturbed(module: nn.Module, delta: torch.Tensor | None) -> Iterator[dict[str, Any]]:
    """While active, `module`'s output gets `delta` added (a zero leaf when `delta` is None, so
    the clean pass records d loss / d embeddings in `state["delta"].grad`)."""
    state: dict[str, Any] = {"delta": delta}

    def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        if state["delta"] is None:
            state["delta"] = torch.zeros_like(output, requires_grad=True)
        return output + state["delta"].to(output.dtype)

    handle = module.register_forward_hook(hook)
    try:
        yield state
    finally:
        handle.remove()


class AdversarialMixin:
    """Trainer mixin: one clean step plus the configured attack's steps, all through the
    Trainer's own `training_step` (loss scaling, accumulation, mixed precision unchanged).
    The returned (and logged) `loss` is the clean one; `adversarial_loss` is logged beside it."""

    adversarial: Any = None  # AdversarialConfig | None, set by TunewiseTrainer
    _adv_losses: list[float]
    _adv_scale: float = 1.0
    _adv_pass: bool = False

    def training_step(self, model: nn.Module, inputs: dict[str, Any], *args: Any, **kw: Any):
        cfg = self.adversarial
        if cfg is None:
            return super().training_step(model, inputs, *args, **kw)  # type: ignore[misc]
        embeddings = input_embeddings(model)
        with perturbed(embeddings, None) as clean_state:
            clean = super().training_step(model, inputs, *args, **kw)  # type: ignore[misc]
        grad = clean_state["delta"].grad
        if grad is None:  # nothing reached the embeddings (e.g. a frozen, detached input)
            return clean
        ga = getattr(self, "current_gradient_accumulation_steps", 1) or 1
        self._adv_pass = True
        try:
            if cfg.method == "fgm":
                delta = (cfg.epsilon * _unit(grad)).detach()
                adv = self._adv_step(model, embeddings, delta, inputs, args, kw)[0]
            elif cfg.method == "pgd":
                # `steps` - 1 ascent steps from δ = 0; the first reuses the clean pass's gradient
                # (the gradient at δ = 0), which saves one forward and backward per training step
                delta = torch.zeros_like(grad)
                if cfg.steps > 1:
                    delta = _project(cfg.alpha * _unit(grad), cfg.epsilon).detach()
                for _ in range(cfg.steps - 2):
                    delta = self._ascend(model, embeddings, delta, inputs, cfg)
                adv = self._adv_step(model, embeddings, delta, inputs, args, kw)[0]
            else:  # freelb
                delta, total = torch.zeros_like(grad), 0.0
                grad_step = grad
                self._adv_scale = 1.0 / cfg.steps
                for _ in range(cfg.steps):
                    delta = _project(delta + cfg.alpha * _unit(grad_step), cfg.epsilon).detach()
                    loss, grad_step = self._adv_step(model, embeddings, delta, inputs, args, kw)
                    total += float(loss) * cfg.steps
                    if grad_step is None:
                        break
                adv = total / cfg.steps
        finally:
            self._adv_pass, self._adv_scale = False, 1.0
        self._adv_losses = [*getattr(self, "_adv_losses", []), float(adv) * ga]
        return clean

    def _adv_step(
        self, model: nn.Module, embeddings: nn.Module, delta: torch.Tensor, inputs, args, kw
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A full Trainer step (forward + backward into the parameters) on perturbed inputs."""
        delta = delta.detach().requires_grad_(True)
        with perturbed(embeddings, delta):
            loss = super().training_step(model, inputs, *args, **kw)  # type: ignore[misc]
        return loss, delta.grad

    def _ascend(
        self, model: nn.Module, embeddings: nn.Module, delta: torch.Tensor, inputs, cfg
    ) -> torch.Tensor:
        """One PGD ascent step: the gradient w.r.t. δ only (parameters' gradients untouched)."""
        delta = delta.detach().requires_grad_(True)
        with perturbed(embeddings, delta), self.compute_loss_context_manager():  # type: ignore[attr-defined]
            loss = self.compute_loss(model, self._prepare_inputs(inputs))  # type: ignore[attr-defined]
        (g,) = torch.autograd.grad(loss, delta)
        return _project(delta + cfg.alpha * _unit(g), cfg.epsilon).detach()

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], *args: Any, **kw: Any):
        """FreeLB's 1/steps weight on each ascent step's loss (1 otherwise)."""
        out = super().compute_loss(model, inputs, *args, **kw)  # type: ignore[misc]
        if self._adv_scale == 1.0:
            return out
        if isinstance(out, tuple):
            return (out[0] * self._adv_scale, *out[1:])
        return out * self._adv_scale

    def log(self, logs: dict[str, float], *args: Any, **kw: Any) -> None:
        losses = getattr(self, "_adv_losses", [])
        if "loss" in logs and losses:
            logs["clean_loss"] = logs["loss"]
            logs["adversarial_loss"] = round(sum(losses) / len(losses), 4)
            self._adv_losses = []
        super().log(logs, *args, **kw)  # type: ignore[misc]
