"""Diff pruning (Guo et al., 2021): learn a task-specific *difference* δ on top of the frozen
pretrained weights of every block, and keep only a sparse δ.

Guo et al. learn the sparsity with a relaxed-L0 mask; here δ is pruned by global magnitude to a
target density on a cubic schedule (Zhu & Gupta, 2017), which needs no extra parameters and
reaches the target exactly. δ lives in a `torch.nn.utils.parametrize` parametrization (weight =
W + δ·mask), so no model code changes; the pruning schedule is a Trainer callback. The run saves
only δ's non-zero entries (indices + values) and reports the density it achieved.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import ConfigDict, Field
from torch import nn
from torch.nn.utils import parametrize

from tunewise.config import StrategyOptions
from tunewise.strategies.advisor_facts import SW, SW1, AdvisorFacts
from tunewise.strategies.base import Strategy, find_blocks, set_trainable, train_heads


class DiffPruningOptions(StrategyOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["diff_pruning"] = "diff_pruning"
    density: float = Field(0.005, gt=0, le=1)  # fraction of δ kept (Guo et al.: 0.5%)
    # Pruning starts and ends at these fractions of training; it then holds the target.
    start: float = Field(0.1, ge=0, lt=1)  # pruning starts (share of training)
    end: float = Field(0.7, gt=0, le=1)  # pruning reaches the density
    every_steps: int = Field(10, gt=0)  # how often the mask is recomputed
    include: Literal["weights", "all"] = "weights"  # matrices only, or biases and norms too


class Delta(nn.Module):
    """weight = W + δ·mask. `export_trained` / `import_trained` store δ sparsely (artifacts.py
    calls them instead of saving δ densely)."""

    def __init__(self, like: torch.Tensor) -> None:
        super().__init__()
        self.delta = nn.Parameter(torch.zeros_like(like))
        self.register_buffer("mask", torch.ones_like(like, dtype=torch.bool))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.delta * self.mask

    def export_trained(self, prefix: str) -> dict[str, torch.Tensor]:
        kept = (self.delta.detach() * self.mask).flatten()
        index = kept.nonzero().flatten()
        return {
            f"{prefix}delta.index": index.to(torch.int32).cpu(),
            f"{prefix}delta.values": kept[index].cpu().contiguous(),
        }

    def import_trained(self, prefix: str, state: dict[str, torch.Tensor]) -> None:
        index = state[f"{prefix}delta.index"].long()
        flat = torch.zeros(self.delta.numel(), dtype=self.delta.dtype)
        flat[index] = state[f"{prefix}delta.values"].to(self.delta.dtype)
        with torch.no_grad():
            self.delta.copy_(flat.view_as(self.delta))
            self.mask.copy_((flat != 0).view_as(self.mask))


def deltas(model: nn.Module) -> list[Delta]:
    return [m for m in model.modules() if isinstance(m, Delta)]


def prune(model: nn.Module, density: float) -> float:
    """Keep the `density` fraction of δ entries largest in magnitude (globally); returns the
    density achieved (exact up to ties)."""
    parts = deltas(model)
    total = sum(d.delta.numel() for d in parts)
    keep = max(1, round(density * total))
    with torch.no_grad():
        magnitudes = torch.cat([(d.delta * d.mask).abs().flatten() for d in parts])
        if keep < total:
            threshold = torch.topk(magnitudes, keep, sorted=True).values[-1]
            for d in parts:
                d.mask &= (d.delta.abs() >= threshold) & (d.delta != 0)
        for d in parts:
            d.delta.mul_(d.mask)
    return achieved_density(model)


def achieved_density(model: nn.Module) -> float:
    parts = deltas(model)
    nonzero = sum(int(((d.delta * d.mask) != 0).sum()) for d in parts)
    return nonzero / max(1, sum(d.delta.numel() for d in parts))


def scheduled_density(target: float, progress: float, start: float, end: float) -> float:
    """Cubic decay from 1 to `target` between `start` and `end` (fractions of training)."""
    if progress <= start:
        return 1.0
    if progress >= end:
        return target
    t = (progress - start) / (end - start)
    return target + (1.0 - target) * (1.0 - t) ** 3


def pruning_callback(strategy: DiffPruningStrategy) -> Any:
    from transformers import TrainerCallback

    class DiffPruningCallback(TrainerCallback):
        """Prune δ on the schedule; at the end (after the best checkpoint is reloaded) prune to
        the target exactly and record the achieved density."""

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **_: Any):
            o = strategy.options
            if model is None or state.global_step % o.every_steps:
                return
            progress = state.global_step / max(state.max_steps, 1)
            prune(model, scheduled_density(o.density, progress, o.start, o.end))

        def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **_: Any):
            if model is not None:
                strategy.details["achieved_density"] = round(
                    prune(model, strategy.options.density), 6
                )

    return DiffPruningCallback()


class DiffPruningStrategy(Strategy):
    name = "diff_pruning"
    Options = DiffPruningOptions
    summary = "a sparse learned difference on the block weights (magnitude-pruned) + head"
    base_learning_rate = 1e-4  # δ moves pretrained weights, like full fine-tuning
    advisor = AdvisorFacts(
        prior=-1.0,  # sweep_sst2_4000.json
        short_prior=-14.4,  # short_prior.json (3 seeds): δ pruned to 0.5% before it learns much
        flops_factor=4.0,  # forward 2N + activation gradients 2N (δ gradients are elementwise)
        family="reparam",
        source=f"{SW}; {SW1}; memory and MFU not measured",
    )

    def apply(self, model: nn.Module, head_modules: list[str]) -> nn.Module:
        _, blocks = find_blocks(model)
        set_trainable(model, False)
        n = 0
        for module in list(blocks.modules()):
            for pname, param in list(module.named_parameters(recurse=False)):
                if self.options.include == "weights" and param.dim() < 2:
                    continue
                parametrize.register_parametrization(module, pname, Delta(param.detach()))
                n += param.numel()
        train_heads(model, head_modules)
        self.details = {"delta_entries": n, "target_density": self.options.density}
        return model

    def callbacks(self) -> list[Any]:
        return [pruning_callback(self)]

    def merge(self, model: nn.Module) -> nn.Module:
        """W + δ·mask written into each weight; the parametrizations removed."""
        for module in list(model.modules()):
            if parametrize.is_parametrized(module):
                for pname in list(module.parametrizations):
                    parametrize.remove_parametrizations(module, pname, leave_parametrized=True)
        return model
