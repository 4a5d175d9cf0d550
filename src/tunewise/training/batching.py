"""Length-grouped batches, by example count or by a token budget.

Written here because neither HF Trainer nor `datasets` packs batches by a padded-token budget:
Trainer's `group_by_length` only reorders fixed-count batches. With SST-2's 13-token sentences a
32-example batch is ~400 tokens, too little work per step to feed the matrix units; a token budget
gives short examples bigger batches and long ones smaller, with next to no padding either way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


def pack_batches(
    lengths: Sequence[int],
    batch_size: int,
    max_tokens: int | None = None,
    seed: int | None = 0,
) -> list[list[int]]:
    """Indices grouped into batches of similar length.

    Examples are sorted by length (ties broken at random when `seed` is given, in index order
    otherwise); consecutive runs then form batches of at most `batch_size` examples, or, with
    `max_tokens`, batches whose padded size (examples × longest) stays within the budget. An
    example longer than the budget gets a batch of its own.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if seed is None:
        order = np.argsort(lengths, kind="stable")
    else:
        jitter = np.random.default_rng(seed).random(len(lengths))
        order = np.lexsort((jitter, lengths))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for idx in order.tolist():
        n = lengths[idx]
        grown = max(longest, n)
        full = (len(current) + 1) * grown > max_tokens if max_tokens else len(current) >= batch_size
        if current and full:
            batches.append(current)
            current, grown = [], n
        current.append(idx)
        longest = grown
    if current:
        batches.append(current)
    return batches


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Yields pre-packed batches; training shuffles their order every epoch (seeded)."""

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        max_tokens: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        self.batches = pack_batches(lengths, batch_size, max_tokens, seed if shuffle else None)
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        if not self.shuffle:
            yield from self.batches
            return
        rng = np.random.default_rng(self.seed + self.epoch)
        self.epoch += 1  # also advances when the caller never calls set_epoch
        for i in rng.permutation(len(self.batches)).tolist():
            yield self.batches[i]
