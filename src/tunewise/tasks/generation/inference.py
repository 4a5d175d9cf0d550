"""Answer-token likelihood and batched generation for causal and seq2seq LMs.

Both work in length-sorted batches (little padding) and return results in input order. Causal
prompts are padded on the left for generation, so every prompt ends where its answer starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tunewise.training.batching import pack_batches

IGNORE = -100
LM_INPUTS = ("input_ids", "attention_mask", "labels")


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _nll(logits: torch.Tensor, labels: torch.Tensor, causal: bool) -> tuple[float, int]:
    if causal:  # position t predicts token t + 1
        logits, labels = logits[:, :-1], labels[:, 1:]
    nll = nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )
    return float(nll), int((labels != IGNORE).sum())


def nll_from_logits(logits: np.ndarray, labels: np.ndarray, causal: bool) -> tuple[float, int]:
    """Summed answer-token negative log-likelihood and the number of answer tokens."""
    return _nll(torch.as_tensor(logits), torch.as_tensor(labels, dtype=torch.long), causal)


@torch.inference_mode()
def answer_nll(
    model: nn.Module,
    encoded: Any,
    collator: Any,
    causal: bool,
    batch_size: int = 64,
    max_tokens: int = 4096,
    progress: bool = True,
) -> tuple[float, int]:
    """Summed NLL over every labelled (answer) token of a tokenized dataset, and their count.

    `max_tokens` bounds padded tokens per batch: a batch's logits are tokens × vocabulary floats
    (49k for SmolLM2), which is what limits memory here, not the model.
    """
    model.eval()
    device = device_of(model)
    rows = encoded.select_columns([c for c in LM_INPUTS if c in encoded.column_names])
    total, count = 0.0, 0
    batches = pack_batches(encoded["length"], batch_size, max_tokens, seed=None)
    bar = tqdm(total=len(encoded), desc="scoring", unit="ex", disable=not progress, leave=False)
    for indices in batches:
        batch = {k: v.to(device) for k, v in collator([rows[i] for i in indices]).items()}
        labels = batch.pop("labels")
        if not causal:  # the decoder's inputs are the labels shifted right
            batch["labels"] = labels
        logits = model(**batch).logits
        nll, n = _nll(logits, labels, causal)
        total, count = total + nll, count + n
        bar.update(len(indices))
    bar.close()
    return total, count


def generation_kwargs(options: Any, tokenizer: Any, model: nn.Module) -> dict[str, Any]:
    """generate() settings from the task options; stop at the tokenizer's EOS as well as the
    model's (a fallback chat template ends turns with the tokenizer's)."""
    kwargs: dict[str, Any] = {
        "max_new_tokens": options.max_new_tokens,
        "do_sample": options.do_sample,
        "num_beams": options.num_beams,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if options.do_sample:
        kwargs.update(temperature=options.temperature, top_p=options.top_p)
    else:  # greedy: clear sampling defaults a model's generation_config may carry
        kwargs.update(temperature=None, top_p=None, top_k=None)
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(tokenizer.eos_token_id)
    if eos_ids:
        kwargs["eos_token_id"] = sorted(eos_ids)
    return kwargs


@torch.inference_mode()
def generate_texts(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    options: Any,
    causal: bool,
    batch_size: int = 8,
    streamer: Any | None = None,
    progress: bool = False,
    **generate_kwargs: Any,
) -> list[str]:
    """The generated continuation of every prompt (token ids), decoded, in input order.
    `generate_kwargs` go to `model.generate` as well (the server's stop strings, cancel)."""
    model.eval()
    device = device_of(model)
    kwargs = {**generation_kwargs(options, tokenizer, model), **generate_kwargs}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[str] = [""] * len(prompts)
    batches = pack_batches([len(p) for p in prompts], batch_size, seed=None)
    bar = tqdm(total=len(prompts), desc="generating", unit="ex", disable=not progress, leave=False)
    for indices in batches:
        width = max(len(prompts[i]) for i in indices)
        ids = torch.full((len(indices), width), pad, dtype=torch.long)
        mask = torch.zeros((len(indices), width), dtype=torch.long)
        for row, i in enumerate(indices):
            p = torch.as_tensor(list(prompts[i]), dtype=torch.long)
            cols = slice(width - len(p), width) if causal else slice(0, len(p))
            ids[row, cols], mask[row, cols] = p, 1
        generated = model.generate(
            input_ids=ids.to(device), attention_mask=mask.to(device), streamer=streamer, **kwargs
        )
        new = generated[:, width:] if causal else generated
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        for i, text in zip(indices, texts, strict=True):
            out[i] = text.strip()
        bar.update(len(indices))
    bar.close()
    return out
