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

from tunewise.inference.batches import IGNORE, device_of, model_batches, sorted_batches
from tunewise.training.lm_loss import causal_nll, supports_position_loss

LM_INPUTS = ("input_ids", "attention_mask", "labels")


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

    `max_tokens` bounds padded tokens per batch. Causal LMs project only the answer positions onto
    the vocabulary (`training.lm_loss`); seq2seq logits cover the target tokens alone.
    """
    model.eval()
    rows = encoded.select_columns([c for c in LM_INPUTS if c in encoded.column_names])
    total, count = 0.0, 0
    batches = model_batches(
        model,
        rows,
        encoded["length"],
        collator,
        batch_size,
        max_tokens,
        progress=progress,
        desc="scoring",
    )
    for _, batch in batches:
        labels = batch.pop("labels")
        if causal and supports_position_loss(model):  # no (tokens x vocabulary) logits
            nll_t, n = causal_nll(model, {**batch, "use_cache": False}, labels)
            nll = float(nll_t)
        else:
            if not causal:  # the decoder's inputs are the labels shifted right
                batch["labels"] = labels
            nll, n = _nll(model(**batch).logits, labels, causal)
        total, count = total + nll, count + n
    return total, count


def generation_kwargs(options: Any, tokenizer: Any, model: nn.Module) -> dict[str, Any]:
    """generate() settings from the task options; stop at the tokenizer's EOS as well as the
    model's (a fallback chat template ends turns with the tokenizer's)."""
    kwargs: dict[str, Any] = {
        "max_new_tokens": options.max_new_tokens,
        "do_sample": options.do_sample,
        "num_beams": options.num_beams,
        "pad_token_id": tokenizer.pad_token_id,
        # KV cache on even if training switched it off (gradient checkpointing does): each new
        # token then costs one position, not the whole prefix again
        "use_cache": True,
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
    lengths = [len(p) for p in prompts]
    for indices in sorted_batches(lengths, batch_size, progress=progress, desc="generating"):
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
    return out
