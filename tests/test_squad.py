"""SQuAD scoring (against values computed by hand from the official rules) and the SQuAD
JSON / JSONL readers (records, answer offsets, error messages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunewise.errors import DataError
from tunewise.evaluation.qa_baseline import first_sentence, first_sentence_scores
from tunewise.evaluation.squad import exact_match, f1, normalize_answer, squad_scores
from tunewise.tasks.extractive_qa.squad import nearest_occurrence, read_qa, split_by_article


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


# -- readers -----------------------------------------------------------------------------------


CONTEXT = "Super Bowl 50 was played in Santa Clara. The Broncos won the game."


def _squad(path: Path, qas: list[dict], context: str = CONTEXT, version: str = "1.1") -> Path:
    data = {
        "version": version,
        "data": [
            {"title": "Other", "paragraphs": [{"context": "Nothing here.", "qas": []}]},
            {"title": "Super_Bowl", "paragraphs": [{"context": context, "qas": qas}]},
        ],
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _qa(qid: str, text: str, start: int, **kw) -> dict:
    return {
        "id": qid,
        "question": "Who won?",
        "answers": [{"text": text, "answer_start": start}],
        **kw,
    }


def test_read_squad_json(tmp_path: Path) -> None:
    path = _squad(
        tmp_path / "dev.json", [_qa("q1", "The Broncos", 41), _qa("q2", "Santa Clara", 28)]
    )
    records = read_qa(path, "squad")
    assert [r["id"] for r in records] == ["q1", "q2"]
    assert records[0]["title"] == "Super_Bowl"
    assert records[0]["answers"] == {"text": ["The Broncos"], "answer_start": [41]}
    assert records[1]["context"] == CONTEXT and not records[1]["is_impossible"]
    # auto format reads the same file; unlabelled reading needs no answers
    assert read_qa(path)[0]["answers"] == records[0]["answers"]
    assert "answers" not in read_qa(path, labelled=False)[0]


def test_read_squad_v2_unanswerable(tmp_path: Path) -> None:
    qas = [
        _qa("q1", "The Broncos", 41),
        {
            "id": "q2",
            "question": "Who lost?",
            "answers": [],
            "is_impossible": True,
            "plausible_answers": [{"text": "Santa", "answer_start": 0}],
        },
    ]
    records = read_qa(_squad(tmp_path / "v2.json", qas, version="v2.0"))
    assert records[1]["is_impossible"] and records[1]["answers"] == {"text": [], "answer_start": []}


def test_misaligned_answer_policies(tmp_path: Path) -> None:
    path = _squad(tmp_path / "off.json", [_qa("q1", "The Broncos", 43)])  # true start is 41
    assert read_qa(path)[0]["answers"]["answer_start"] == [41]  # default: fixed
    with pytest.raises(DataError) as err:
        read_qa(path, answer_policy="error")
    msg = str(err.value)
    assert "off.json" in msg and "article 1" in msg and "paragraph 0" in msg and "'q1'" in msg
    assert "answers[0].answer_start" in msg and "43" in msg and "occurs at 41" in msg
    with pytest.raises(DataError, match="holds no questions"):
        read_qa(path, answer_policy="skip")  # its only answer was dropped


def test_answer_not_in_context_is_an_error(tmp_path: Path) -> None:
    path = _squad(tmp_path / "bad.json", [_qa("q9", "Panthers", 5)])
    with pytest.raises(DataError, match=r"q9.*'Panthers'.*not in the context at all"):
        read_qa(path)


@pytest.mark.parametrize(
    ("qa", "fragment"),
    [
        ({"id": "q1", "answers": []}, "field 'question' must be a non-empty string"),
        ({"id": "q1", "question": "Who?"}, "field 'answers' is missing"),
        (
            {"id": "q1", "question": "Who?", "answers": [{"text": "Broncos"}]},
            "field 'answers[0].answer_start' must be an integer (got None)",
        ),
        (
            {"id": "q1", "question": "Who?", "answers": [{"text": "", "answer_start": 0}]},
            "field 'answers[0].text' must be a non-empty string",
        ),
    ],
)
def test_reader_errors_name_the_field(tmp_path: Path, qa: dict, fragment: str) -> None:
    path = _squad(tmp_path / "e.json", [qa])
    with pytest.raises(DataError) as err:
        read_qa(path)
    assert fragment in str(err.value) and "e.json, article 1" in str(err.value)


def test_not_squad_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": "oops"}]}))
    with pytest.raises(DataError, match=r"article 0 .*field 'paragraphs' must be a list"):
        read_qa(path)
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON at line 1"):
        read_qa(path)
    with pytest.raises(DataError, match="does not exist"):
        read_qa(tmp_path / "missing.json")


def test_read_jsonl_both_answer_layouts(tmp_path: Path) -> None:
    rows = [
        {
            "question": "Who won?",
            "context": CONTEXT,
            "answers": {"text": ["The Broncos"], "answer_start": [41]},
        },
        {
            "id": "x",
            "question": "Where?",
            "context": CONTEXT,
            "answers": [{"text": "Santa Clara", "answer_start": 28}],
        },
        {"question": "Who lost?", "context": CONTEXT, "answers": {"text": [], "answer_start": []}},
    ]
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = read_qa(path)
    assert records[0]["id"] == "qa-1" and records[1]["id"] == "x"
    assert records[1]["answers"] == {"text": ["Santa Clara"], "answer_start": [28]}
    assert records[2]["is_impossible"]
    path.write_text(
        json.dumps({"question": "Who?", "context": CONTEXT, "answers": {"text": ["a"]}})
    )
    with pytest.raises(DataError, match=r"qa.jsonl, line 1: field 'answers' must hold equally"):
        read_qa(path)
    path.write_text(json.dumps({"question": "Who?", "answers": []}) + "\n")
    with pytest.raises(DataError, match=r"line 1: field 'context' must be a non-empty string"):
        read_qa(path)


def test_nearest_occurrence() -> None:
    assert nearest_occurrence("ab ab ab", "ab", 4) == 3
    assert nearest_occurrence("ab ab ab", "ab", 0) == 0
    assert nearest_occurrence("ab", "zz", 0) is None


def test_split_by_article_keeps_articles_whole(tmp_path: Path) -> None:
    path = _squad(tmp_path / "all.json", [_qa("q1", "The Broncos", 41)])
    train, held = split_by_article(path, 1, tmp_path / "split")
    assert [a["title"] for a in json.loads(train.read_text())["data"]] == ["Other"]
    assert [r["id"] for r in read_qa(held)] == ["q1"]
    with pytest.raises(DataError, match="cannot hold back 2 of its 2 articles"):
        split_by_article(path, 2, tmp_path / "split")


@pytest.mark.parametrize(
    ("context", "first"),
    [
        ("Super Bowl 50 was a game. The Broncos won.", "Super Bowl 50 was a game."),
        ("Mr. Smith went to Washington. He won.", "Mr. Smith went to Washington."),
        ("It cost $3.5 million in 1990. Then it rose.", "It cost $3.5 million in 1990."),
        ('He said "stop." Then left.', 'He said "stop."'),
        ("The U.S. Army won. Then.", "The U.S. Army won."),
        ("no end punctuation", "no end punctuation"),
    ],
)
def test_first_sentence(context: str, first: str) -> None:
    assert first_sentence(context) == first


def test_first_sentence_scores() -> None:
    contexts = ["Super Bowl 50 was a game. The Broncos won.", "Paris is big. It is in France."]
    # 1: "super bowl 50 was game" vs "super bowl 50": P=3/5, R=1 -> F1=0.75; 2: no overlap
    out = first_sentence_scores(contexts, [["Super Bowl 50"], ["France"]])
    assert out == {"exact_match": 0.0, "f1": pytest.approx(100 * 0.75 / 2), "n_examples": 2}


def test_json_list_of_flat_records(tmp_path: Path) -> None:
    rec = {
        "question": "Who won?",
        "context": CONTEXT,
        "answers": [{"text": "Santa Clara", "answer_start": 28}],
    }
    for payload in ([rec], {"data": [rec]}):
        path = tmp_path / "flat.json"
        path.write_text(json.dumps(payload))
        records = read_qa(path)
        assert records[0]["answers"] == {"text": ["Santa Clara"], "answer_start": [28]}
        assert records[0]["id"] == "flat-0"
