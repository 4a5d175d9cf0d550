"""Which task each training step draws its batch from.

- `proportional`: task i with probability n_i / Σn (its share of the examples);
- `temperature`: p_i ∝ n_i^(1/T) (T = 1: proportional; large T: uniform), as in multilingual
  and multi-task training (Arivazhagan et al. 2019; Raffel et al. 2020, "temperature-scaled
  mixing");
- `round_robin`: tasks in turn.
Seeded per epoch, so a run (and its resume) draws the same schedule.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Sampler

from tunewise.training.batching import pack_batches


def task_probabilities(sizes: dict[str, int], scheme: str, temperature: float) -> dict[str, float]:
    names = list(sizes)
    if scheme == "round_robin":
        return {n: 1 / len(names) for n in names}
    power = 1.0 if scheme == "proportional" else 1.0 / temperature
    raw = np.array([max(sizes[n], 1) for n in names], dtype=float) ** power
    return dict(zip(names, (raw / raw.sum()).tolist(), strict=True))


def schedule(
    sizes: dict[str, int], n_steps: int, scheme: str, temperature: float, seed: int
) -> list[str]:
    """The task of each of `n_steps` steps."""
    names = list(sizes)
    if scheme == "round_robin":
        return [names[i % len(names)] for i in range(n_steps)]
    p = task_probabilities(sizes, scheme, temperature)
    rng = np.random.default_rng(seed)
    return [names[i] for i in rng.choice(len(names), size=n_steps, p=[p[n] for n in names])]


class TaskRows(Dataset):
    """The encoded rows of every task behind one index: offset[task] + row."""

    def __init__(self, parts: dict[str, Any], columns: dict[str, list[str]]) -> None:
        self.parts = parts
        self.columns = columns  # per task: the columns its model takes (as the Trainer keeps)
        self.names = list(parts)
        self.offsets, start = {}, 0
        for name in self.names:
            self.offsets[name] = start
            start += len(parts[name])
        self.total = start

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index: int) -> dict[str, Any]:
        for i, name in reversed(list(enumerate(self.names))):
            if index >= self.offsets[name]:
                row = self.parts[name][index - self.offsets[name]]
                row = {k: row[k] for k in self.columns[name]}
                row["task_index"] = i
                return row
        raise IndexError(index)


class TaskBatchSampler(Sampler[list[int]]):
    """Batches of one task each (length-grouped within the task), tasks drawn per step by the
    scheme; an epoch has as many steps as all tasks have batches."""

    def __init__(
        self,
        rows: TaskRows,
        batch_size: int,
        max_tokens: int | None,
        scheme: str,
        temperature: float,
        training: bool,
        seed: int,
    ) -> None:
        self.rows, self.training, self.seed, self.epoch = rows, training, seed, 0
        self.scheme, self.temperature = scheme, temperature
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self.sizes = {n: len(rows.parts[n]) for n in rows.names}
        self.n_batches = {n: len(self._batches(n, None)) for n in rows.names}

    def _batches(self, name: str, seed: int | None) -> list[list[int]]:
        offset = self.rows.offsets[name]
        lengths = self.rows.parts[name]["length"]
        batches = pack_batches(lengths, self.batch_size, self.max_tokens, seed)
        return [[offset + i for i in b] for b in batches]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(self.n_batches.values())

    def __iter__(self) -> Iterator[list[int]]:
        if not self.training:  # evaluation: every task's batches once, in order
            for name in self.rows.names:
                yield from self._batches(name, None)
            return
        seed = self.seed + self.epoch
        self.epoch += 1
        rng = np.random.default_rng(seed)
        pools: dict[str, list[list[int]]] = {}
        for name in schedule(self.sizes, len(self), self.scheme, self.temperature, seed):
            if not pools.get(name):  # refill (reshuffled) when a task runs out
                batches = self._batches(name, int(rng.integers(1 << 31)))
                pools[name] = [batches[i] for i in rng.permutation(len(batches))]
            yield pools[name].pop()
