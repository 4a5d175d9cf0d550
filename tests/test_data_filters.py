"""Length bounds (characters, words, real tokenizer tokens) and the language filter."""

from __future__ import annotations

import json

import numpy as np

from conftest import write_jsonl
from tunewise.data import filters
from tunewise.data.prepare import prepare
from tunewise.prepare_options import FilterOptions


def test_bounds_give_the_first_failed_reason():
    chars, tokens = np.array([3, 10, 50, 200]), np.array([1, 2, 9, 40])
    opts = FilterOptions(min_chars=5, max_chars=100, min_tokens=2, max_tokens=30)
    assert filters.reasons(chars, tokens, None, opts).tolist() == [
        "shorter than 5 chars",
        "",
        "",
        "longer than 100 chars",
    ]
    only_tokens = FilterOptions(min_tokens=3)
    assert filters.reasons(chars, tokens, None, only_tokens).tolist()[:2] == [
        "fewer than 3 tokens",
        "fewer than 3 tokens",
    ]
    assert not filters.active(FilterOptions()) and filters.active(only_tokens)


def test_token_counts_from_a_real_tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    chars, tokens = filters.measure(["good film", "zzzqqq good"], tok)
    assert chars == [9, 11]
    assert tokens[0] == 2 and tokens[1] >= 2  # unknown word: [UNK] pieces, no special tokens
    assert filters.measure(["a b  c"])[1] == [3]  # default: whitespace words


def test_language_filter_and_removed_reasons(tmp_path):
    records = [
        {"text": "This is a perfectly ordinary English sentence about the weather.", "label": "a"},
        {"text": "Dies ist ein ganz gewöhnlicher deutscher Satz über das Wetter.", "label": "b"},
        {"text": "Ceci est une phrase française tout à fait ordinaire sur la météo.", "label": "a"},
        {"text": "Another plain English sentence that talks about the rain today.", "label": "b"},
        {"text": "ok", "label": "a"},
    ]
    path = write_jsonl(tmp_path / "d.jsonl", records)
    opts = {"filter": {"languages": ["en"], "min_chars": 5}, "split": [0.5, 0.5]}
    result = prepare(path, tmp_path / "out", options=opts)
    assert result.counts["n_filtered"] == 3 and result.counts["n_output"] == 2
    removed = [json.loads(x) for x in (tmp_path / "out/removed.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in removed] == [
        (2, "language de not in ['en']"),
        (3, "language fr not in ['en']"),
        (5, "shorter than 5 chars"),
    ]
