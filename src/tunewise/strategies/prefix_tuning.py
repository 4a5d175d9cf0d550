"""Prefix tuning (Li & Liang, 2021): learned key/value vectors prepended in every attention
layer; the backbone stays frozen. Via peft; see virtual_tokens.py."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import StrategyOptions
from tunewise.strategies.advisor_facts import SW, SW1, AdvisorFacts
from tunewise.strategies.virtual_tokens import VirtualTokenStrategy


class PrefixTuningOptions(StrategyOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["prefix_tuning"] = "prefix_tuning"
    num_virtual_tokens: int = Field(20, gt=0)  # prefix length per layer
    # Reparametrise the prefix through an MLP while training (Li & Liang: more stable).
    prefix_projection: bool = False
    encoder_hidden_size: int = Field(256, gt=0)  # width of that MLP


class PrefixTuningStrategy(VirtualTokenStrategy):
    name = "prefix_tuning"
    Options = PrefixTuningOptions
    summary = "learned key/value prefixes in every attention layer; the head trains fully"
    prepends = False  # keys and values only: the sequence of hidden states keeps its length
    base_learning_rate = 1e-2  # peft's prefix-tuning examples; no projection by default
    advisor = AdvisorFacts(
        prior=-8.0,  # sweep_sst2_4000.json
        short_prior=-8.1,  # short_prior.json (3 seeds)
        activation_factor=59.0,  # sweep_sst2_1000.json: 34.7 relative to full's 20, scaled
        flops_factor=4.0,  # forward 2N + activation gradients 2N down to the prefixes
        virtual_tokens=20,
        family="prompt",
        source=f"{SW}; {SW1} (activation factor); MFU not measured",
    )

    def peft_config(self, base: nn.Module, num_virtual_tokens: int) -> Any:
        from peft import PrefixTuningConfig, TaskType

        return PrefixTuningConfig(
            task_type=TaskType.FEATURE_EXTRACTION,
            num_virtual_tokens=num_virtual_tokens,
            prefix_projection=self.options.prefix_projection,
            encoder_hidden_size=self.options.encoder_hidden_size,
        )
