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
    ) -> None:
        if num_replicas > 1 and len(lengths) < num_replicas:
            raise ValueError(f"{len(lengths)} examples cannot be shared by {num_replicas} ranks")
        budget = max_tokens * num_replicas if max_tokens else None
        order_seed = seed if shuffle else None
        batches = pack_batches(lengths, batch_size * num_replicas, budget, order_seed)
        self.batches = merge_small_batches(batches, num_replicas) if num_replicas > 1 else batches
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.num_replicas = num_replicas
        self.rank = rank

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
        self.epoch += 1  # also advances when the caller never calls set_epoch
        for i in rng.permutation(len(self.batches)).tolist():
            yield self._local(self.batches[i])
