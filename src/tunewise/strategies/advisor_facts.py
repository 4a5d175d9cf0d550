"""What the advisor knows about a strategy, declared on the strategy class (`Strategy.advisor`).

The advisor (`tunewise.advisor`) is a generic scorer: it reads these facts and never a table
keyed by strategy name, so a new strategy brings its own numbers. A fact left at None is not
calibrated: the advisor falls back to a generic default and says so in its reasons. Each
strategy module writes the source of every number next to it (benchmarks/results/*.json, a
paper); docs/strategies.md explains the fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# How the rules treat a strategy (advisor/rank.py): every weight trains; a small update to
# every layer (LoRA, adapters, IA3, diff pruning); virtual tokens; a head on frozen features; a
# chosen subset of existing weights (top blocks, biases).
# The measurements most strategies cite (python benchmarks/sweep_sst2.py re-derives them).
SST = "benchmarks/results/sst2.json (MFU, activation factor: minilm, SST-2, all 67k examples)"
SW = "benchmarks/results/sweep_sst2_4000.json (prior: 4,000 examples, one epoch)"
SW1 = "benchmarks/results/short_prior.json (short prior: 1,000 examples, 15 steps, 3 seeds)"

Family = Literal["full", "reparam", "prompt", "frozen", "selective", "other"]


@dataclass(frozen=True)
class AdvisorFacts:
    # Quality: task-metric points against full fine-tuning, negative below it (SST-2 dev
    # accuracy, minilm, 4,000 examples, one epoch, the strategy's default learning rate).
    prior: float | None = None
    # The same after a short run (1,000 examples, one epoch = 15 token-budget steps, mean of 3
    # seeds; benchmarks/short_prior.py); used when a run has fewer than the advisor's
    # SHORT_RUN_STEPS optimizer steps.
    short_prior: float | None = None
    # Activation memory per (token in a batch × layer × hidden unit), in fp32 words.
    activation_factor: float | None = None
    # Matmul FLOPs per token as a multiple of the non-embedding parameter count.
    flops_factor: float | None = None
    # Measured model-FLOPs utilisation of a training step.
    mfu: float | None = None
    # Bytes per base-model weight in memory (fp32: 4; NF4 with double quantisation: 0.55).
    weight_bytes: float = 4.0
    # Virtual tokens the strategy adds per example, and whether they lengthen the input
    # sequence (prompt tuning, P-tuning) or live in the attention keys only (prefix tuning).
    virtual_tokens: int = 0
    prepends_tokens: bool = False
    family: Family = "other"
    # The standard choice for generative tasks on a pretrained LM (a +1 rule).
    preferred_for_generation: bool = False
    # Where the numbers come from (files under benchmarks/results/, papers).
    source: str = ""

    def uncalibrated(self) -> list[str]:
        """Names of the measured facts this strategy lacks."""
        names = ("prior", "short_prior", "activation_factor", "flops_factor", "mfu")
        return [n for n in names if getattr(self, n) is None]
