"""From per-window start / end logits to one answer per question (n-best span decoding).

Hand-written after HF's `postprocess_qa_predictions` (an example script, not a library API):
in every window score each span of context tokens (start <= end, at most `max_answer_tokens`
tokens) as start + end logit, keep the `n_best`, and pick the best over all windows of the
question. With unanswerable questions allowed, the
no-answer score is the lowest [CLS] start + end over the windows, and it wins when it beats the
best span by more than `null_threshold`. `score` is the softmax of the winner over all
candidates (spans and no-answer), so it reads as a probability.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from tunewise.inference.batches import MODEL_INPUTS, model_batches


@dataclass(frozen=True)
class Candidate:
    start: int  # characters [start, end) of the context; -1, -1 for "no answer"
    end: int
    logit: float
    window: int  # row of the window it came from


@torch.inference_mode()
def window_logits(
    model: nn.Module, encoded: Any, collator: Any, batch_size: int = 64, progress: bool = False
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(start, end) logits of every window, unpadded, in row order; batches grouped by length."""
    model.eval()
    columns = [c for c in MODEL_INPUTS if c in encoded.column_names]
    rows = encoded.select_columns(columns)
    lengths = encoded["length"]
    out: list[Any] = [None] * len(encoded)
    batches = model_batches(
        model, rows, lengths, collator, batch_size, keys=MODEL_INPUTS, progress=progress, unit="win"
    )
    for indices, batch in batches:
        result = model(**batch)
        starts = result.start_logits.float().cpu().numpy()
        ends = result.end_logits.float().cpu().numpy()
        for j, i in enumerate(indices):
            out[i] = (starts[j, : lengths[i]], ends[j, : lengths[i]])
    return out


def window_candidates(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: list[list[int]],
    n_best: int,
    max_answer_tokens: int,
    window: int = 0,
) -> list[Candidate]:
    """The `n_best` highest-scoring spans of one window, searched exhaustively over every
    (start, end) pair of context tokens with start <= end < start + max_answer_tokens (HF's
    script only pairs the top-k starts with the top-k ends, and can find no valid pair)."""
    in_context = np.array([o[0] >= 0 for o in offsets], dtype=bool)
    n = len(offsets)
    starts, ends, scores = [], [], []
    for width in range(min(max_answer_tokens, n)):
        s = np.arange(n - width)
        e = s + width
        ok = in_context[s] & in_context[e]
        starts.append(s[ok])
        ends.append(e[ok])
        scores.append(start_logits[s[ok]] + end_logits[e[ok]])
    if not starts or not sum(len(x) for x in scores):
        return []
    all_s, all_e, all_scores = (np.concatenate(x) for x in (starts, ends, scores))
    k = min(n_best, len(all_scores))
    top = np.argpartition(-all_scores, k - 1)[:k]
    top = top[np.argsort(-all_scores[top], kind="stable")]
    return [
        Candidate(offsets[all_s[i]][0], offsets[all_e[i]][1], float(all_scores[i]), window)
        for i in top.tolist()
    ]


def decode_question(
    context: str,
    windows: list[tuple[int, np.ndarray, np.ndarray, list[list[int]], int]],
    n_best: int,
    max_answer_tokens: int,
    allow_null: bool,
    null_threshold: float = 0.0,
) -> dict[str, Any]:
    """One question's answer from its windows, each (row, start, end, offsets, null token)."""
    spans: list[Candidate] = []
    null_logit = np.inf
    for row, start, end, offsets, null in windows:
        spans += window_candidates(start, end, offsets, n_best, max_answer_tokens, row)
        null_logit = min(null_logit, float(start[null] + end[null]))
    spans.sort(key=lambda c: -c.logit)
    spans = spans[:n_best]
    candidates = list(spans)
    if allow_null and np.isfinite(null_logit):
        candidates.append(Candidate(-1, -1, null_logit, -1))
    if not candidates:  # no window had any context token (empty context after truncation)
        return {"answer": "", "score": 0.0, "start": -1, "end": -1}
    logits = np.array([c.logit for c in candidates])
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    best = 0
    if allow_null and (not spans or null_logit - spans[0].logit > null_threshold):
        best = len(candidates) - 1
    chosen = candidates[best]
    if chosen.start < 0:
        return {"answer": "", "score": round(float(probs[best]), 6), "start": -1, "end": -1}
    return {
        "answer": context[chosen.start : chosen.end],
        "score": round(float(probs[best]), 6),
        "start": chosen.start,
        "end": chosen.end,
    }


def decode_all(
    contexts: list[str],
    encoded: Any,
    logits: list[tuple[np.ndarray, np.ndarray]],
    null_tokens: list[int],
    n_best: int,
    max_answer_tokens: int,
    allow_null: bool,
    null_threshold: float = 0.0,
) -> list[dict[str, Any]]:
    """Answers for every question, in question order."""
    by_question: dict[int, list] = defaultdict(list)
    offsets = encoded["offsets"]
    for row, (q, (start, end)) in enumerate(zip(encoded["example_index"], logits, strict=True)):
        by_question[q].append((row, start, end, offsets[row], null_tokens[row]))
    return [
        decode_question(ctx, by_question[q], n_best, max_answer_tokens, allow_null, null_threshold)
        for q, ctx in enumerate(contexts)
    ]
