"""`tunewise data collect`: logged requests + feedback → a validated, deduplicated training file
in the task's format; requests without feedback → an unlabelled pool."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lifecycle_fixtures import write_logs
from tunewise import api
from tunewise.cli import app
from tunewise.errors import ConfigError, DataError


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _classification_logs(tmp_path):
    texts = ["good film", "awful plot", "good film", "nice story", "dull actor", "bad movie"]
    requests = [
        {"input": {"text": t}, "prediction": {"label": "pos", "score": 0.6}, "score": 0.6}
        for t in texts
    ]
    # r2 repeats r0's text and label (a duplicate); r3 gets an empty label (invalid);
    # r5 gets two corrections, the last one wins; r4 has none (unlabelled); "zz" is unknown.
    feedback = {"r0": "pos", "r1": "neg", "r2": "pos", "r3": " ", "r5": "pos", "zz": "neg"}
    directory = write_logs(tmp_path / "logs", requests, feedback, per_file=4)
    with (directory / "feedback.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "r5", "time": "t", "label": "neg"}) + "\n")
    with (directory / "requests-0001.jsonl").open("a") as fh:
        fh.write('{"id": "r9", "input": {"text": "torn li')  # a killed server's last line
    return directory


def test_collect_joins_feedback_validates_and_dedups(tmp_path):
    logs = _classification_logs(tmp_path)
    out = tmp_path / "new.jsonl"
    pool = tmp_path / "pool.jsonl"
    c = api.collect_data(logs, out, task="classification", unlabelled=pool)
    assert _read(out) == [
        {"text": "good film", "label": "pos"},
        {"text": "awful plot", "label": "neg"},
        {"text": "bad movie", "label": "neg"},
    ]
    assert (c["n_requests"], c["n_with_feedback"], c["n_output"]) == (6, 5, 3)
    assert (c["n_duplicates"], c["n_rejected"], c["n_feedback_unmatched"]) == (1, 1, 1)
    assert c["rejected"][0]["id"] == "r3" and "label" in c["rejected"][0]["reason"]
    assert c["n_bad_lines"] == 1 and "requests-0001.jsonl:3" in c["bad_lines"][0]
    assert _read(pool) == [{"text": "dull actor", "id": "r4"}]


def test_collect_writes_each_tasks_own_format(tmp_path):
    requests = [
        {"input": {"text": "Ann met Bob"}, "prediction": {"entities": []}},
        {"input": {"text": "Zed left"}, "prediction": {"entities": []}},
        {"input": {"question": "who?", "context": "Ann met Bob"}, "prediction": {}},
        {"input": {"instruction": "greet"}, "prediction": {"generated_text": "hey"}},
    ]
    logs = write_logs(
        tmp_path / "l",
        requests,
        {
            "r0": ["B-PER", "O", "B-PER"],
            "r1": [{"start": 0, "end": 3, "label": "PER"}],
            "r2": "Bob",
            "r3": "Hello there.",
        },
    )
    ner = api.collect_data(logs, tmp_path / "ner.jsonl", task="token_classification")
    assert ner["n_rejected"] == 2  # the QA and instruction requests have no text to tag
    assert _read(tmp_path / "ner.jsonl") == [
        {"tokens": ["Ann", "met", "Bob"], "tags": ["B-PER", "O", "B-PER"]},
        {"tokens": ["Zed", "left"], "tags": ["B-PER", "O"]},
    ]
    api.collect_data(logs, tmp_path / "qa.jsonl", task="extractive_qa")
    assert _read(tmp_path / "qa.jsonl") == [
        {
            "question": "who?",
            "context": "Ann met Bob",
            "answers": {"text": ["Bob"], "answer_start": [8]},
        }
    ]
    api.collect_data(logs, tmp_path / "sft.jsonl", task="instruction")
    assert {"instruction": "greet", "output": "Hello there."} in _read(tmp_path / "sft.jsonl")


def test_collect_takes_the_task_from_a_run_and_refuses_a_contradiction(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    manifest = {"task": {"type": "classification", "state": {}}}  # what collect reads of a run
    manifest["config"] = {"task": {"type": "classification"}}
    (run / "tunewise.json").write_text(json.dumps(manifest))
    logs = _classification_logs(tmp_path)
    assert api.collect_data(logs, tmp_path / "o.jsonl", run=run)["task"] == "classification"
    with pytest.raises(ConfigError, match="contradicts"):
        api.collect_data(logs, tmp_path / "o.jsonl", task="instruction", run=run)
    with pytest.raises(DataError, match="no request logs"):
        api.collect_data(tmp_path, tmp_path / "o.jsonl", task="classification")


def test_collect_cli_reports_counts_and_exits_2_on_bad_input(tmp_path):
    logs = _classification_logs(tmp_path)
    runner = CliRunner()
    ok = runner.invoke(
        app,
        [
            "data",
            "collect",
            str(logs),
            "--output",
            str(tmp_path / "o.jsonl"),
            "--task",
            "classification",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "3 written" in ok.output
    bad = runner.invoke(app, ["data", "collect", str(logs), "--output", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--task" in bad.output
