"""What every strategy shares: the interface, parameter accounting, block discovery.

A strategy receives a task model whose head modules are named (e.g. `classifier`), decides which
parameters train (freezing, or wrapping with peft), and says which learning rate suits it. The
trainer never asks which strategy it runs.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from torch import nn

from tunewise.config import StrategyOptions
from tunewise.errors import ConfigError
from tunewise.strategies.advisor_facts import AdvisorFacts


@dataclass
class ParamReport:
    trainable: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / max(self.total, 1)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "percent": round(self.percent, 4)}

    def __str__(self) -> str:
        return f"trainable params: {self.trainable:,} / {self.total:,} ({self.percent:.2f}%)"


def count_parameters(model: nn.Module) -> ParamReport:
    """Trainable vs. total parameters; shared (tied) tensors count once."""
    seen: set[int] = set()
    trainable = total = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return ParamReport(trainable, total)


def set_trainable(model: nn.Module, trainable: bool) -> None:
    for p in model.parameters():
        p.requires_grad_(trainable)


def train_heads(model: nn.Module, head_modules: list[str]) -> None:
    """The task head always trains: it starts from random weights."""
    for name in head_modules:
        set_trainable(model.get_submodule(name), True)


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The stack of transformer blocks: the ModuleList of same-typed modules holding most weights.

    Works without per-architecture tables: BERT's `encoder.layer`, LLaMA's `layers`, GPT-2's `h`.
    """
    best: tuple[str, nn.ModuleList] | None = None
    best_size = -1
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) < 1:
            continue
        if len({type(m) for m in module}) != 1:
            continue
        size = sum(p.numel() for p in module.parameters())
        if size > best_size:
            best, best_size = (name, module), size
    if best is None:
        raise ConfigError(
            f"Could not find the transformer blocks of {type(model).__name__}: no ModuleList of "
            "identical blocks. Use strategy 'full' or 'frozen' for this model."
        )
    return best


class Strategy(ABC):
    """Base class: subclasses set `name`, `Options`, learning-rate defaults and `apply`."""

    name: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]]
    summary: ClassVar[str] = ""
    # Learning rate that suits this strategy for a run of >= `lr_reference_steps` optimizer
    # steps. Shorter runs get a larger rate (√ of the step ratio, capped at `lr_max_scale`):
    # with few steps the learning rate dominates (see docs/strategies.md).
    base_learning_rate: ClassVar[float]
    lr_max_scale: ClassVar[float] = 3.0
    lr_reference_steps: ClassVar[int] = 4000
    # What the advisor knows about this strategy (measured numbers, each with its source). The
    # default declares nothing, and the advisor says so in its reasons.
    advisor: ClassVar[AdvisorFacts] = AdvisorFacts()
    # training.packing puts a batch's examples in one row; strategies that add inputs per row
    # (virtual tokens) cannot share them.
    supports_packing: ClassVar[bool] = True

    def __init__(self, options: StrategyOptions) -> None:
        self.options = options
        self.details: dict[str, Any] = {}  # what apply() decided, for the manifest

    @classmethod
    def reference_learning_rates(cls) -> tuple[float, ...]:
        """Every rate `reference_learning_rate` may return (tune's default space spans them)."""
        return (cls.base_learning_rate,)

    def reference_learning_rate(self) -> float:
        """The rate for a run of `lr_reference_steps`; a strategy whose rate depends on what
        `apply` found (a task head or not) overrides this."""
        return self.base_learning_rate

    def default_learning_rate(self, total_steps: int) -> float:
        scale = math.sqrt(self.lr_reference_steps / max(total_steps, 1))
        scale = min(max(scale, 1.0), self.lr_max_scale)
        return float(f"{self.reference_learning_rate() * scale:.3g}")

    @classmethod
    def default_search_space(cls) -> dict[str, dict[str, Any]]:
        """`tunewise tune`'s space when the config has no `tune.space` (config key path →
        distribution): the learning rate from a third of this strategy's reference rate to
        three times its largest short-run rate, and the batch size. Strategies add their own
        capacity knob (LoRA rank, adapter width, ...)."""
        rates = cls.reference_learning_rates()
        return {
            "training.learning_rate": {
                "type": "loguniform",
                "low": float(f"{min(rates) / 3:.3g}"),
                "high": float(f"{max(rates) * cls.lr_max_scale * 3:.3g}"),
            },
            "training.batch_size": {"type": "categorical", "choices": [16, 32, 64]},
        }

    @abstractmethod
    def apply(self, model: nn.Module, head_modules: list[str]) -> nn.Module:
        """Make exactly the intended parameters trainable; return the module to train."""

    # -- hooks with defaults; strategies override what differs (see docs/strategies.md) --------
    @classmethod
    def incompatible(cls, task_cls: type) -> str | None:
        """Why this strategy cannot train tasks of `task_cls` (None: it can). Decided from the
        task's traits (`token_level`, `generative`, `auto_model`, `head_modules`), so the
        strategy × task matrix follows whatever is registered. Checks that need the real model
        (e.g. BitFit on a backbone without biases) happen in `apply`."""
        return None

    @classmethod
    def resolve_options(cls, options: Any, task_cls: type) -> Any:
        """The options with any default that depends on the task filled in (config validation
        calls this, so the run's saved config holds the value used)."""
        return options

    @classmethod
    def virtual_tokens_for(cls, task_cls: type) -> int:
        """Virtual tokens this strategy adds per example with its defaults (the advisor's cost)."""
        return cls.advisor.virtual_tokens

    @classmethod
    def flops_factor(cls, options: dict[str, Any] | None, layers: int) -> float | None:
        """Matmul FLOPs per token / non-embedding parameters (None: not calibrated)."""
        return cls.advisor.flops_factor

    def load_kwargs(self) -> dict[str, Any]:
        """Extra `from_pretrained` arguments for the base model (QLoRA: 4-bit quantisation)."""
        return {}

    def callbacks(self) -> list[Any]:
        """Trainer callbacks the strategy needs while training (diff pruning's schedule)."""
        return []

    def merge(self, model: nn.Module) -> nn.Module:
        """The trained model with the strategy's additions folded into plain weights, so it runs
        without tunewise or peft. Default: the trained tensors already are the model's weights
        (full, partial, frozen, BitFit), so there is nothing to fold."""
        return model
