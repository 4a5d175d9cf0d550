"""The official SQuAD v1.1 / v2.0 answer normalisation and EM / F1 scoring.

Hand-written because it must match the official `evaluate-v2.0.py` script character for
character (lower-case, strip punctuation, drop the articles a/an/the, collapse whitespace; token
F1 on the normalised bag of words; max over the gold answers). No installed library ships it
(`evaluate`'s squad metric downloads the script at run time, which an offline machine cannot do).
Both extractive and generative QA score with this module, so their numbers are comparable.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower-case, remove punctuation, articles and extra whitespace (official order)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def _exact_one(pred: str, gold: str) -> float:
    return float(normalize_answer(pred) == normalize_answer(gold))


def _f1_one(pred: str, gold: str) -> float:
    pred_toks, gold_toks = _tokens(pred), _tokens(gold)
    if not pred_toks or not gold_toks:
        # SQuAD 2.0: an empty answer (no-answer) scores 1 only against an empty gold answer.
        return float(pred_toks == gold_toks)
    common = Counter(pred_toks) & Counter(gold_toks)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_toks)
    recall = same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def _golds(golds: Sequence[str]) -> list[str]:
    # Official v2 script: a question without answers (unanswerable) has the single gold "".
    if isinstance(golds, str):
        raise TypeError("golds must be a list of answer strings, not a single string")
    return [g for g in golds if normalize_answer(g)] or [""]


def exact_match(pred: str, golds: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0."""
    return max(_exact_one(pred, g) for g in _golds(golds))


def f1(pred: str, golds: Sequence[str]) -> float:
    """Best token-overlap F1 (0-1) of the prediction against any gold answer."""
    return max(_f1_one(pred, g) for g in _golds(golds))


def squad_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """Corpus EM and F1 on SQuAD's 0-100 scale, averaged over questions.

    `references[i]` is the list of gold answers of question i (empty list: unanswerable, and
    only an empty prediction is right).
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    n = len(predictions)
    if n == 0:
        return {"exact_match": 0.0, "f1": 0.0, "n_examples": 0}
    em = sum(exact_match(p, g) for p, g in zip(predictions, references, strict=True))
    f = sum(f1(p, g) for p, g in zip(predictions, references, strict=True))
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f / n, "n_examples": n}
