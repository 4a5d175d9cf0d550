"""Full fine-tuning: every weight trains. Best accuracy with enough data; most memory."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict
from torch import nn

from tunewise.config import StrategyOptions
from tunewise.strategies.advisor_facts import SST, SW, SW1, AdvisorFacts
from tunewise.strategies.base import Strategy, set_trainable


class FullOptions(StrategyOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["full"] = "full"


class FullStrategy(Strategy):
    name = "full"
    Options = FullOptions
    summary = "all weights train"
    base_learning_rate = 7.5e-5
    advisor = AdvisorFacts(
        prior=0.0,  # the reference every prior is measured against
        short_prior=0.0,
        activation_factor=34.0,  # sst2.json: (1,956 − 948 − 90 − 271) MB / (2,048 × 6 × 384 × 4 B)
        flops_factor=6.0,  # forward 2N + backward 4N (Kaplan et al. 2020)
        mfu=0.744,  # sst2.json
        family="full",
        source=f"{SST}; {SW}; {SW1}",
    )

    def apply(self, model: nn.Module, head_modules: list[str]) -> nn.Module:
        set_trainable(model, True)
        return model
