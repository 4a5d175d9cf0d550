"""LoRA-FA (Zhang et al., 2023): LoRA whose down-projection A stays frozen at its random start.

Only B trains, so no adapted layer keeps its input for the backward pass (A's gradient is the
only thing that needs it; `lora_fused.py` saves the input only when A trains): minilm on SST-2
peaks ~60 MB lower than LoRA at 2,048-token batches, at LoRA's speed and accuracy (docs/speed.md).
A is a random projection, stored with the run like a trained tensor (`artifacts.KEEP_FROZEN`),
so loading never replays a random init.
B trains with the same AdamW as LoRA, as in the paper; peft's `LoraFAOptimizer` rescales B's
gradient by (A Aᵀ)⁻¹, which Adam's per-element normalisation mostly cancels.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field
from torch import nn

from tunewise.artifacts import KEEP_FROZEN
from tunewise.strategies.advisor_facts import SW, AdvisorFacts
from tunewise.strategies.lora import LoraOptions, LoraStrategy

SW1_FA = "benchmarks/results/short_prior.json (short prior: 3 seeds)"
PAIRS = "benchmarks/results/peft_lora_fa.json (full, LoRA, LoRA-FA side by side, 5 seeds)"


class LoraFAOptions(LoraOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["lora_fa"] = "lora_fa"  # type: ignore[assignment]
    # Twice LoRA's rank: with A fixed, a wider random projection is what B can draw on (SST-2
    # tuning half, seeds 0-1: r 8 0.808, r 16 0.825, r 32 0.790; LoRA 0.823); costs no memory.
    r: int = Field(16, gt=0)
    alpha: float = Field(32, gt=0)  # keeps LoRA's scale alpha / r = 2


class LoraFAStrategy(LoraStrategy):
    name = "lora_fa"
    Options = LoraFAOptions
    summary = "LoRA with A frozen at its random start (LoRA-FA): less activation memory"
    advisor = AdvisorFacts(
        # LoRA's -0.7 (sweep): LoRA-FA - LoRA, 5 seeds, was +0.2 (tuning half) / -0.2 (report
        # half), no difference measured
        prior=-0.7,
        # short_prior.json, 3 seeds (one seed, 0.509, had put it 23.5 points under LoRA)
        short_prior=-0.3,
        # full's 34 (full.py) plus what full's gradients and Adam moments (271 MB) do not
        # explain of its peak's lead (median 273 MB at 2,048 tokens × 6 × 384 × 4 B = 18.9 MB)
        activation_factor=34.0,
        flops_factor=4.0,  # as LoRA: no weight gradient for the frozen weights
        mfu=0.66,  # LoRA's: 1.26× vs LoRA's 1.25× full's tokens/s side by side
        family="reparam",
        source=f"{PAIRS}; {SW}; {SW1_FA}",
    )

    def apply(self, model: nn.Module, head_modules: list[str]) -> nn.Module:
        model = super().apply(model, head_modules)
        for name, param in model.named_parameters():
            if ".lora_A." in name:
                param.requires_grad_(False)
                setattr(param, KEEP_FROZEN, True)
        return model
