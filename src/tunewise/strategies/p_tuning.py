"""P-tuning (Liu et al., 2021, "GPT Understands, Too"): virtual input tokens produced by a small
prompt encoder (MLP or LSTM) over learned embeddings; the backbone stays frozen. Via peft; see
virtual_tokens.py."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import StrategyOptions
from tunewise.strategies.advisor_facts import SW, SW1, AdvisorFacts
from tunewise.strategies.virtual_tokens import VirtualTokenStrategy


class PTuningOptions(StrategyOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["p_tuning"] = "p_tuning"
    # length of the soft prompt: 20 for every task. Shorter prompts ran faster but lost 3.7 (8
    # tokens) and 5.7 points (4) on SST-2's tuning half, where prompt tuning's lost none
    # (docs/speed.md)
    num_virtual_tokens: int = Field(20, gt=0)
    encoder_type: Literal["MLP", "LSTM"] = "MLP"  # the prompt encoder's architecture
    encoder_hidden_size: int | None = Field(None, gt=0)  # None: the model's hidden size


class PTuningStrategy(VirtualTokenStrategy):
    name = "p_tuning"
    Options = PTuningOptions
    summary = "virtual input tokens from a trained prompt encoder; the head trains fully"
    base_learning_rate = 1e-3  # peft's P-tuning example (RoBERTa, GLUE)
    advisor = AdvisorFacts(
        prior=-8.0,  # sweep_sst2_4000.json
        short_prior=-14.8,  # sweep_sst2_1000.json: head at 1e-3, too slow for 8 steps
        activation_factor=54.0,  # as prompt tuning (same prepended virtual tokens)
        flops_factor=4.0,  # forward 2N + activation gradients 2N down to the prompt encoder
        virtual_tokens=20,
        prepends_tokens=True,
        family="prompt",
        source=f"{SW}; {SW1}; activation factor taken from prompt tuning; MFU not measured",
    )

    def peft_config(self, base: nn.Module, num_virtual_tokens: int) -> Any:
        from peft import PromptEncoderConfig, TaskType

        return PromptEncoderConfig(
            task_type=TaskType.FEATURE_EXTRACTION,
            num_virtual_tokens=num_virtual_tokens,
            encoder_reparameterization_type=self.options.encoder_type,
            encoder_hidden_size=self.options.encoder_hidden_size or base.config.hidden_size,
        )
