"""P-tuning (Liu et al., 2021, "GPT Understands, Too"): virtual input tokens produced by a small
prompt encoder (MLP or LSTM) over learned embeddings; the backbone stays frozen. Via peft; see
virtual_tokens.py."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import StrategyOptions
from tunewise.strategies.advisor_facts import AdvisorFacts
from tunewise.strategies.virtual_tokens import VirtualTokenStrategy


class PTuningOptions(StrategyOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["p_tuning"] = "p_tuning"
    # length of the soft prompt; None: 4 for tasks with a head of their own (classification,
    # NER, QA, multiple choice), 20 for generative tasks (docs/speed.md)
    num_virtual_tokens: int | None = Field(None, gt=0)
    encoder_type: Literal["MLP", "LSTM"] = "MLP"  # the prompt encoder's architecture
    encoder_hidden_size: int | None = Field(None, gt=0)  # None: the model's hidden size


class PTuningStrategy(VirtualTokenStrategy):
    name = "p_tuning"
    Options = PTuningOptions
    summary = "virtual input tokens from a trained prompt encoder; the head trains fully"
    base_learning_rate = 1e-3  # peft's P-tuning example (RoBERTa, GLUE)
    # Where the task trains a head (at the prompt's rate): 4 virtual tokens at 1e-2 beat 20 at
    # 1e-3 on SST-2's tuning half (2 seeds) and train 1.4x faster per real token (docs/speed.md)
    tokens_with_head = 4
    learning_rate_with_head = 1e-2
    advisor = AdvisorFacts(
        # peft_p_tuning_default.json: 4 tokens at 1e-2 beside full, 3 seeds, both dev halves
        # (20 tokens at 1e-3 were -8.0 in sweep_sst2_4000.json)
        prior=-5.3,
        short_prior=-1.9,  # short_prior.json (3 seeds)
        activation_factor=54.0,  # as prompt tuning (same prepended virtual tokens)
        flops_factor=4.0,  # forward 2N + activation gradients 2N down to the prompt encoder
        virtual_tokens=20,  # the sweeps' length; the advisor costs the task's default length
        prepends_tokens=True,
        family="prompt",
        source=(
            "benchmarks/results/peft_p_tuning_default.json (prior: beside full, 3 seeds); "
            "benchmarks/results/short_prior.json (short prior: 3 seeds); "
            "activation factor taken from prompt tuning; MFU not measured"
        ),
    )

    def peft_config(self, base: nn.Module, num_virtual_tokens: int) -> Any:
        from peft import PromptEncoderConfig, TaskType

        return PromptEncoderConfig(
            task_type=TaskType.FEATURE_EXTRACTION,
            num_virtual_tokens=num_virtual_tokens,
            encoder_reparameterization_type=self.options.encoder_type,
            encoder_hidden_size=self.options.encoder_hidden_size or base.config.hidden_size,
        )
