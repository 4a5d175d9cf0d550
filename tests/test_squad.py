"""The SQuAD normalisation and scoring against values computed by hand from the official rules."""

from __future__ import annotations

import pytest

from tunewise.evaluation.squad import exact_match, f1, normalize_answer, squad_scores


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  a  cat,  an apple   and THE dog. ", "cat apple and dog"),
        ("theater", "theater"),  # 'the' only as a whole word
        ("Denver Broncos'", "denver broncos"),
        ("1,000", "1000"),  # punctuation removed inside numbers
        ("", ""),
    ],
)
def test_normalize_answer(raw: str, normalised: str) -> None:
    assert normalize_answer(raw) == normalised


def test_exact_match_any_gold() -> None:
    assert exact_match("the Broncos", ["Denver Broncos", "Broncos"]) == 1.0
    assert exact_match("Broncos win", ["Denver Broncos", "Broncos"]) == 0.0


def test_f1_hand_computed() -> None:
    # pred tokens: denver broncos won; gold: denver broncos -> P=2/3, R=1 -> F1=0.8
    assert f1("Denver Broncos won", ["Denver Broncos"]) == pytest.approx(0.8)
    # max over golds: vs "broncos" P=1/3 R=1 -> 0.5; vs "won game" P=1/3 R=1/2 -> 0.4
    assert f1("Denver Broncos won", ["Broncos", "won game"]) == pytest.approx(0.5)
    # tokens count by multiplicity: common = {x:1, y:1} -> P=R=2/3
    assert f1("x x y", ["x y y"]) == pytest.approx(2 / 3)
    assert f1("nothing shared", ["Denver"]) == 0.0


def test_unanswerable_scoring() -> None:
    # No gold answer: only the empty prediction is right (official v2 rule).
    assert exact_match("", []) == 1.0 and f1("", []) == 1.0
    assert exact_match("Denver", []) == 0.0 and f1("Denver", []) == 0.0
    # Gold answers that normalise to nothing count as no answer.
    assert f1("", ["the", "."]) == 1.0
    assert f1("", ["Denver"]) == 0.0


def test_squad_scores_corpus() -> None:
    preds = ["Denver Broncos", "Denver Broncos won", "Paris", ""]
    refs = [["Denver Broncos"], ["Denver Broncos"], ["London"], []]
    out = squad_scores(preds, refs)
    assert out["n_examples"] == 4
    assert out["exact_match"] == pytest.approx(100 * 2 / 4)
    assert out["f1"] == pytest.approx(100 * (1 + 0.8 + 0 + 1) / 4)


def test_squad_scores_errors() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1"):
        squad_scores(["a", "b"], [["a"]])
    with pytest.raises(TypeError):
        exact_match("a", "a")  # type: ignore[arg-type]
    assert squad_scores([], [])["n_examples"] == 0
