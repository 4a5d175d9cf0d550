"""Windowing, offsets and n-best decoding of extractive QA: property tests (hypothesis) on the
real minilm tokenizer, plus hand-built cases for the decoder's choices."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunewise.errors import ConfigError
from tunewise.tasks.extractive_qa.decode import decode_question, window_candidates
from tunewise.tasks.extractive_qa.windows import (
    WindowSpec,
    char_span_to_tokens,
    encode_windows,
    null_index,
)


def tokens_to_char_span(offsets: list[tuple[int, int]], first: int, last: int) -> tuple[int, int]:
    """Characters [start, end) of the context that tokens first..last cover (the inverse of
    char_span_to_tokens; a test helper)."""
    return offsets[first][0], offsets[last][1]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from tunewise.errors import ModelLoadError
    from tunewise.models import resolve

    try:
        return AutoTokenizer.from_pretrained(resolve("minilm").path)
    except ModelLoadError as exc:  # the packaged model is a dev dependency
        pytest.skip(str(exc))


# Words of letters (accented ones too), digits and punctuation: the uncased tokenizer lower-cases,
# strips accents and splits punctuation, so offsets must still point into the raw text.
WORD = st.text(
    alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDEFGZéüñ0123456789.,;'-()%$")),
    min_size=1,
    max_size=12,
)


@st.composite
def qa_example(draw):
    words = draw(st.lists(WORD, min_size=1, max_size=80))
    seps = draw(st.lists(st.sampled_from([" ", "  ", "\n", " \t"]), min_size=len(words)))
    context, starts = "", []
    for w, sep in zip(words, seps, strict=False):
        starts.append(len(context))
        context += w + sep
    first = draw(st.integers(0, len(words) - 1))
    last = draw(st.integers(first, min(first + 5, len(words) - 1)))
    a_start = starts[first]
    a_end = starts[last] + len(words[last])
    question = " ".join(draw(st.lists(WORD, min_size=1, max_size=30)))
    max_length = draw(st.integers(24, 64))
    stride = draw(st.integers(0, 12))
    return question, context, a_start, a_end, max_length, stride


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ex=qa_example())
def test_answer_round_trips_in_some_window(tokenizer, ex) -> None:
    question, context, a_start, a_end, max_length, stride = ex
    spec = WindowSpec.build(tokenizer, max_length, stride, 64)
    answer = {"text": [context[a_start:a_end]], "answer_start": [a_start]}
    out = encode_windows(tokenizer, [question], [context], spec, [answer])
    assert all(n <= max_length for n in out["length"])
    assert set(out["example_index"]) == {0}
    exact = 0
    for w, offsets in enumerate(out["offsets"]):
        assert len(offsets) == out["length"][w] == len(out["input_ids"][w])
        span = char_span_to_tokens(offsets, a_start, a_end)
        s, e = out["start_positions"][w], out["end_positions"][w]
        if span is None:  # the window lacks (part of) the answer: the label is [CLS]
            assert s == e == null_index(out["input_ids"][w], tokenizer)
            continue
        assert (s, e) == span
        assert tokens_to_char_span(offsets, s, e) == (a_start, a_end)
        exact += 1
    # Windows overlap by `stride` tokens, so an answer of up to stride + 1 tokens always lies
    # whole inside one of them (a longer one may straddle every boundary: sliding windows
    # cannot help that, which is why doc_stride should exceed the longest answer).
    alone = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
    answer_tokens = [o for o in alone["offset_mapping"] if o[1] > a_start and o[0] < a_end]
    if len(answer_tokens) <= spec.stride + 1 or len(out["offsets"]) == 1:
        assert exact >= 1, "no window holds the whole answer"
    # the windows together cover every context token
    covered = sorted({tuple(o) for offs in out["offsets"] for o in offs if o[0] >= 0})
    assert covered == sorted({tuple(o) for o in alone["offset_mapping"]})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ex=qa_example(), seed=st.integers(0, 2**16), n_best=st.integers(1, 8), max_len=st.integers(1, 6)
)
def test_decoded_span_stays_inside_one_window(tokenizer, ex, seed, n_best, max_len) -> None:
    question, context, _, _, max_length, stride = ex
    spec = WindowSpec.build(tokenizer, max_length, stride, 64)
    out = encode_windows(tokenizer, [question], [context], spec)
    rng = np.random.default_rng(seed)
    windows = []
    for w, offsets in enumerate(out["offsets"]):
        n = len(offsets)
        windows.append((w, rng.normal(size=n), rng.normal(size=n), offsets, 0))
    pred = decode_question(context, windows, n_best, max_len, allow_null=False)
    assert 0 <= pred["start"] < pred["end"] <= len(context)
    assert pred["answer"] == context[pred["start"] : pred["end"]]
    assert 0 < pred["score"] <= 1
    # some window has tokens starting and ending exactly there, at most max_len tokens apart
    ok = False
    for offsets in out["offsets"]:
        starts = [i for i, o in enumerate(offsets) if o[0] == pred["start"]]
        ends = [i for i, o in enumerate(offsets) if o[1] == pred["end"] and o[0] >= 0]
        ok |= any(0 <= e - s < max_len for s in starts for e in ends)
    assert ok


def test_question_is_cut_to_leave_room(tokenizer) -> None:
    spec = WindowSpec.build(tokenizer, 32, 8, 64)
    assert spec.max_question_tokens == 32 - 3 - 8 - 1
    out = encode_windows(tokenizer, ["why " * 100], ["a b c d e f g h " * 10], spec)
    assert len(out["input_ids"]) > 1 and max(out["length"]) <= 32
    with pytest.raises(ConfigError, match="doc_stride"):
        WindowSpec.build(tokenizer, 16, 12, 64)


def _window(offsets, start, end):
    return np.asarray(start, dtype=float), np.asarray(end, dtype=float), offsets


OFFS = [
    (-1, -1),
    (-1, -1),
    (-1, -1),
    (0, 3),
    (4, 10),
    (11, 18),
    (-1, -1),
]  # [CLS] q [SEP] ctx [SEP]
CTX = "The Denver Broncos"


def test_decoder_picks_best_valid_pair() -> None:
    # Highest start logit is on a question token (index 1): never chosen. End before start is
    # invalid, so (4, 5) "Denver Broncos" wins with 3 + 2 over (5, 5) with 1.5 + 2.
    start = [0, 9, 0, 0, 3, 1.5, 0]
    end = [0, 9, 0, 0, 0, 2, 9]
    s, e, o = _window(OFFS, start, end)
    pred = decode_question(CTX, [(0, s, e, o, 0)], 20, 30, allow_null=False)
    assert (pred["answer"], pred["start"], pred["end"]) == ("Denver Broncos", 4, 18)
    # softmax over the candidates (4,5)=5, (5,5)=3.5, (4,4)=3, (3,5)=2, (3,4)=0, (3,3)=0
    logits = np.array([5, 3.5, 3, 2, 0, 0], dtype=float)
    assert pred["score"] == pytest.approx(np.exp(5) / np.exp(logits).sum(), abs=1e-6)
    # a one-token limit forbids the two-token span
    assert decode_question(CTX, [(0, s, e, o, 0)], 20, 1, False)["answer"] == "Broncos"
    cands = window_candidates(s, e, o, n_best=2, max_answer_tokens=30)
    assert [(c.start, c.end) for c in cands] == [(4, 18), (11, 18)]


def test_decoder_null_answer_and_threshold() -> None:
    start = [4, 0, 0, 0, 1, 0, 0]
    end = [4, 0, 0, 0, 1, 0, 0]  # null 8 vs best span (4,4) = 2
    s, e, o = _window(OFFS, start, end)
    pred = decode_question(CTX, [(0, s, e, o, 0)], 20, 30, allow_null=True)
    assert pred == {"answer": "", "score": pred["score"], "start": -1, "end": -1}
    assert pred["score"] > 0.9
    # a threshold above the margin (6) keeps the span; SQuAD 1.1 mode never answers ""
    assert decode_question(CTX, [(0, s, e, o, 0)], 20, 30, True, 7.0)["answer"] == "Denver"
    assert decode_question(CTX, [(0, s, e, o, 0)], 20, 30, False)["answer"] == "Denver"


def test_decoder_uses_the_best_window_and_min_null() -> None:
    a = _window(OFFS, [1, 0, 0, 0, 2, 0, 0], [1, 0, 0, 0, 2, 0, 0])
    b = _window(OFFS, [9, 0, 0, 0, 0, 5, 0], [9, 0, 0, 0, 0, 5, 0])
    pred = decode_question(CTX, [(0, *a, 0), (1, *b, 0)], 20, 30, allow_null=True)
    # best span: window b's (5,5) = 10 "Broncos"; null = min(2, 18) = 2 -> the span wins
    assert pred["answer"] == "Broncos" and (pred["start"], pred["end"]) == (11, 18)


def test_collator_pads_right_even_for_left_padding_tokenizers(tokenizer) -> None:
    import copy

    from tunewise.inference.batches import RightPadCollator

    left = copy.deepcopy(tokenizer)
    left.padding_side = "left"
    spec = WindowSpec.build(left, 64, 8, 64)
    answers = [{"text": ["b"], "answer_start": [2]}, {"text": ["d"], "answer_start": [6]}]
    out = encode_windows(left, ["q", "a longer question"], ["a b c", "a b c d e"], spec, answers)
    rows = [
        {k: out[k][i] for k in ("input_ids", "attention_mask", "start_positions")} for i in (0, 1)
    ]
    batch = RightPadCollator(left)(rows)
    assert left.padding_side == "left"  # the tokenizer's own side is restored
    assert batch["input_ids"].shape[0] == 2
    for i in (0, 1):
        n = out["length"][i]
        assert batch["input_ids"][i, :n].tolist() == out["input_ids"][i]  # real tokens first
        assert batch["attention_mask"][i, n:].sum() == 0
        s = int(batch["start_positions"][i])
        start = answers[i]["answer_start"][0]
        assert tokens_to_char_span(out["offsets"][i], s, s) == (start, start + 1)
