"""Frozen features: the pretrained model only encodes; only the task head trains."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict
from torch import nn

from tunewise.config import StrategyOptions
from tunewise.strategies.advisor_facts import SST, SW, SW1, AdvisorFacts
from tunewise.strategies.base import Strategy, set_trainable, train_heads


class FrozenOptions(StrategyOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["frozen"] = "frozen"


class FrozenStrategy(Strategy):
    name = "frozen"
    Options = FrozenOptions
    summary = "only the task head trains (feature extraction)"
    base_learning_rate = 5e-3  # a linear head on fixed features tolerates large steps
    advisor = AdvisorFacts(
        prior=-9.0,  # sweep_sst2_4000.json
        short_prior=1.8,  # short_prior.json (3 seeds): the linear probe converges fast
        activation_factor=0.0,  # nothing below the head keeps activations for a backward pass
        flops_factor=2.0,  # forward only through the backbone (Kaplan et al. 2020)
        mfu=0.573,  # sst2.json
        family="frozen",
        source=f"{SST}; {SW}; {SW1}",
    )

    @classmethod
    def incompatible(cls, task_cls: type) -> str | None:
        if not getattr(task_cls, "head_modules", None):
            return "the task adds no new head, so freezing the pretrained model trains nothing"
        return None

    def apply(self, model: nn.Module, head_modules: list[str]) -> nn.Module:
        set_trainable(model, False)
        train_heads(model, head_modules)
        return model
