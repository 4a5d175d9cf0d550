"""Full fine-tuning: every weight trains. Best accuracy with enough data; most memory."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict
from torch import nn

from tunewise.config import StrategyOptions
from tunewise.strategies.base import Strategy, set_trainable


class FullOptions(StrategyOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["full"] = "full"


class FullStrategy(Strategy):
    name = "full"
    Options = FullOptions
    summary = "all weights train"
    base_learning_rate = 7.5e-5

    def apply(self, model: nn.Module, head_modules: list[str]) -> nn.Module:
        set_trainable(model, True)
        return model
