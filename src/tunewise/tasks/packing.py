"""Sequence packing for language-model pretraining: documents joined end to end, cut into blocks.

The same concatenate-and-chunk scheme as transformers' `run_clm.py` / `run_mlm.py` examples
(`group_texts`), which live in example scripts rather than the library, hence this copy. Unlike
`group_texts` it keeps the final partial block, so every token is trained on or scored exactly
once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pack(sequences: Sequence[Sequence[int]], block_size: int) -> list[list[int]]:
    """All tokens of `sequences`, in order, in blocks of `block_size` (the last may be shorter)."""
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    lengths = [len(s) for s in sequences]
    if not sum(lengths):
        return []
    flat = np.fromiter((t for s in sequences for t in s), dtype=np.int64, count=sum(lengths))
    return [flat[i : i + block_size].tolist() for i in range(0, len(flat), block_size)]
