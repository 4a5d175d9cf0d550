"""Batched inference in length-sorted order, results returned in input order.

Used by final evaluation, `tunewise eval` and `predict`, so all three give the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from tunewise.inference.batches import MODEL_INPUTS, model_batches
from tunewise.training import distributed


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    dataset: Any,
    collator: Any,
    batch_size: int = 64,
    progress: bool = True,
    per_token: bool = False,
) -> np.ndarray | list[np.ndarray]:
    """Logits for every row of a tokenized dataset (with a `length` column), in row order.

    per_token: the model returns a row per token (token classification); each example's rows
    are cut to its own length (padding dropped) and returned as a list of (length, labels)."""
    model.eval()
    columns = [c for c in MODEL_INPUTS if c in dataset.column_names]
    rows = dataset.select_columns(columns)
    lengths = dataset["length"]
    world, rank = distributed.world_size(), distributed.rank()
    progress = progress and rank == 0  # under torchrun each rank predicts its share
    out: list[np.ndarray | None] = [None] * len(dataset)
    batches = model_batches(
        model,
        rows,
        lengths,
        collator,
        batch_size,
        keys=MODEL_INPUTS,
        progress=progress,
        shard=(rank, world),
    )
    done: list[int] = []
    for indices, batch in batches:
        logits = model(**batch).logits.float().cpu().numpy()
        for i, row in zip(indices, logits, strict=True):
            out[i] = row[: lengths[i]] if per_token else row
        done.extend(indices)
    if world > 1:  # gathered, so every rank holds every example's logits
        mine = [(i, out[i]) for i in done]
        for part in distributed.all_gather(mine):
            for i, row in part:
                out[i] = row
    if per_token:
        return out  # type: ignore[return-value]
    return np.stack(out)  # type: ignore[arg-type]
