"""Partial fine-tuning: the top N transformer blocks (and what follows them) plus the head."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import StrategyOptions
from tunewise.strategies.advisor_facts import SST, SW, SW1, AdvisorFacts
from tunewise.strategies.base import Strategy, find_blocks, set_trainable, train_heads


class PartialOptions(StrategyOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["partial"] = "partial"
    top_blocks: int = Field(2, gt=0)  # how many of the last transformer blocks train


class PartialStrategy(Strategy):
    name = "partial"
    Options = PartialOptions
    summary = "the top N transformer blocks and the head train"
    base_learning_rate = 1e-4
    advisor = AdvisorFacts(
        prior=-3.0,  # sweep_sst2_4000.json
        short_prior=-2.3,  # short_prior.json (3 seeds)
        activation_factor=27.0,  # sst2.json
        mfu=0.758,  # sst2.json
        family="selective",
        source=f"{SST}; {SW}; {SW1}",
    )

    @classmethod
    def flops_factor(cls, options: dict[str, Any] | None, layers: int) -> float | None:
        """Forward 2N plus backward 4N through the top blocks only (Kaplan et al. 2020)."""
        top = min((options or {}).get("top_blocks", 2), layers)
        return 2 + 4 * top / layers

    @classmethod
    def default_search_space(cls) -> dict[str, Any]:
        top = {"type": "int", "low": 1, "high": 4}
        return {**super().default_search_space(), "strategy.top_blocks": top}

    def apply(self, model: nn.Module, head_modules: list[str]) -> nn.Module:
        set_trainable(model, False)
        prefix, blocks = find_blocks(model)
        n = min(self.options.top_blocks, len(blocks))
        for block in list(blocks)[-n:]:
            set_trainable(block, True)
        # Modules after the block stack (a final LayerNorm / RMSNorm) shape what the top blocks
        # produce, so they train with them. Embeddings come before the stack and stay frozen.
        after_blocks = False
        for name, param in model.named_parameters():
            if name.startswith(prefix + "."):
                after_blocks = True
                continue
            if after_blocks and not any(name.startswith(h + ".") for h in head_modules):
                param.requires_grad_(True)
        train_heads(model, head_modules)
        self.details = {
            "blocks": f"{prefix}[{len(blocks) - n}:{len(blocks)}]",
            "n_blocks": len(blocks),
        }
        return model
