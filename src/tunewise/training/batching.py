"""Length-grouped training batches, by example count or by a token budget (packed by
`tunewise.inference.batches.pack_batches`, which inference uses too), shuffled per epoch.

Written here because neither HF Trainer nor `datasets` packs batches by a padded-token budget:
Trainer's `group_by_length` only reorders fixed-count batches. With SST-2's 13-token sentences a
32-example batch is ~400 tokens, too little work per step to feed the matrix units; a token budget
gives short examples bigger batches and long ones smaller, with next to no padding either way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from tunewise.inference.batches import pack_batches


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
