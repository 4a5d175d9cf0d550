"""Machine-level constants behind the advisor's estimates (this machine: 2-core Zen 3 CPU), and
the generic defaults used for a strategy that declares no measurement of its own.

Per-strategy numbers (priors, MFU, memory and FLOPs factors) live on each strategy class
(`Strategy.advisor`, see `tunewise.strategies.advisor_facts`), with their sources. Re-derive them
with `python benchmarks/sweep_sst2.py` on another machine; docs/strategies.md explains the fits.
"""

from __future__ import annotations

# fp32 matmul ceiling, torch, 2 threads, 2048³ (../shared/reference/machine-and-models.md)
CPU_PEAK_FLOPS = 161e9

# Peak RSS of the frozen run minus its fp32 weights: Python, torch, transformers, datasets and
# the tokenized data, before any activation is kept for a backward pass
# (benchmarks/results/sst2.json).
RUNTIME_OVERHEAD_BYTES = 0.95e9

# Defaults for an uncalibrated strategy (the advisor names each one it falls back to):
DEFAULT_PRIOR = -5.0  # points below full: under the measured reparametrisations, over prompts
DEFAULT_MFU = 0.5  # between LoRA's 0.41 and full's 0.74 (sst2.json)
DEFAULT_ACTIVATION_FACTOR = 40.0  # between full's 34 and LoRA's 44 (sst2.json)
DEFAULT_FLOPS_FACTOR = 4.0  # forward 2N + activation gradients 2N (Kaplan et al. 2020)
