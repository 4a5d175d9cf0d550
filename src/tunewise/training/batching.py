"""Length-grouped training batches, by example count or by a token budget (packed by
`tunewise.inference.batches.pack_batches`, which inference uses too), shuffled per epoch.

Grouping (`training.length_grouping`) trades padding against randomness:
- `window` (default, as HF Trainer's `group_by_length`): a seeded permutation is cut into windows
  of ~50 batches, and each window is sorted and packed on its own, so batches stay random draws of
  the data with little padding. Fixed-count batches are regrouped every epoch.
- `global`: the whole set sorted once: the least padding, but every batch holds examples of one
  length, and in data such as CoNLL length says what a sentence is (headlines, table rows), so
  batches stop being random samples (measured in benchmarks/ner_vs_hf.py).
- `none`: plain random batches (most padding), as a script without grouping.

Written here because neither HF Trainer nor `datasets` packs batches by a padded-token budget:
Trainer's `group_by_length` only reorders fixed-count batches. With SST-2's 13-token sentences a
32-example batch is ~400 tokens, too little work per step to feed the matrix units; a token budget
gives short examples bigger batches and long ones smaller, with next to no padding either way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
from torch.utils.data import Sampler

from tunewise.inference.batches import pack_batches

Grouping = Literal["window", "global", "none"]
WINDOW_BATCHES = 50  # batches per window, as HF's get_length_grouped_indices (mega_batch_mult)


def grouped_batches(
    lengths: Sequence[int],
    batch_size: int,
    max_tokens: int | None = None,
    seed: int | None = 0,
    grouping: Grouping = "window",
) -> list[list[int]]:
    """Training batches under `grouping` (see the module docstring), in packing order.

    `seed` None: no randomness (evaluation order, `global` with ties in index order). Windows hold
    a whole number of fixed-count batches, so their count never depends on the seed; with a token
    budget a window holds about WINDOW_BATCHES batches of median-length examples."""
    n = len(lengths)
    if grouping == "global" or seed is None or n == 0:
        return pack_batches(lengths, batch_size, max_tokens, seed)
    order = np.random.default_rng(seed).permutation(n)
    if grouping == "none":
        if max_tokens:  # random order, cut by the budget as it comes
            return _cut(order.tolist(), lengths, batch_size, max_tokens)
        return [order[i : i + batch_size].tolist() for i in range(0, n, batch_size)]
    per_batch = batch_size
    if max_tokens:
        per_batch = max(1, max_tokens // max(int(np.median(lengths)), 1))
    # HF: min(len // (4 × batch), 50) batches per window, at least one.
    window = per_batch * max(1, min(n // (4 * per_batch), WINDOW_BATCHES))
    batches: list[list[int]] = []
    for start in range(0, n, window):
        part = order[start : start + window]
        local = pack_batches([lengths[i] for i in part], batch_size, max_tokens, seed + start)
        batches += [[int(part[j]) for j in b] for b in local]
    return batches


def _cut(order: list[int], lengths: Sequence[int], batch_size: int, max_tokens: int):
    """Consecutive batches of `order` whose padded size stays within `max_tokens`."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for idx in order:
        grown = max(longest, lengths[idx])
        if current and (len(current) + 1) * grown > max_tokens:
            batches.append(current)
            current, grown = [], lengths[idx]
        current.append(idx)
        longest = grown
    return batches + ([current] if current else [])


def merge_small_batches(batches: list[list[int]], minimum: int) -> list[list[int]]:
    """Batches with fewer than `minimum` examples join their length-sorted neighbour, so each of
    `minimum` ranks gets at least one example of every batch."""
    out: list[list[int]] = []
    for batch in batches:
        if out and (len(batch) < minimum or len(out[-1]) < minimum):
            out[-1] = out[-1] + batch
        else:
            out.append(list(batch))
    return out


def shard_batch(batch: list[int], rank: int, num_replicas: int) -> list[int]:
    """This rank's contiguous slice of a global batch (sizes differ by at most one)."""
    return [int(i) for i in np.array_split(np.asarray(batch), num_replicas)[rank]]


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Yields pre-packed batches; training shuffles their order every epoch (seeded).

    Distributed (num_replicas > 1): batches are packed globally (batch_size and max_tokens per
    rank × num_replicas, every global batch at least num_replicas examples) and each rank yields
    its slice of each global batch, in the same seeded order on every rank. Every example is then
    seen exactly once per epoch across ranks, every rank takes the same number of steps, and the
    global batches are those a single process packs with batch_size × num_replicas. (Hand-written:
    accelerate's BatchSamplerShard pads an uneven batch count by repeating batches and its
    split_batches mode assumes fixed-size batches.)
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        max_tokens: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        grouping: Grouping = "window",
    ) -> None:
        if num_replicas > 1 and len(lengths) < num_replicas:
            raise ValueError(f"{len(lengths)} examples cannot be shared by {num_replicas} ranks")
        self.lengths = list(lengths)
        self.num_replicas, self.rank = num_replicas, rank
        self.size = batch_size * num_replicas
        self.budget = max_tokens * num_replicas if max_tokens else None
        self.grouping: Grouping = grouping if shuffle else "global"
        # Fixed-count batches are regrouped each epoch (their count never changes); a token
        # budget's batches are drawn once, as their count depends on the draw and the Trainer
        # plans its steps from len().
        self.regroup = shuffle and grouping != "global" and self.budget is None
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.batches = self._pack(seed if shuffle else None)
        self.packed_for = 0  # the epoch `batches` were grouped for

    def _pack(self, seed: int | None) -> list[list[int]]:
        batches = grouped_batches(self.lengths, self.size, self.budget, seed, self.grouping)
        if self.num_replicas > 1:
            return merge_small_batches(batches, self.num_replicas)
        return batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.batches)

    def _local(self, batch: list[int]) -> list[int]:
        if self.num_replicas == 1:
            return batch
        return shard_batch(batch, self.rank, self.num_replicas)

    def __iter__(self) -> Iterator[list[int]]:
        if not self.shuffle:
            for batch in self.batches:
                yield self._local(batch)
            return
        rng = np.random.default_rng(self.seed + self.epoch)
        if self.regroup and self.packed_for != self.epoch:
            self.batches = self._pack(self.seed + 1000 * self.epoch if self.epoch else self.seed)
            self.packed_for = self.epoch
        self.epoch += 1  # also advances when the caller never calls set_epoch
        for i in rng.permutation(len(self.batches)).tolist():
            yield self._local(self.batches[i])
