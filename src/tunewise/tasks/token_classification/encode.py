"""Texts with word spans → model inputs, split into windows of whole words instead of truncated.

A sentence (or a raw-text paragraph at prediction time) longer than `max_length` tokens is cut
at word boundaries into consecutive windows that each fit, so no word loses its label or its
prediction. Each window is one model row; `example` says which input it came from and
`word_ids` hold the input's own word indices, so predictions merge back per word. Only a
single word longer than a whole window is still truncated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunewise.tasks.token_classification.align import token_words


def word_windows(token_counts: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Consecutive [start, end) word ranges whose token counts sum to at most `budget` (a word
    over budget gets a range of its own)."""
    windows: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, n in enumerate(token_counts):
        if i > start and used + n > budget:
            windows.append((start, i))
            start, used = i, 0
        used += n
    if start < len(token_counts):
        windows.append((start, len(token_counts)))
    return windows


def encode_words(
    tokenizer: Any, texts: Sequence[str], spans: Sequence[Sequence[Sequence[int]]], max_length: int
) -> list[dict[str, Any]]:
    """Model rows for a batch of texts: input ids, attention mask (token type ids when the
    tokenizer makes them), each token's word index (None: special or between words) and the
    index of the text in the batch (`example`). One batched tokenizer call covers every text
    that fits; only longer ones are re-tokenized window by window."""
    batch = tokenizer(list(texts), return_offsets_mapping=True, return_special_tokens_mask=True)
    rows = []
    for i, (text, word_spans) in enumerate(zip(texts, spans, strict=True)):
        enc = {k: batch[k][i] for k in batch}
        word_ids = token_words(enc["offset_mapping"], word_spans)
        if len(enc["input_ids"]) <= max_length:
            rows.append(_row(enc, word_ids, i))
            continue
        # Tokens per word, counting those between two words (e.g. a lone space token in
        # byte-level BPE) with the word before them, as they fall inside a window.
        counts, owner = [0] * len(word_spans), None
        for w, special in zip(word_ids, enc["special_tokens_mask"], strict=True):
            owner = w if w is not None else owner
            if not special and owner is not None:
                counts[owner] += 1
        budget = max(max_length - tokenizer.num_special_tokens_to_add(), 1)
        for first, end in word_windows(counts, budget):
            lo, hi = word_spans[first][0], word_spans[end - 1][1]
            local = [(s - lo, e - lo) for s, e in word_spans[first:end]]
            enc = tokenizer(
                text[lo:hi], return_offsets_mapping=True, truncation=True, max_length=max_length
            )
            ids = token_words(enc["offset_mapping"], local)
            rows.append(_row(enc, [None if w is None else w + first for w in ids], i))
    return rows


def _row(enc: Any, word_ids: list[int | None], example: int) -> dict[str, Any]:
    row = {k: list(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    row["word_ids"] = word_ids
    row["example"] = example
    return row
