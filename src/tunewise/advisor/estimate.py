"""Cost estimates per strategy: trainable parameters (counted on a model built on the meta
device, so nothing is allocated), peak training memory and seconds per epoch.

The memory and speed constants are measurements, not guesses: see `calibration.py` and
docs/strategies.md for where each number comes from.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

from torch import nn

from tunewise.advisor import calibration as cal


@dataclass
class Sizes:
    trainable: int
    total: int
    non_embedding: int  # params in matmuls per token (drives FLOPs)
    layers: int
    hidden: int


class _Probe(nn.Module):
    """A stand-in task model (backbone + a small head) for counting what a strategy trains."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        from tunewise.tasks.heads import drop_pooler

        self.backbone = drop_pooler(backbone)  # as the real task heads do
        self.classifier = nn.Linear(backbone.config.hidden_size, 2)

    @property
    def config(self) -> Any:
        return self.backbone.config


@functools.lru_cache(maxsize=64)
def model_config(model: str) -> Any:
    from tunewise.models import load_config, resolve

    return load_config(resolve(model))


@functools.lru_cache(maxsize=256)
def sizes(model: str, strategy: str, auto_model: str, head_modules: tuple[str, ...]) -> Sizes:
    """Parameter counts of `strategy` applied to `model` (built on the meta device)."""
    import torch
    import transformers

    from tunewise.registry import STRATEGIES
    from tunewise.strategies.base import count_parameters

    config = model_config(model)
    loader = getattr(transformers, auto_model)
    with torch.device("meta"):
        base = loader.from_config(config)
        if auto_model == "AutoModel":
            probe: nn.Module = _Probe(base)
            heads = ["classifier"]
        else:
            probe, heads = base, list(head_modules)
        embedding = sum(
            p.numel() for m in base.modules() if isinstance(m, nn.Embedding) for p in m.parameters()
        )
        total_base = sum(p.numel() for p in base.parameters())
        cls = STRATEGIES.get(strategy)
        strat = cls(cls.Options())
        model_ = strat.apply(probe, heads)
        report = count_parameters(model_)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return Sizes(
        trainable=report.trainable,
        total=total_base,
        non_embedding=total_base - embedding,
        layers=int(getattr(text, "num_hidden_layers", 12)),
        hidden=int(getattr(text, "hidden_size", 768)),
    )


def facts(strategy: str) -> Any:
    """The strategy class's `AdvisorFacts` (measured numbers and their sources)."""
    from tunewise.registry import STRATEGIES

    return STRATEGIES.get(strategy).advisor


def peak_memory_gb(strategy: str, s: Sizes, tokens_per_batch: float) -> float:
    """Weights + gradients and AdamW moments of what trains + activations + runtime."""
    f = facts(strategy)
    weights = f.weight_bytes * s.total
    optimizer = 12 * s.trainable  # gradient + two Adam moments, fp32
    k = f.activation_factor
    k = cal.DEFAULT_ACTIVATION_FACTOR if k is None else k
    activations = k * tokens_per_batch * s.layers * s.hidden * 4
    return (cal.RUNTIME_OVERHEAD_BYTES + weights + optimizer + activations) / 1e9


def flops_per_token(strategy: str, s: Sizes, options: dict[str, Any] | None = None) -> float:
    """Matmul FLOPs per real token: forward 2N, backward 2N for activation gradients through
    the layers below what trains, 2N for weight gradients of what trains (Kaplan et al. 2020)."""
    from tunewise.registry import STRATEGIES

    factor = STRATEGIES.get(strategy).flops_factor(options, s.layers)
    return (cal.DEFAULT_FLOPS_FACTOR if factor is None else factor) * s.non_embedding


@functools.lru_cache(maxsize=4)
def peak_flops(device: str) -> float:
    """Matmul ceiling: the measured CPU figure (override with TUNEWISE_PEAK_FLOPS) or, on CUDA,
    a quick 4096³ matmul timing."""
    if os.environ.get("TUNEWISE_PEAK_FLOPS"):
        return float(os.environ["TUNEWISE_PEAK_FLOPS"])
    if device == "cpu":
        return cal.CPU_PEAK_FLOPS
    import time

    import torch

    if not torch.cuda.is_available():
        from tunewise.errors import ConfigError

        raise ConfigError(f"--device {device}: no CUDA GPU is visible on this machine.")
    a = torch.randn(4096, 4096, device="cuda")
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ a
    torch.cuda.synchronize()
    return 10 * 2 * 4096**3 / (time.perf_counter() - start)


def epoch_seconds(
    strategy: str, s: Sizes, tokens: float, device: str, options: dict[str, Any] | None = None
) -> float:
    """Seconds for one pass over `tokens` real tokens at the strategy's measured MFU."""
    mfu = facts(strategy).mfu or cal.DEFAULT_MFU
    return tokens * flops_per_token(strategy, s, options) / (peak_flops(device) * mfu)
