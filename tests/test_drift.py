"""`tunewise drift`: a planted shift in served traffic is flagged, an unshifted sample is not."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

import tunewise
from conftest import FILLER, sentiment_records, toy_config, write_jsonl
from lifecycle_fixtures import write_logs
from tunewise import api
from tunewise.cli import app
from tunewise.lifecycle.drift import label_shift, psi
from tunewise.serving.predictor import Predictor


@pytest.fixture(scope="module")
def run(tiny_bert, tmp_path_factory):
    d = tmp_path_factory.mktemp("drift")
    data = {
        "train": write_jsonl(d / "train.jsonl", sentiment_records(64, seed=1)),
        "validation": write_jsonl(d / "dev.jsonl", sentiment_records(64, seed=2)),
    }
    raw = toy_config(tiny_bert, data, d / "run", training={"epochs": 3, "learning_rate": 1e-2})
    return tunewise.finetune(raw).run_dir


def _served(run, texts, tmp_path, name):
    preds = Predictor(run, device="cpu").predict(texts)
    requests = [
        {"input": {"text": t}, "prediction": p, "score": p["score"]}
        for t, p in zip(texts, preds, strict=True)
    ]
    return write_logs(tmp_path / name, requests, {}, per_file=50)


def test_unshifted_traffic_is_not_flagged(run, tmp_path):
    texts = [r["text"] for r in sentiment_records(80, seed=11)]
    logs = _served(run, texts, tmp_path, "same")
    report = api.drift(run, logs, tmp_path / "same.md")
    assert report["drifted"] == [] and report["retrain"] is False, report["findings"]
    assert report["recommendation"].startswith("no retrain")
    saved = json.loads((tmp_path / "same.json").read_text())
    assert saved["thresholds"]["length_psi"] == 0.2
    assert "Recommendation: no retrain" in (tmp_path / "same.md").read_text()


def test_planted_shift_is_flagged(run, tmp_path):
    rng = random.Random(3)
    unseen = ["zebra", "quantum", "invoice", "refund", "router", "kernel", "tariff", "gasket"]
    # longer inputs made of words the training data never had, plus one familiar filler word
    texts = [" ".join(rng.sample(unseen, 6) + rng.sample(FILLER, 1) * 6) for _ in range(80)]
    logs = _served(run, texts, tmp_path, "shifted")
    report = api.drift(run, logs, tmp_path / "shifted.md")
    assert {"length", "oov"} <= set(report["drifted"]), report["findings"]
    assert report["retrain"] is True
    assert report["oov"]["unseen_word_rate"]["traffic"] > 0.4
    assert report["oov"]["tokenizer_unk_rate"]["traffic"] > 0.4  # the tiny vocab lacks them
    assert report["oov"]["unseen_word_rate"]["reference"] == 0.0


def test_too_little_traffic_gives_no_decision(run, tmp_path):
    logs = _served(run, ["good film"] * 5, tmp_path, "few")
    report = api.drift(run, logs, tmp_path / "few.md")
    assert report["retrain"] is False and report["recommendation"].startswith("no decision")
    result = CliRunner().invoke(app, ["drift", str(run), "--requests", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_label_shift_statistics():
    same = label_shift({"a": 50, "b": 50}, {"a": 25, "b": 25})
    assert same["total_variation"] == 0 and same["psi"] == 0
    skew = label_shift({"a": 50, "b": 50}, {"a": 45, "b": 5})
    assert skew["total_variation"] == pytest.approx(0.4)
    assert skew["psi"] > 0.2 and skew["chi_square_pvalue"] < 0.01
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.4 * 0.5878 + 0.4 * 1.6094, rel=1e-3)


def test_unlabelled_pool_from_the_logs_feeds_active_learning(run, tmp_path):
    """Before any feedback: collect writes the pool only, and `data select` picks from it."""
    texts = [r["text"] for r in sentiment_records(12, seed=4)]
    logs = _served(run, texts, tmp_path, "pool")
    pool, labelled = tmp_path / "pool.jsonl", tmp_path / "labelled.jsonl"
    counts = api.collect_data(logs, labelled, run=run, unlabelled=pool)
    assert counts["n_output"] == 0 and not labelled.exists()
    assert counts["n_unlabelled"] == len(set(texts))
    picked = api.select_for_annotation(run, pool, k=3, method="entropy")
    assert len(picked) == 3 and {p["text"] for p in picked} <= set(texts)
