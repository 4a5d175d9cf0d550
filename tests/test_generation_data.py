"""Readers for generation data (Alpaca, chat, QA, pairs) and the text metrics, against
hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from generation_fixtures import write
from tunewise.errors import DataError
from tunewise.evaluation.text_metrics import bleu_chrf, perplexity, rouge_scores
from tunewise.tasks.generation.inference import nll_from_logits
from tunewise.tasks.generation.readers import read_chats, read_instructions, read_pairs, read_qa

# -- readers -------------------------------------------------------------------------------------


def test_alpaca_json_and_jsonl_read_the_same(tmp_path):
    records = [
        {"instruction": "Add", "input": "2 and 3", "output": "5"},
        {"instruction": "Say hi", "output": "hi"},  # no input field at all
    ]
    a = read_instructions(write(tmp_path / "a.json", records))
    b = read_instructions(write(tmp_path / "a.jsonl", records))
    assert [{k: r[k] for k in ("instruction", "input", "output")} for r in a] == [
        {"instruction": "Add", "input": "2 and 3", "output": "5"},
        {"instruction": "Say hi", "input": "", "output": "hi"},
    ]
    assert [r["line"] for r in a] == [0, 1]  # JSON: record index
    assert [r["line"] for r in b] == [1, 2]  # JSONL: line number
    assert [r["output"] for r in b] == ["5", "hi"]


@pytest.mark.parametrize(
    ("name", "expected"), [("bad.json", "bad.json, record 1"), ("bad.jsonl", "bad.jsonl, line 2")]
)
def test_alpaca_missing_output_names_file_record_and_field(tmp_path, name, expected):
    path = write(tmp_path / name, [{"instruction": "a", "output": "b"}, {"instruction": "c"}])
    with pytest.raises(DataError) as err:
        read_instructions(path)
    assert expected in str(err.value) and "'output'" in str(err.value)
    # unlabelled reading (predict) does not need the output
    assert len(read_instructions(path, labelled=False)) == 2


def test_field_renames(tmp_path):
    path = write(tmp_path / "s.jsonl", [{"article": "long text", "highlights": "short"}])
    rows = read_pairs(
        path, "document", "summary", fields={"document": "article", "summary": "highlights"}
    )
    assert rows[0]["document"] == "long text" and rows[0]["summary"] == "short"
    with pytest.raises(DataError, match="field 'document'"):
        read_pairs(path, "document", "summary")


def test_chat_messages_and_sharegpt(tmp_path):
    openai = {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    }
    sharegpt = {
        "conversations": [
            {"from": "system", "value": "be brief"},
            {"from": "human", "value": "hi"},
            {"from": "gpt", "value": "yo"},
        ]
    }
    rows = read_chats(write(tmp_path / "c.jsonl", [openai, sharegpt]))
    assert rows[0]["messages"] == openai["messages"]
    assert [m["role"] for m in rows[1]["messages"]] == ["system", "user", "assistant"]
    assert rows[1]["messages"][2]["content"] == "yo"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "no assistant turn"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "unknown role 'robot'"),
        ({"messages": [{"role": "user", "content": 3}]}, "content must be text"),
        ({"messages": "hi"}, "non-empty list"),
        ({"conversations": [{"speaker": "x"}]}, "neither 'role'"),
    ],
)
def test_chat_errors_name_line_and_field(tmp_path, record, message):
    good = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    path = write(tmp_path / "c.jsonl", [good, record])
    with pytest.raises(DataError) as err:
        read_chats(path)
    assert "c.jsonl, line 2" in str(err.value) and message in str(err.value)


def test_squad_json_is_flattened_per_question(tmp_path):
    squad = {
        "version": "1.1",
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "Paris is in France.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "Where is Paris?",
                                "answers": [
                                    {"text": "France", "answer_start": 12},
                                    {"text": "in France", "answer_start": 9},
                                ],
                            },
                            {
                                "id": "q2",
                                "question": "What?",
                                "answers": [{"text": "Paris", "answer_start": 0}],
                            },
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(squad), encoding="utf-8")
    rows = read_qa(path)
    assert [r["id"] for r in rows] == ["q1", "q2"]
    assert rows[0]["answers"] == ["France", "in France"]
    assert rows[0]["context"] == "Paris is in France." and rows[1]["title"] == "T"


def test_flat_qa_answers_in_every_shape(tmp_path):
    records = [
        {"question": "q", "context": "c", "answers": ["a", "b"]},
        {"question": "q", "context": "c", "answers": {"text": ["a"], "answer_start": [0]}},
        {"question": "q", "context": "c", "answer": "a"},
    ]
    rows = read_qa(write(tmp_path / "qa.jsonl", records))
    assert [r["answers"] for r in rows] == [["a", "b"], ["a"], ["a"]]
    with pytest.raises(DataError, match="line 1: field 'answers'"):
        read_qa(write(tmp_path / "bad.jsonl", [{"question": "q", "context": "c"}]))


def test_both_qa_tasks_tell_squad_from_flat_records_the_same_way(tmp_path):
    """One `qa_source` decides for extractive and generative QA: SQuAD by the JSON's structure
    (whatever the extension or the first KiBs say), flat records otherwise; bad files are
    DataErrors, not tracebacks."""
    from tunewise.tasks.extractive_qa.squad import read_qa as read_extractive

    context = "Paris is in France."
    qa = {"id": "q1", "question": "Where?", "answers": [{"text": "France", "answer_start": 12}]}
    squad = {"title": "x" * 5000, "paragraphs": [{"context": context, "qas": [qa]}]}
    path = tmp_path / "squad.txt"
    path.write_text(json.dumps({"data": [squad]}), encoding="utf-8")
    assert read_qa(path, "json")[0]["answers"] == ["France"]
    assert read_extractive(path, "json")[0]["answers"]["answer_start"] == [12]
    flat = [{"question": "Where?", "context": context, "answers": ["France"]}]
    assert read_qa(write(tmp_path / "flat.json", flat), "squad")[0]["answers"] == ["France"]
    for bad, message in ((tmp_path / "missing.json", "does not exist"), (tmp_path, "directory")):
        with pytest.raises(DataError, match=message):
            read_qa(bad, "squad")
    (tmp_path / "latin1.json").write_bytes(b'[{"question": "caf\xe9"}]')
    with pytest.raises(DataError, match="not UTF-8"):
        read_qa(tmp_path / "latin1.json")


# -- metrics -------------------------------------------------------------------------------------


def test_rouge_hand_computed():
    # pred "the cat sat" vs ref "the cat ran": unigrams 2/3 both ways, bigrams 1/2 ("the cat"),
    # LCS "the cat" = 2 of 3 tokens.
    scores = rouge_scores(["the cat sat"], [["the cat ran"]])
    assert scores["rouge1"] == pytest.approx(100 * 2 / 3)
    assert scores["rouge2"] == pytest.approx(50.0)
    assert scores["rougeL"] == pytest.approx(100 * 2 / 3)
    # several references: the best one counts; the mean is over examples
    two = rouge_scores(["the cat sat", "dog"], [["no match", "the cat sat"], ["cat"]])
    assert two["rouge1"] == pytest.approx(50.0)


def test_bleu_hand_computed():
    # pred "the cat sat on the mat" vs ref "the cat sat on a mat" (same length: no brevity
    # penalty). Clipped n-gram precisions: 5/6, 3/5, 2/4, 1/3.
    expected = 100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    scores = bleu_chrf(["the cat sat on the mat"], [["the cat sat on a mat"]])
    assert scores["bleu"] == pytest.approx(expected, abs=1e-6)
    assert bleu_chrf(["ein Haus"], [["ein Haus"]])["chrf"] == pytest.approx(100.0)
    assert bleu_chrf(["xyz"], [["abc"]]) == {"bleu": 0.0, "chrf": 0.0}


def test_metric_inputs_are_checked():
    with pytest.raises(ValueError):
        rouge_scores(["a", "b"], [["a"]])
    with pytest.raises(TypeError):
        bleu_chrf(["a"], ["a"])  # a string, not a list of references


def test_perplexity_of_uniform_logits_is_the_vocabulary_size():
    vocab = 7
    logits = np.zeros((2, 5, vocab), dtype=np.float32)
    labels = np.array([[-100, -100, 3, 4, 1], [2, 2, -100, -100, -100]])
    nll, n = nll_from_logits(logits, labels, causal=True)
    # causal: position t predicts label t+1, so a first-position label is never scored
    assert n == 4
    assert perplexity(nll, n)["perplexity"] == pytest.approx(vocab, rel=1e-5)
    assert perplexity(nll, n)["loss"] == pytest.approx(math.log(vocab), rel=1e-5)
    nll, n = nll_from_logits(logits, labels, causal=False)
    assert n == 5 and nll / n == pytest.approx(math.log(vocab), rel=1e-5)
