"""BitFit (Ben Zaken et al., 2022): only the bias terms of the backbone, plus the head, train."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict
from torch import nn

from tunewise.config import StrategyOptions
from tunewise.errors import ConfigError
from tunewise.strategies.advisor_facts import SST, SW, SW1, AdvisorFacts
from tunewise.strategies.base import Strategy, set_trainable, train_heads


class BitFitOptions(StrategyOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["bitfit"] = "bitfit"


class BitFitStrategy(Strategy):
    name = "bitfit"
    Options = BitFitOptions
    summary = "bias terms and the head train"
    base_learning_rate = 1e-3
    advisor = AdvisorFacts(
        prior=-4.5,  # sweep_sst2_4000.json
        short_prior=-8.3,  # short_prior.json (3 seeds)
        activation_factor=29.0,  # sst2.json
        flops_factor=4.0,  # forward 2N + activation gradients 2N; bias gradients are tiny
        mfu=0.720,  # sst2.json
        family="selective",
        source=f"{SST}; {SW}; {SW1}",
    )

    def apply(self, model: nn.Module, head_modules: list[str]) -> nn.Module:
        set_trainable(model, False)
        biases = [p for n, p in model.named_parameters() if n.endswith(".bias")]
        heads = {id(p) for h in head_modules for p in model.get_submodule(h).parameters()}
        if not [p for p in biases if id(p) not in heads]:
            raise ConfigError(
                f"Strategy 'bitfit' trains bias terms, but {type(model).__name__}'s backbone has "
                "none (LLaMA-style models drop them). Use 'lora' or 'partial' for this model."
            )
        for p in biases:
            p.requires_grad_(True)
        train_heads(model, head_modules)
        return model
