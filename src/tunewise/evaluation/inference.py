"""Batched inference in length-sorted order, results returned in input order.

Used by final evaluation, `tunewise eval` and `predict`, so all three give the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tunewise.training.batching import pack_batches

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def predict_logits(
    model: nn.Module, dataset: Any, collator: Any, batch_size: int = 64, progress: bool = True
) -> np.ndarray:
    """Logits for every row of a tokenized dataset (with a `length` column), in row order."""
    model.eval()
    device = device_of(model)
    columns = [c for c in MODEL_INPUTS if c in dataset.column_names]
    rows = dataset.select_columns(columns)
    batches = pack_batches(dataset["length"], batch_size, seed=None)
    out: list[np.ndarray | None] = [None] * len(dataset)
    bar = tqdm(total=len(dataset), desc="predicting", unit="ex", disable=not progress, leave=False)
    for indices in batches:
        batch = collator([rows[i] for i in indices])
        batch = {k: v.to(device) for k, v in batch.items() if k in MODEL_INPUTS}
        logits = model(**batch).logits.float().cpu().numpy()
        for i, row in zip(indices, logits, strict=True):
            out[i] = row
        bar.update(len(indices))
    bar.close()
    return np.stack(out)  # type: ignore[arg-type]
