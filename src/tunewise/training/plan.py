"""How a run trains, before it does: batch grouping by length, a small set's batch size, the
optimizer steps of an epoch and of the run, and the loss tokens one step is divided by."""

from __future__ import annotations

from typing import Any

import numpy as np

from tunewise.config import Config
from tunewise.training import distributed
from tunewise.training.batching import grouped_batches


def length_grouping(cfg: Config, task: Any) -> str:
    """training.length_grouping with `auto` resolved: a token budget needs grouped batches (it
    packs similar lengths); fixed-count batches follow the task (tasks/base.py)."""
    t = cfg.training
    if t.length_grouping != "auto":
        return t.length_grouping
    return "window" if t.max_tokens_per_batch else getattr(task, "length_grouping", "none")


def small_data_batch(cfg: Config, n_train: int, min_steps: int = 16) -> None:
    """Halve a default batch size (down to 8) until an epoch has `min_steps` steps: a short run
    needs steps more than big batches (BBC News, 300 examples: 16 per batch, 38 steps, beat 32
    per batch, 20 steps, by 3 points; benchmarks/tune_bbc.py). A batch size or token budget the
    user set is kept."""
    t = cfg.training
    if "batch_size" in t.model_fields_set or t.max_tokens_per_batch:
        return
    while t.batch_size > 8 and n_train / t.batch_size < min_steps:
        t.batch_size //= 2


def steps_per_epoch(cfg: Config, lengths: list[int], grouping: str) -> float:
    """Optimizer steps in one epoch (one step trains a batch on every rank)."""
    t = cfg.training
    world = distributed.world_size()
    budget = t.max_tokens_per_batch * world if t.max_tokens_per_batch else None
    batches = len(grouped_batches(lengths, t.batch_size * world, budget, cfg.seed, grouping))
    return batches / t.gradient_accumulation_steps


def planned_steps(cfg: Config, per_epoch: float) -> int:
    if cfg.training.max_steps:
        return cfg.training.max_steps
    return max(1, int(np.ceil(per_epoch * cfg.training.epochs)))


def loss_tokens_per_step(
    cfg: Config, loss_module: Any, train: Any, per_epoch: float
) -> float | None:
    """`training.loss_normalization: epoch`: the loss tokens of one epoch per optimizer step, for
    a loss module that counts them (causal-LM answer loss); None otherwise."""
    count = getattr(loss_module, "tokens", None)
    if cfg.training.loss_normalization != "epoch" or count is None:
        return None
    return count(train["labels"]) / max(per_epoch, 1.0)
