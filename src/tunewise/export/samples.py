"""Inputs to check an export on: tokenized examples of the run's own data (validation, else
train) when the files are still readable, else random token ids. Also the shared pass that turns
them into padded batches and runs the tunewise model on them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunewise.evaluation.inference import MODEL_INPUTS


def data_file(predictor: Any, given: str | Path | None = None) -> Path | None:
    """The labelled file to measure on: `given`, else the run's validation (or train) file."""
    if given:
        return Path(given)
    for split in ("validation", "train"):
        spec = predictor.config.data.split(split)
        if spec is not None and Path(spec.path).is_file():
            return Path(spec.path)
    return None


def encoded_examples(
    predictor: Any, n: int, labelled: bool = False, path: Path | None = None
) -> tuple[Any, str]:
    """(tokenized dataset of up to n examples, where they came from)."""
    path = path or data_file(predictor)
    task, tokenizer = predictor.task, predictor.tokenizer
    if path is not None:
        try:
            dataset = predictor.read(path, labelled=labelled)
            dataset = dataset.select(range(min(n, len(dataset))))
            return task.tokenize(dataset, tokenizer), str(path)
        except Exception:  # the data moved or changed: random ids still check
            if labelled:
                raise
    return _random_examples(tokenizer, n), "random token ids"


def _random_examples(tokenizer: Any, n: int) -> Any:
    from datasets import Dataset

    rng = np.random.default_rng(0)
    special = set(tokenizer.all_special_ids)
    vocab = [i for i in range(len(tokenizer)) if i not in special]
    rows = []
    for _ in range(n):
        words = rng.choice(vocab, size=int(rng.integers(4, 16))).tolist()
        ids = tokenizer.build_inputs_with_special_tokens(words)
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "length": len(ids)})
    return Dataset.from_list(rows)


def batches(encoded: Any, collator: Any, size: int) -> list[dict[str, torch.Tensor]]:
    """Padded model inputs (and labels, which only seq2seq models are given) in batches of
    `size`, in row order."""
    keep = (*MODEL_INPUTS, "labels")
    columns = [c for c in keep if c in encoded.column_names]
    rows = encoded.select_columns(columns)
    out = []
    for start in range(0, len(rows), size):
        batch = collator([rows[i] for i in range(start, min(start + size, len(rows)))])
        out.append({k: v for k, v in batch.items() if k in keep})
    return out


@torch.inference_mode()
def outputs(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> list[np.ndarray]:
    """The model's output tensors for one batch as numpy (logits; QA: start and end logits)."""
    seq2seq = getattr(getattr(model, "config", None), "is_encoder_decoder", False)
    out = model(**{k: v for k, v in batch.items() if k != "labels" or seq2seq})
    if getattr(out, "start_logits", None) is not None:
        return [out.start_logits.float().numpy(), out.end_logits.float().numpy()]
    return [out.logits.float().numpy()]


def max_diff(a: list[np.ndarray], b: list[np.ndarray], mask: np.ndarray | None = None) -> float:
    """Largest absolute difference over real positions (padding ignored where `mask` says)."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        d = np.abs(x.astype(np.float64) - y.astype(np.float64))
        if mask is not None and d.shape[: mask.ndim] == mask.shape:
            d = d[mask.astype(bool)]
        worst = max(worst, float(d.max()) if d.size else 0.0)
    return worst
