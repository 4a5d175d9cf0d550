"""`tunewise retrain`: replay mixes the requested share, the new run continues the old one, the
comparison is written and promotion follows the threshold."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import tunewise
from conftest import sentiment_records, toy_config, write_jsonl
from tunewise import api
from tunewise.cli import app
from tunewise.errors import ConfigError
from tunewise.lifecycle.retrain import decide


@pytest.fixture(scope="module")
def parent(tiny_bert, tmp_path_factory):
    d = tmp_path_factory.mktemp("retrain")
    data = {
        "train": write_jsonl(d / "train.jsonl", sentiment_records(48, seed=1)),
        "validation": write_jsonl(d / "dev.jsonl", sentiment_records(16, seed=2)),
    }
    raw = toy_config(tiny_bert, data, d / "old", training={"epochs": 1, "max_steps": 4})
    return tunewise.finetune(raw).run_dir


def test_retrain_mixes_replay_continues_compares_and_promotes(parent, tmp_path):
    new = write_jsonl(tmp_path / "new.jsonl", sentiment_records(40, seed=7))
    fixed = write_jsonl(tmp_path / "fixed.jsonl", sentiment_records(16, seed=9))
    out, registry = tmp_path / "new_run", tmp_path / "registry"
    r = api.retrain(
        parent,
        new,
        out,
        replay=0.2,
        eval_data=fixed,
        threshold=0.0,
        registry=registry,
        overrides=["training.max_steps=3"],
    )
    # replay is the share of the mix: 40 new + 10 old = 50, 10 / 50 = 0.2
    mix = json.loads((out / "retrain" / "mix.json").read_text())
    assert (mix["n_new"], mix["n_replay"], mix["replay_fraction_of_mix"]) == (40, 10, 0.2)
    rows = [json.loads(x) for x in (out / "retrain" / "train.jsonl").read_text().splitlines()]
    old = [json.loads(x) for x in (parent.parent / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 50
    replayed = [old[i] for i in mix["replayed_indices"]]
    assert all(rec in rows for rec in replayed)
    manifest = json.loads((out / "tunewise.json").read_text())
    assert manifest["init_from"]["run"] == str(parent.resolve())
    assert manifest["init_from"]["mode"] == "continue"
    assert manifest["training"]["n_train"] == 50
    # both runs scored on the fixed set and on the old validation set (forgetting)
    saved = json.loads((out / "comparison.json").read_text())
    assert set(saved["sets"]) == {"eval", "original_validation"}
    assert saved["metrics"]["eval"]["old"]["n_examples"] == 16
    promoted = all(s["new"] >= s["old"] for s in saved["sets"].values())
    assert r["promoted"] is promoted is manifest["promoted"]
    assert "| eval |" in (out / "comparison.md").read_text()
    if promoted:
        entry = json.loads((registry / "promoted.json").read_text())
        assert entry["run"] == str(out.resolve()) and entry["metric"] == "accuracy"
        assert entry["new"] == saved["sets"]["eval"]["new"]
    else:
        assert not (registry / "promoted.json").exists()


def test_promotion_follows_the_threshold_in_both_directions():
    sets = {
        "eval": {"old": {"accuracy": 0.80}, "new": {"accuracy": 0.78}},
        "original_validation": {"old": {"accuracy": 0.90}, "new": {"accuracy": 0.91}},
    }
    assert decide(sets, "accuracy", True, 0.0)["promoted"] is False
    assert decide(sets, "accuracy", True, 0.03)["promoted"] is True
    loss = {"eval": {"old": {"loss": 1.0}, "new": {"loss": 1.2}}}
    assert decide(loss, "loss", False, 0.1)["promoted"] is False  # lower is better
    assert decide(loss, "loss", False, 0.25)["sets"]["eval"]["gain"] == pytest.approx(-0.2)


def test_retrain_refuses_bad_inputs_before_writing(parent, tmp_path):
    new = write_jsonl(tmp_path / "new.jsonl", sentiment_records(8))
    with pytest.raises(ConfigError, match="replay"):
        api.retrain(parent, new, tmp_path / "o", replay=1.0)
    with pytest.raises(ConfigError, match="is not a metric"):
        api.retrain(parent, new, tmp_path / "o", metric="acuracy")
    with pytest.raises(ConfigError, match="must differ"):
        api.retrain(parent, new, parent)
    assert not (tmp_path / "o").exists()
    result = CliRunner().invoke(
        app,
        [
            "retrain",
            str(parent),
            "--data",
            str(tmp_path / "missing.jsonl"),
            "--output-dir",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "does not exist" in result.output
