"""Batched inference in length-sorted order, results returned in input order.

Used by final evaluation, `tunewise eval` and `predict`, so all three give the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tunewise.training import distributed
from tunewise.training.batching import pack_batches

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


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
    device = device_of(model)
    columns = [c for c in MODEL_INPUTS if c in dataset.column_names]
    rows = dataset.select_columns(columns)
    lengths = dataset["length"]
    batches = pack_batches(lengths, batch_size, seed=None)
    world, rank = distributed.world_size(), distributed.rank()
    batches = batches[rank::world]  # under torchrun each rank predicts its share (gathered below)
    progress = progress and rank == 0
    out: list[np.ndarray | None] = [None] * len(dataset)
    bar = tqdm(total=len(dataset), desc="predicting", unit="ex", disable=not progress, leave=False)
    for indices in batches:
        batch = collator([rows[i] for i in indices])
        batch = {k: v.to(device) for k, v in batch.items() if k in MODEL_INPUTS}
        logits = model(**batch).logits.float().cpu().numpy()
        for i, row in zip(indices, logits, strict=True):
            out[i] = row[: lengths[i]] if per_token else row
        bar.update(len(indices))
    bar.close()
    if world > 1:
        mine = [(i, out[i]) for indices in batches for i in indices]
        for part in distributed.all_gather(mine):
            for i, row in part:
                out[i] = row
    if per_token:
        return out  # type: ignore[return-value]
    return np.stack(out)  # type: ignore[arg-type]
