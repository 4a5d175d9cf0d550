"""(IA)³ (Liu et al., 2022, T-Few): learned vectors rescale the attention keys and values and the
feed-forward activations; nothing else in the backbone trains. Via peft.

Targets come from peft's per-architecture table (keyed by the backbone's `model_type`) and are
resolved to full module names inside the transformer blocks, like LoRA's: a target matches a
block-relative name exactly if one does (BERT's `output.dense` is the feed-forward output, not
`attention.output.dense`), else by suffix.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import StrategyOptions
from tunewise.errors import ConfigError
from tunewise.strategies.advisor_facts import SW, SW1, AdvisorFacts
from tunewise.strategies.base import Strategy, find_blocks


class IA3Options(StrategyOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["ia3"] = "ia3"
    # Linear layers whose activations are rescaled (block-relative names or suffixes);
    # None: peft's defaults for the architecture (keys, values, feed-forward output).
    target_modules: list[str] | None = Field(None, min_length=1)
    # Which of the targets are feed-forward layers (their *input* is rescaled).
    feedforward_modules: list[str] | None = None


def match(names: list[str], wanted: list[str]) -> list[str]:
    """Block-relative names selected by `wanted` (exact match preferred over suffix)."""
    out = []
    for target in wanted:
        exact = [n for n in names if n == target]
        out += exact or [n for n in names if n.endswith("." + target)]
    return list(dict.fromkeys(out))


class IA3Strategy(Strategy):
    name = "ia3"
    Options = IA3Options
    summary = "learned rescaling vectors on keys, values and feed-forward activations + head"
    base_learning_rate = 3e-3  # T-Few (Liu et al. 2022) trained (IA)³ at 3e-3
    advisor = AdvisorFacts(
        prior=-1.5,  # sweep_sst2_4000.json (was -4, a guess, before the sweep)
        short_prior=2.3,  # short_prior.json (3 seeds)
        # sweep_sst2_1000.json: 22.5 relative to full's 20 there, scaled to full = 34
        activation_factor=38.0,
        flops_factor=4.0,  # forward 2N + activation gradients 2N
        family="reparam",
        source=f"{SW}; {SW1} (activation factor); MFU not measured",
    )

    def apply(self, model: nn.Module, head_modules: list[str]) -> nn.Module:
        from peft import IA3Config, get_peft_model
        from peft.utils import (
            TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FEEDFORWARD,
        )
        from peft.utils import (
            TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGETS,
        )

        prefix, blocks = find_blocks(model)
        block0 = blocks[0]
        linears = [n for n, m in block0.named_modules() if isinstance(m, nn.Linear)]
        model_type = getattr(getattr(model, "config", None), "model_type", "")
        wanted = self.options.target_modules or TARGETS.get(model_type)
        if not wanted:
            raise ConfigError(
                f"Strategy 'ia3' has no default targets for model type '{model_type}'; set "
                f"strategy.target_modules (the blocks' linear layers are: {', '.join(linears)})."
            )
        targets = match(linears, wanted)
        ff_wanted = self.options.feedforward_modules
        if ff_wanted is None:
            ff_wanted = [] if self.options.target_modules else FEEDFORWARD.get(model_type, [])
        feedforward = match(targets, ff_wanted)
        if not targets:
            raise ConfigError(
                f"strategy.target_modules {wanted} matches no linear layer in {prefix}; the "
                f"blocks' linear layers are: {', '.join(linears)}."
            )
        full = [f"{prefix}.{i}.{t}" for i in range(len(blocks)) for t in targets]
        ff_full = [f"{prefix}.{i}.{t}" for i in range(len(blocks)) for t in feedforward]
        config = IA3Config(
            target_modules=full,
            feedforward_modules=ff_full,
            modules_to_save=list(head_modules),
        )
        self.details = {"target_modules": targets, "feedforward_modules": feedforward}
        return get_peft_model(model, config)

    def merge(self, model: nn.Module) -> nn.Module:
        """Each rescaling vector folded into its layer's weight."""
        return model.merge_and_unload()
