"""Prompt tuning (Lester et al., 2021): a few learned input embeddings ("soft prompt") are
prepended to every input; the backbone stays frozen. Via peft; see virtual_tokens.py for how the
virtual tokens stay out of the task head's way."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import StrategyOptions
from tunewise.strategies.advisor_facts import SW, SW1, AdvisorFacts
from tunewise.strategies.virtual_tokens import VirtualTokenStrategy


class PromptTuningOptions(StrategyOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["prompt_tuning"] = "prompt_tuning"
    # length of the soft prompt; None: 4 for tasks with a head of their own (classification,
    # NER, QA, multiple choice: the head does most of the work), 20 for generative tasks
    num_virtual_tokens: int | None = Field(None, gt=0)
    # Initialise the prompt from the embeddings of this text (Lester et al.: better than random
    # for small models); None: random.
    init_text: str | None = None


class PromptTuningStrategy(VirtualTokenStrategy):
    name = "prompt_tuning"
    Options = PromptTuningOptions
    summary = "a learned soft prompt of virtual input tokens; the head trains fully"
    # Lester et al. used 0.3 with Adafactor; with AdamW peft's examples use 3e-2.
    base_learning_rate = 3e-2
    # Where the task trains a head of its own the head does most of the work: 4 virtual tokens
    # train 1.2-1.3x faster than full fine-tuning per real token, where 20 ran at 0.64x, and were
    # no less accurate on either held-out half (SST-2, minilm, 3 seeds; docs/speed.md).
    tokens_with_head = 4
    advisor = AdvisorFacts(
        # peft_prompt_length(_seeds).json: 4 tokens beside full, 3 seeds, both dev halves
        # (20 tokens were -9.0 in sweep_sst2_4000.json)
        prior=-4.3,
        short_prior=-1.5,  # short_prior.json (3 seeds): its head trains at the prompt's large rate
        # sweep_sst2_1000.json: 79.1 over 2.5x longer sequences, per real + virtual token
        activation_factor=54.0,
        flops_factor=4.0,  # forward 2N + activation gradients 2N down to the prompt
        virtual_tokens=20,  # the sweeps' length; the advisor costs the task's default length
        prepends_tokens=True,
        family="prompt",
        source=f"{SW}; {SW1} (activation factor); MFU not measured",
    )

    def peft_config(self, base: nn.Module, num_virtual_tokens: int) -> Any:
        from peft import PromptTuningConfig, PromptTuningInit, TaskType

        text = self.options.init_text
        return PromptTuningConfig(
            task_type=TaskType.FEATURE_EXTRACTION,
            num_virtual_tokens=num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.TEXT if text else PromptTuningInit.RANDOM,
            prompt_tuning_init_text=text,
            tokenizer_name_or_path=base.config.name_or_path if text else None,
        )
