"""The command line end to end: train from a YAML file with overrides, then predict and eval
with the run directory it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import tunewise
from conftest import sentiment_records, write_jsonl
from tunewise.cli import app
from tunewise.registry import STRATEGIES

STRATEGY_NAMES = ["full", "partial", "frozen", "lora", "bitfit"]
INPUTS = [
    "good film",
    "the plot was awful and the story was very boring",
    "superb",
    "a dull movie but the actor was really quite nice",
    "horrible",
    "it is the best film",
]


def invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    write_jsonl(root / "train.jsonl", sentiment_records(48, seed=1))
    write_jsonl(root / "dev.jsonl", sentiment_records(16, seed=2))
    write_jsonl(root / "test.jsonl", sentiment_records(24, seed=3))
    write_jsonl(root / "in.jsonl", [{"text": t} for t in INPUTS])
    return root


@pytest.fixture(scope="module")
def config_file(workdir, tiny_bert) -> Path:
    config = {
        "model": {"name": str(tiny_bert), "max_length": 32},
        "task": {"type": "classification"},
        "data": {
            "train": str(workdir / "train.jsonl"),
            "validation": str(workdir / "dev.jsonl"),
        },
        "strategy": {"name": "lora", "r": 4},
        "training": {"epochs": 3, "batch_size": 8, "learning_rate": 5e-3, "logging_steps": 2},
        "output_dir": str(workdir / "from-yaml"),
        "seed": 0,
    }
    path = workdir / "cfg.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(workdir, config_file):
    """(CLI result, run dir) of `tunewise train cfg.yaml training.epochs=1 output_dir=...`."""
    run = workdir / "run"
    result = invoke("train", config_file, "training.epochs=1", f"output_dir={run}")
    return result, run


def test_train_with_overrides_writes_a_run(trained, workdir):
    result, run = trained
    assert result.exit_code == 0, result.output
    assert f"run saved to {run}" in result.stdout
    assert (run / "tunewise.json").is_file()
    assert (run / "metrics.json").is_file()
    assert not (workdir / "from-yaml").exists()  # output_dir=... won over the YAML's
    manifest = json.loads((run / "tunewise.json").read_text())
    assert manifest["training"]["epochs"] == 1  # training.epochs=1 won over the YAML's 3
    assert manifest["training"]["steps"] == 48 // 8
    assert manifest["strategy"]["options"]["r"] == 4  # the rest of the YAML still applies
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["validation"]["n_examples"] == 16


def test_train_with_a_bad_override_exits_2_with_a_hint(config_file, tmp_path):
    result = invoke("train", config_file, "training.epochz=1", f"output_dir={tmp_path / 'x'}")
    assert result.exit_code == 2
    assert "training.epochz" in result.output
    assert "did you mean 'epochs'" in result.output
    assert not (tmp_path / "x").exists()


def test_predict_input_file_writes_one_prediction_per_line_in_order(trained, workdir):
    _, run = trained
    out = workdir / "out.jsonl"
    result = invoke("predict", run, "--input", workdir / "in.jsonl", "--output", out)
    assert result.exit_code == 0, result.output
    assert f"{len(INPUTS)} predictions written" in result.stdout
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(INPUTS)
    rows = [json.loads(line) for line in lines]
    for row in rows:
        assert row["label"] in ("neg", "pos")
        # the score is the predicted label's probability: the largest, and the scores sum to 1
        assert row["score"] == pytest.approx(row["scores"][row["label"]], abs=1e-6)
        assert row["score"] == max(row["scores"].values())
        assert sum(row["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    # line i belongs to input i: compare with predicting each text on its own
    predictor = tunewise.load(run)
    alone = [predictor.predict([text])[0] for text in INPUTS]
    assert [r["label"] for r in rows] == [a["label"] for a in alone]
    assert [r["score"] for r in rows] == pytest.approx([a["score"] for a in alone], abs=1e-5)


def test_predict_text_prints_a_prediction(trained):
    _, run = trained
    result = invoke("predict", run, "--text", "good film", "--text", "awful plot")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if " -> " in line]
    assert [line.split(" -> ")[0] for line in lines] == ["'good film'", "'awful plot'"]
    got = [json.loads(line.split(" -> ", 1)[1]) for line in lines]
    want = tunewise.predict(run, ["good film", "awful plot"])
    assert [g["label"] for g in got] == [w["label"] for w in want]
    assert [g["score"] for g in got] == pytest.approx([w["score"] for w in want], abs=1e-5)


def test_predict_without_text_or_input_exits_2(trained):
    _, run = trained
    result = invoke("predict", run)
    assert result.exit_code == 2
    assert "--text" in result.output


def test_eval_writes_metrics_json(trained, workdir):
    _, run = trained
    out = workdir / "m.json"
    data = workdir / "test.jsonl"
    result = invoke("eval", run, "--data", data, "--output", out)
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text(encoding="utf-8"))
    n_records = len(data.read_text(encoding="utf-8").splitlines())
    assert metrics["n_examples"] == n_records == 24
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert 0.0 <= metrics["macro_f1"] <= 1.0
    assert metrics == tunewise.evaluate(run, data)
    printed = json.loads(result.stdout)  # the scalar metrics, as JSON
    assert printed["accuracy"] == metrics["accuracy"]
    assert printed["n_examples"] == 24


def test_strategies_lists_every_strategy_with_its_summary():
    """`tunewise strategies` prints the compatibility matrix, then one summary line per
    strategy (the issue-4 format); the foundation's five are among them."""
    result = invoke("strategies")
    assert result.exit_code == 0, result.output
    names = [n for n in STRATEGIES.names() if n != "auto"]  # auto: the advisor's pick
    assert set(STRATEGY_NAMES) <= set(names)
    lines = result.stdout.splitlines()
    for name in names:
        assert any(
            line.split()[:1] == [name] and STRATEGIES.get(name).summary in line for line in lines
        ), name
