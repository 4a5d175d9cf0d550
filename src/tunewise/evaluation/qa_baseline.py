"""The first-sentence baseline for QA: answer every question with the context's first sentence.

It needs no model and gets some F1 from word overlap alone, so a QA model that does not beat it
has learned nothing useful. The sentence splitter is a hand-written regex (end punctuation, then
space, then an upper-case letter, digit or quote) because nltk's punkt model is a separate
download this offline setup does not have; it is only a baseline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tunewise.evaluation.squad import squad_scores

_SENTENCE_END = re.compile(r"[.!?][\"')\]]?(?=\s+[A-Z0-9\"'(\[])")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "gen", "col", "lt", "no", "vs"}


def first_sentence(context: str) -> str:
    """The context up to its first sentence end (the whole context if it has none)."""
    context = context.strip()
    for match in _SENTENCE_END.finditer(context):
        words = context[: match.start()].split()
        word = words[-1].lower().rstrip(".") if words else ""
        if word in _ABBREVIATIONS or len(word) == 1 or "." in word:  # Mr. / J. / U.S.
            continue
        return context[: match.end()]
    return context


def first_sentence_scores(
    contexts: Sequence[str], references: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """SQuAD EM / F1 (0-100) of the first-sentence baseline."""
    return squad_scores([first_sentence(c) for c in contexts], references)
