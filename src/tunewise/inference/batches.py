"""One batched-inference path: length-sorted batches, the right-padding collator and the
constants every task's scoring loop shares.

Evaluation, prediction, span decoding, multiple choice, perplexity and generation all walk
their examples with `sorted_batches` (or `model_batches`, which also collates and moves each
batch to the model's device): examples of similar length share a batch (little padding) and
results go back to input order by index. Training packs its batches with the same
`pack_batches` (`training/batching.py` shuffles their order per epoch).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
from tqdm.auto import tqdm

IGNORE = -100  # label of a position that carries no loss (padding, prompt tokens, sub-tokens)
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# The fixed cost of one forward pass in tokens' worth of compute, when set (`forward_cost`).
_FORWARD_COST: ContextVar[float | None] = ContextVar("tunewise_forward_cost", default=None)


def device_of(model: Any) -> Any:
    """The device of the model's (first) parameters."""
    return next(model.parameters()).device


def pack_batches(
    lengths: Sequence[int],
    batch_size: int,
    max_tokens: int | None = None,
    seed: int | None = 0,
    forward_cost: float | None = None,
) -> list[list[int]]:
    """Indices grouped into batches of similar length.

    Examples are sorted by length (ties broken at random when `seed` is given, in index order
    otherwise); consecutive runs then form batches of at most `batch_size` examples, or, with
    `max_tokens`, batches whose padded size (examples × longest) stays within the budget. An
    example longer than the budget gets a batch of its own.

    With `forward_cost` (a forward pass's fixed cost, in padded tokens' worth of compute), the
    sorted run is cut where it is cheapest overall instead: the fewest padded tokens plus
    `forward_cost` per batch, within the same limits (`cheapest_cuts`).

    Written here because neither HF Trainer nor `datasets` packs batches by a padded-token
    budget: Trainer's `group_by_length` only reorders fixed-count batches.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if seed is None:
        order = np.argsort(lengths, kind="stable")
    else:
        jitter = np.random.default_rng(seed).random(len(lengths))
        order = np.lexsort((jitter, lengths))
    if forward_cost is not None:
        sizes = lengths[order].tolist()
        return [
            order[a:b].tolist()
            for a, b in cheapest_cuts(sizes, batch_size, max_tokens, forward_cost)
        ]
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


def cheapest_cuts(
    sizes: list[int], batch_size: int, max_tokens: int | None, forward_cost: float
) -> list[tuple[int, int]]:
    """(start, end) runs of ascending `sizes` with the least total cost, a run costing
    `forward_cost` + rows x its longest, at most `batch_size` rows and (when given) `max_tokens`
    padded tokens (a longer single row runs alone). Dynamic programming over the cut points,
    O(n x batch_size): meant for a server's micro-batch, not a whole dataset. Hand-written: no
    library splits a padded batch by cost."""
    n = len(sizes)
    best = [0.0] + [float("inf")] * n  # best[j]: cheapest cost of the first j sizes
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = sizes[j - 1]
        for i in range(j - 1, max(0, j - batch_size) - 1, -1):
            rows = j - i
            if rows > 1 and max_tokens and rows * longest > max_tokens:
                break
            cost = best[i] + forward_cost + rows * longest
            if cost < best[j]:
                best[j], cut[j] = cost, i
    runs, j = [], n
    while j > 0:
        runs.append((cut[j], j))
        j = cut[j]
    return runs[::-1]


@contextmanager
def forward_cost(tokens: float | None) -> Iterator[None]:
    """Within the block (this thread or task only), inference batches are cut by cost
    (`pack_batches`' `forward_cost`): a server's small random micro-batch pads far less as a few
    passes of similar lengths than as fixed-size slices of it."""
    token = _FORWARD_COST.set(tokens)
    try:
        yield
    finally:
        _FORWARD_COST.reset(token)


def sorted_batches(
    lengths: Sequence[int],
    batch_size: int,
    max_tokens: int | None = None,
    *,
    progress: bool = False,
    desc: str = "predicting",
    unit: str = "ex",
    shard: tuple[int, int] = (0, 1),
) -> Iterator[list[int]]:
    """Indices of length-sorted batches (deterministic order), with an optional progress bar;
    `shard=(rank, world)` keeps every world-th batch from the rank-th (one process's share)."""
    rank, world = shard
    cost = _FORWARD_COST.get()
    batches = pack_batches(lengths, batch_size, max_tokens, None, cost)[rank::world]
    total = sum(len(b) for b in batches)
    bar = tqdm(total=total, desc=desc, unit=unit, disable=not progress, leave=False)
    try:
        for indices in batches:
            yield indices
            bar.update(len(indices))
    finally:
        bar.close()


def model_batches(
    model: Any,
    rows: Any,
    lengths: Sequence[int],
    collator: Any,
    batch_size: int,
    max_tokens: int | None = None,
    *,
    keys: Sequence[str] | None = None,
    progress: bool = False,
    desc: str = "predicting",
    unit: str = "ex",
    shard: tuple[int, int] = (0, 1),
) -> Iterator[tuple[list[int], dict[str, Any]]]:
    """(indices, collated batch on the model's device) for length-sorted batches of `rows` (a
    dataset or list); `keys` keeps only those entries of each collated batch."""
    device = device_of(model)
    for indices in sorted_batches(
        lengths, batch_size, max_tokens, progress=progress, desc=desc, unit=unit, shard=shard
    ):
        batch = collator([rows[i] for i in indices])
        yield indices, {k: v.to(device) for k, v in batch.items() if keys is None or k in keys}


class RightPadCollator:
    """Pads a batch on the right whatever the tokenizer's own padding side (decoder tokenizers
    often pad left), so an example's first `length` positions are its own tokens; list-valued
    `labels` are padded with the task's `label_fill` (token labels: IGNORE). Scalar labels
    (QA's start / end positions) pass through. The padding itself is transformers'
    DataCollatorForTokenClassification."""

    def __init__(self, tokenizer: Any, label_fill: int = IGNORE) -> None:
        from transformers import DataCollatorForTokenClassification

        self.tokenizer = tokenizer
        self.pad = DataCollatorForTokenClassification(tokenizer, label_pad_token_id=label_fill)

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        side, self.tokenizer.padding_side = self.tokenizer.padding_side, "right"
        try:
            return self.pad(features)
        finally:
            self.tokenizer.padding_side = side
