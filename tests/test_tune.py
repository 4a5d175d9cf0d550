"""`tunewise tune` on Optuna: a 3-trial study writes its table, plots and a best config that
`tunewise train` accepts; a trial that raises is recorded as failed while the others finish and
the study resumes with more trials; the median pruner stops a planted bad trial after its first
evaluation; two worker processes on one SQLite storage share the study without running any
trial twice; a bad search-space key fails before any trial runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from conftest import toy_config
from tunewise import api
from tunewise.cli import app
from tunewise.config import load_config
from tunewise.errors import ConfigError
from tunewise.training import recipe

TUNE = [sys.executable, "-m", "tunewise.cli", "tune"]
LR_SPACE = {"training.learning_rate": {"type": "loguniform", "low": 1e-3, "high": 2e-2}}


def tune_config(tiny_bert, toy_data, tmp_path, epochs=1, each_epoch=False, **tune) -> dict:
    raw = toy_config(tiny_bert, toy_data, tmp_path / "best-run", "lora")
    raw["training"].update(epochs=epochs, batch_size=16)
    raw["training"].pop("learning_rate")
    raw["eval"] = {"each_epoch": each_epoch}
    raw["tune"] = {"space": LR_SPACE, "sampler_seed": 0, **tune}
    return raw


def test_three_trial_study_writes_table_plots_and_a_trainable_best_config(
    tiny_bert, toy_data, tmp_path
):
    raw = tune_config(tiny_bert, toy_data, tmp_path)
    raw["tune"]["space"]["strategy.r"] = {"type": "categorical", "choices": [2, 4]}
    cfg = tmp_path / "search.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / "study"
    result = CliRunner().invoke(app, ["tune", str(cfg), "--trials", "3", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert "study 'search': 3 trials (3 complete" in result.output

    rows = json.loads((out / "trials.json").read_text())
    assert [r["number"] for r in rows] == [0, 1, 2]
    for r in rows:
        assert r["state"] == "complete" and r["error"] is None
        assert set(r["params"]) == {"training.learning_rate", "strategy.r"}
        assert 1e-3 <= r["params"]["training.learning_rate"] <= 2e-2
        assert 0.0 <= r["value"] <= 1.0
    best = max(rows, key=lambda r: r["value"])
    # only the best trial's run directory is kept (tune.keep_best defaults to 1)
    assert sorted(p.name for p in out.glob("trial-*")) == [f"trial-{best['number']:04d}"]
    assert (out / f"trial-{best['number']:04d}" / "tunewise.json").is_file()

    md = (out / "trials.md").read_text()
    assert md.count("| complete |") == 3 and "`strategy.r`" in md
    report = (out / "report.md").read_text()
    for png in ("optimization_history.png", "param_importances.png"):
        assert (out / png).stat().st_size > 5000 and f"({png})" in report
    assert f"Best: trial {best['number']}" in report

    best_cfg = load_config(out / "best.yaml")  # what `tunewise train best.yaml` loads first
    best_lr = best["params"]["training.learning_rate"]
    assert best_cfg.training.learning_rate == pytest.approx(best_lr)
    assert best_cfg.strategy.r == best["params"]["strategy.r"]
    assert best_cfg.output_dir == str(tmp_path / "best-run") and best_cfg.tune is None
    assert (out / "study.db").is_file()  # the default storage
    retrain = CliRunner().invoke(
        app, ["train", str(out / "best.yaml"), f"output_dir={tmp_path / 'retrained'}"]
    )
    assert retrain.exit_code == 0, retrain.output
    assert (tmp_path / "retrained" / "tunewise.json").is_file()


def test_failing_trial_is_recorded_and_the_study_resumes_with_more_trials(
    tiny_bert, toy_data, tmp_path, monkeypatch
):
    real = recipe.finetune

    def planted(cfg, **kwargs):
        if cfg.output_dir.endswith("trial-0001"):
            raise RuntimeError("planted failure")
        return real(cfg, **kwargs)

    monkeypatch.setattr(recipe, "finetune", planted)
    raw = tune_config(tiny_bert, toy_data, tmp_path, keep_best=5)
    out = tmp_path / "study"
    result = api.tune(raw, 3, out, study="resumable")
    states = [(r["number"], r["state"]) for r in result.trials]
    assert states == [(0, "complete"), (1, "fail"), (2, "complete")]
    failed = result.trials[1]
    assert failed["error"] == "RuntimeError: planted failure" and failed["value"] is None
    assert "planted failure" in (out / "trials.md").read_text()
    assert not (out / "trial-0001").exists()  # a failed trial's directory is not kept
    assert (out / "trial-0000" / "tunewise.json").is_file()
    kept = load_config(out / "trial-0000" / "config.yaml")
    assert kept.tracking.group == "resumable"  # each trial: a run in the study's experiment
    assert kept.tracking.run_name == "trial-0000"

    again = api.tune(raw, 4, out, study="resumable")  # same storage: one more trial
    assert [r["number"] for r in again.trials] == [0, 1, 2, 3]
    assert again.trials[3]["state"] == "complete"
    assert again.trials[0]["params"] == result.trials[0]["params"]  # earlier trials untouched


def test_median_pruner_stops_a_planted_bad_trial_early(tiny_bert, toy_data, tmp_path):
    raw = tune_config(tiny_bert, toy_data, tmp_path, epochs=3, each_epoch=True)
    raw["strategy"] = {"name": "full"}
    raw["training"]["batch_size"] = 8
    raw["tune"].update(
        space={"training.learning_rate": {"type": "categorical", "choices": [1e-2, 8e-3, 1e-7]}},
        pruner="median",
        startup_trials=2,
        # two good trials first, then one that cannot learn
        enqueue=[
            {"training.learning_rate": 1e-2},
            {"training.learning_rate": 8e-3},
            {"training.learning_rate": 1e-7},
        ],
    )
    out = tmp_path / "study"
    result = api.tune(raw, 3, out, storage=str(tmp_path / "study.journal"))
    assert (tmp_path / "study.journal").stat().st_size > 0  # the journal-file storage
    by_lr = {r["params"]["training.learning_rate"]: r for r in result.trials}
    assert by_lr[1e-2]["state"] == by_lr[8e-3]["state"] == "complete"
    assert len(by_lr[1e-2]["evaluations"]) == 3
    bad = by_lr[1e-7]
    assert bad["state"] == "pruned", bad
    assert len(bad["evaluations"]) == 1  # stopped after its first evaluation of three
    assert bad["evaluations"]["1"] < min(by_lr[1e-2]["value"], by_lr[8e-3]["value"])


def test_two_workers_share_one_sqlite_study_without_duplicates(tiny_bert, toy_data, tmp_path):
    raw = tune_config(tiny_bert, toy_data, tmp_path, keep_best=10)
    raw["tune"].pop("sampler_seed")  # each worker samples on its own
    raw["training"]["num_threads"] = 1
    cfg = tmp_path / "shared.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(
            [*TUNE, str(cfg), "--trials", "4", "--storage", storage, "--output-dir", str(d)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for d in (tmp_path / "worker0", tmp_path / "worker1")
    ]
    for w in workers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err[-3000:].replace("\r", "\n")
    study = optuna.load_study(study_name="shared", storage=storage)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.params["training.learning_rate"] for t in trials}) == 4
    # each trial ran exactly once, in one worker's directory
    dirs = [p.name for i in range(2) for p in (tmp_path / f"worker{i}").glob("trial-*")]
    assert sorted(dirs) == [f"trial-{n:04d}" for n in range(4)]


def test_bad_space_key_fails_before_any_trial(tiny_bert, toy_data, tmp_path):
    raw = tune_config(tiny_bert, toy_data, tmp_path)
    raw["tune"]["space"] = {"training.learning_rat": {"type": "uniform", "low": 0.1, "high": 1}}
    with pytest.raises(ConfigError, match=r"tune\.space\.training\.learning_rat"):
        api.tune(raw, 2, tmp_path / "study")
    assert not (tmp_path / "study" / "study.db").exists()


def test_default_space_comes_from_the_strategy():
    from tunewise.registry import STRATEGIES

    lora = STRATEGIES.get("lora").default_search_space()
    assert lora["training.learning_rate"]["low"] < 5e-4 < lora["training.learning_rate"]["high"]
    assert "strategy.r" in lora
    full = STRATEGIES.get("full").default_search_space()
    assert "strategy.r" not in full and "training.batch_size" in full


def test_storage_opening_retries_when_another_worker_creates_the_schema(tmp_path, monkeypatch):
    """Two workers started together race to create the SQLite tables; the loser opens again."""
    import optuna

    from tunewise.tune import study

    real, calls = optuna.storages.RDBStorage, []

    def racing(url: str, **kwargs):
        calls.append(url)
        if len(calls) == 1:
            raise RuntimeError("(sqlite3.OperationalError) table studies already exists")
        return real(url, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    monkeypatch.setattr(study.time, "sleep", lambda s: None)
    storage, url = study.storage_for(None, tmp_path)
    assert len(calls) == 2 and url.endswith("study.db") and storage is not None
    calls.clear()
    monkeypatch.setattr(
        optuna.storages, "RDBStorage", lambda url, **kw: (_ for _ in ()).throw(ValueError("bad"))
    )
    from tunewise.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot be opened"):  # other errors are not retried
        study.storage_for("sqlite:///x.db", tmp_path)
