"""Loading every format with line numbers, and a clear message for each kind of bad record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunewise.data.load import load_source
from tunewise.data.schemas import schema_for
from tunewise.data.steps import process
from tunewise.errors import ConfigError, DataError
from tunewise.prepare_options import PrepareConfig


def _check(path: Path, task: str = "classification", on_error: str = "skip", **kw):
    """(valid rows, rejected records) of a file, nothing else removed."""
    opts = PrepareConfig(
        on_error=on_error,
        columns=kw.get("columns") or {},
        labels=kw.get("labels"),
        dedup={"exact": False},
    )
    p = process(path, schema_for(task, opts.columns, opts.labels), opts)
    return p.rows, p.rejected


def _lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_each_kind_of_bad_classification_record_has_its_message(tmp_path):
    path = _lines(
        tmp_path / "d.jsonl",
        [
            '{"text": "fine", "label": "pos"}',
            '{"text": "broken", "label": ',  # malformed line
            '["a", "list"]',  # not an object
            '{"label": "pos"}',  # missing field
            '{"text": "   ", "label": "pos"}',  # empty field
            '{"text": {"a": 1}, "label": "pos"}',  # wrong type
            '{"text": "x", "label": "maybe"}',  # unknown label
            '{"text": "y", "label": [{"a": 1}]}',  # label not a label
            '{"text": "z"}',  # missing label
            "",
            '{"text": 7, "label": "neg"}',  # numbers are text: valid
        ],
    )
    valid, rejected = _check(path, labels=["pos", "neg"])
    assert [r["line"] for r in rejected] == [2, 3, 4, 5, 6, 7, 8, 9]
    reasons = [r["reason"] for r in rejected]
    assert reasons[0].startswith("not valid JSON")
    assert reasons[1] == "expected a JSON object, got list ['a', 'list']"
    assert reasons[2] == "field 'text' is missing (got None)"
    assert reasons[3] == "field 'text' is empty (got '   ')"
    assert reasons[4] == "field 'text' should be text, not dict (got {'a': 1})"
    assert reasons[5] == "field 'label' is an unknown label (allowed: neg, pos) (got 'maybe')"
    assert "should be a label" in reasons[6]
    assert reasons[7] == "field 'label' is missing (got None)"
    assert [json.loads(r)["text"] for r in valid["record"]] == ["fine", "7"]
    assert valid["line"] == [1, 11]  # line numbers survive the blank line


def test_fail_policy_names_file_line_field_and_value(tmp_path):
    path = _lines(tmp_path / "d.jsonl", ['{"text": "ok", "label": 1}', '{"text": "", "label": 0}'])
    with pytest.raises(DataError) as err:
        _check(path, on_error="fail")
    message = str(err.value)
    assert f"{path}, line 2: field 'text' is empty (got '')" in message
    assert "on_error: skip" in message


def test_fail_message_lists_at_most_five_problems(tmp_path):
    path = _lines(tmp_path / "d.jsonl", ['{"text": ""}'] * 8)
    with pytest.raises(DataError, match=r"8 invalid record\(s\), the first 5: ") as info:
        _check(path, on_error="fail")
    assert str(info.value).count("field 'text' is empty") == 5


def test_token_classification_tag_length(tmp_path):
    path = _lines(
        tmp_path / "ner.jsonl",
        [
            '{"tokens": ["EU", "rejects"], "ner_tags": ["B-ORG", "O"]}',
            '{"tokens": ["EU", "rejects", "it"], "ner_tags": ["B-ORG", "O"]}',
            '{"tokens": [], "ner_tags": []}',
        ],
    )
    valid, rejected = _check(path, task="ner")
    assert len(valid) == 1
    assert rejected[0]["reason"].startswith("field 'tags' has 2 tags for 3 tokens")
    assert rejected[1]["reason"].startswith("field 'tokens' should be a non-empty list")


def test_qa_answer_must_be_in_its_context(tmp_path):
    context = "Paris is the capital of France."
    path = _lines(
        tmp_path / "qa.jsonl",
        [
            json.dumps(
                {
                    "question": "q",
                    "context": context,
                    "answers": {"text": ["Paris"], "answer_start": [0]},
                }
            ),
            json.dumps(
                {
                    "question": "q",
                    "context": context,
                    "answers": {"text": ["France"], "answer_start": [3]},
                }
            ),
            json.dumps(
                {
                    "question": "q",
                    "context": context,
                    "answers": {"text": ["Berlin"], "answer_start": [0]},
                }
            ),
            json.dumps(
                {
                    "question": "q",
                    "context": context,
                    "answers": [{"text": "capital", "answer_start": 13}],
                }
            ),
        ],
    )
    valid, rejected = _check(path, task="qa")
    assert valid["line"] == [1, 4]
    assert rejected[0]["reason"] == (
        "field 'answers' text is not in the context at 3; it occurs at 24 (got 'France')"
    )
    assert "nowhere else in it" in rejected[1]["reason"]


def test_chat_roles_and_contents(tmp_path):
    path = _lines(
        tmp_path / "chat.jsonl",
        [
            '{"messages": [{"role": "user", "content": "hi"}, '
            '{"role": "assistant", "content": "hello"}]}',
            '{"messages": [{"role": "robot", "content": "hi"}]}',
            '{"messages": [{"role": "user", "content": ""}]}',
            '{"instruction": "Say hi", "output": "hi"}',
            '{"question": "no chat fields"}',
        ],
    )
    valid, rejected = _check(path, task="chat")
    assert valid["line"] == [1, 4]
    assert rejected[0]["reason"].startswith("field 'messages[0].role' should be one of")
    assert rejected[1]["reason"].startswith("field 'messages[0].content' is missing or empty")
    assert rejected[2]["reason"].startswith("field 'messages' is missing")


def test_csv_tsv_parquet_text_and_json_keep_their_positions(tmp_path):
    import pandas as pd

    (tmp_path / "d.csv").write_text('text,label\n"a, quoted",1\nb,007\n,1\n', encoding="utf-8")
    valid, rejected = _check(tmp_path / "d.csv")
    assert [json.loads(r)["label"] for r in valid["record"]] == ["1", "007"]  # text, not int
    assert valid["line"] == [2, 3] and rejected[0]["line"] == 4

    (tmp_path / "d.tsv").write_text('label\tsentence\n0\tit "quotes"\n1\tfine\n', encoding="utf-8")
    valid, _ = _check(tmp_path / "d.tsv")  # `sentence` is a default alias of `text`
    assert json.loads(valid["record"][0]) == {"label": "0", "text": 'it "quotes"'}

    pd.DataFrame({"review": ["good", "bad"], "y": [1, 0]}).to_parquet(tmp_path / "d.parquet")
    valid, _ = _check(tmp_path / "d.parquet", columns={"text": "review", "label": "y"})
    assert [json.loads(r) for r in valid["record"]] == [
        {"text": "good", "label": 1},
        {"text": "bad", "label": 0},
    ]

    (tmp_path / "d.txt").write_text("first line\n\nthird line\n", encoding="utf-8")
    _, rejected = _check(tmp_path / "d.txt")  # plain text has no labels: both lines rejected
    assert [(r["line"], r["record"]) for r in rejected] == [
        (1, {"text": "first line"}),
        (3, {"text": "third line"}),
    ]

    (tmp_path / "d.json").write_text(json.dumps([{"text": "a", "label": 1}, 5]), encoding="utf-8")
    valid, rejected = _check(tmp_path / "d.json")
    assert valid["line"] == [0] and rejected[0]["reason"] == "expected a JSON object, got int 5"


def test_unreadable_inputs_raise_data_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_source(tmp_path / "missing.jsonl")
    (tmp_path / "x.bin").write_bytes(b"\x00")
    with pytest.raises(DataError, match="Cannot tell the format"):
        load_source(tmp_path / "x.bin")
    (tmp_path / "latin.csv").write_bytes("text,label\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not UTF-8|cannot be read"):
        load_source(tmp_path / "latin.csv")
    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no records"):
        _check(tmp_path / "empty.jsonl")


def test_unknown_task_and_column_are_config_errors():
    with pytest.raises(ConfigError, match="did you mean 'classification'"):
        schema_for("clasification")
    with pytest.raises(ConfigError, match="'txt' is not a field"):
        schema_for("classification", {"txt": "sentence"})


def test_formats_with_their_own_readers(tmp_path):
    """CoNLL and Alpaca files go through data/conll.py and data/chat.py, keeping lines."""
    conll = tmp_path / "d.conll"
    conll.write_text("Acme B-ORG\nhires O\n\nMaria B-PER\nJansen I-PER\n", encoding="utf-8")
    opts = PrepareConfig(dedup={"exact": False})
    p = process(conll, schema_for("ner"), opts, fmt="conll")
    assert [json.loads(r) for r in p.rows["record"]] == [
        {"tokens": ["Acme", "hires"], "tags": ["B-ORG", "O"]},
        {"tokens": ["Maria", "Jansen"], "tags": ["B-PER", "I-PER"]},
    ]
    assert p.rows["line"] == [1, 4]
    alpaca = tmp_path / "a.json"
    alpaca.write_text(json.dumps([{"instruction": "Say hi", "input": "", "output": "hi"}]))
    p = process(alpaca, schema_for("instruction"), opts, fmt="alpaca")
    assert json.loads(p.rows["record"][0])["output"] == "hi"
