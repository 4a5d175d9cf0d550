"""Length bounds (characters, tokens) and an optional language filter.

Token counts come from a real tokenizer when one is named (what the model will see), otherwise
from whitespace-separated words. Language identification uses py3langid, which ships its model
inside the package (no download).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tunewise.prepare_options import FilterOptions


def active(options: FilterOptions) -> bool:
    o = options
    bounds = (o.min_chars, o.max_chars, o.min_tokens, o.max_tokens)
    return any(b is not None for b in bounds) or bool(o.languages)


def measure(texts: list[str], tokenizer: Any | None = None) -> tuple[list[int], list[int]]:
    """(characters, tokens) per text."""
    chars = [len(t) for t in texts]
    if tokenizer is None:
        return chars, [len(t.split()) for t in texts]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return chars, [len(ids) for ids in encoded]


def language_of(texts: list[str]) -> list[str]:
    import py3langid

    return [py3langid.classify(t)[0] for t in texts]


def load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    from tunewise.models import resolve  # aliases resolve to installed model directories

    return AutoTokenizer.from_pretrained(resolve(name).path)


def reasons(
    chars: np.ndarray, tokens: np.ndarray, langs: np.ndarray | None, options: FilterOptions
) -> np.ndarray:
    """Why each record is filtered out ('' to keep it); the first failed bound wins."""
    o = options
    out = np.full(len(chars), "", dtype=object)
    checks = [
        (
            o.min_chars is not None and chars < (o.min_chars or 0),
            f"shorter than {o.min_chars} chars",
        ),
        (
            o.max_chars is not None and chars > (o.max_chars or 0),
            f"longer than {o.max_chars} chars",
        ),
        (
            o.min_tokens is not None and tokens < (o.min_tokens or 0),
            f"fewer than {o.min_tokens} tokens",
        ),
        (
            o.max_tokens is not None and tokens > (o.max_tokens or 0),
            f"more than {o.max_tokens} tokens",
        ),
    ]
    for mask, why in checks:
        if mask is not False:
            out[(out == "") & np.asarray(mask)] = why
    if o.languages and langs is not None:
        wrong = ~np.isin(langs, o.languages)
        for i in np.flatnonzero(wrong & (out == "")):
            out[i] = f"language {langs[i]} not in {o.languages}"
    return out
