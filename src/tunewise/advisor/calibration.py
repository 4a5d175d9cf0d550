"""Measured constants behind the advisor's estimates (this machine: 2-core Zen 3 CPU).

Sources: benchmarks/results/sst2.json (minilm, SST-2, all 67k examples, 2,048-token batches,
one process per run) for full, partial, frozen, lora and bitfit; benchmarks/results/
sweep_sst2.json (same setup, 4,000 examples) for the strategies added later. Re-derive them with
`python benchmarks/sweep_sst2.py` on another machine. docs/strategies.md explains the fits.
"""

from __future__ import annotations

# fp32 matmul ceiling, torch, 2 threads, 2048³ (../shared/reference/machine-and-models.md)
CPU_PEAK_FLOPS = 161e9

# Model FLOPs utilisation of a training step, per strategy (FLOPs counted as in estimate.py).
MFU = {
    "full": 0.744,
    "partial": 0.758,
    "frozen": 0.573,
    "lora": 0.412,
    "bitfit": 0.720,
    "default": 0.5,
}

# Peak RSS of the frozen run minus its fp32 weights: Python, torch, transformers, datasets and
# the tokenized data, before any activation is kept for a backward pass.
RUNTIME_OVERHEAD_BYTES = 0.95e9

# Activation memory per (token in a batch × layer × hidden unit), in fp32 words, fitted from the
# peak RSS of each SST-2 run after weights, gradients and Adam moments: e.g. full:
# 1,956 MB − 948 − 90 − 271 = 647 MB over 2,048 × 6 × 384 × 4 B = 18.9 MB → 34.
ACTIVATION_FACTOR = {
    "full": 34.0,
    "partial": 27.0,
    "frozen": 0.0,
    # full's activations plus a dropout copy of every adapted layer's input (~10 hidden widths
    # per token and block for BERT/LLaMA-like blocks). The measured minilm LoRA peak (2,416 MB)
    # is ~0.5 GB above this; a fitted 73 would, wrongly, put LoRA above full fine-tuning on
    # billion-parameter models, where weights and Adam moments dominate.
    "lora": 44.0,
    "bitfit": 29.0,
    # From the 1,000-example sweep (benchmarks/results/sweep_sst2_1000.json), relative to full
    # in the same sweep (full fitted 20 there) and scaled to this table (full 34): adapter 19.3,
    # IA3 22.5, prefix 34.7. Prompt tuning / P-tuning count per real + virtual token (estimate.py
    # adds the 20 virtual tokens): 79.1 over 2.5x longer sequences ≈ 32.
    "adapter": 33.0,
    "ia3": 38.0,
    "prefix_tuning": 59.0,
    "prompt_tuning": 54.0,
    "p_tuning": 54.0,
    "default": 40.0,
}

# Matmul FLOPs per token as multiples of the non-embedding parameter count (estimate.py).
FLOPS_FACTOR = {"full": 6.0, "frozen": 2.0, "default": 4.0}
