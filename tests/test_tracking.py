"""Experiment tracking: a sweep's entries are MLflow runs in one experiment (local file store)
holding the resolved config as params, per-step and final metrics and the report artifact; W&B
in offline mode writes its run directory with the report; the plain list form parses."""

from __future__ import annotations

import pytest

from conftest import toy_config
from tunewise.config import load_config
from tunewise.sweep import sweep
from tunewise.training.recipe import finetune


def test_sweep_entries_are_mlflow_runs_in_one_experiment(
    tiny_bert, toy_data, tmp_path, monkeypatch
):
    import mlflow
    from mlflow.tracking import MlflowClient

    # MLflow's default local store (3.x: ./mlflow.db beside ./mlruns artifacts), no URI given
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert not mlflow.is_tracking_uri_set()
    raw = toy_config(tiny_bert, toy_data, tmp_path / "unused", "lora")
    raw["training"].update(epochs=1, batch_size=16, logging_steps=1)
    raw["tracking"] = ["tensorboard", "mlflow"]
    rows = sweep(raw, ["frozen", "lora"], tmp_path / "my-sweep", isolate=False)
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    uri = mlflow.get_tracking_uri()
    assert uri.startswith("sqlite:") and (tmp_path / "mlflow.db").is_file()

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("my-sweep")  # the sweep's name
    assert experiment is not None
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"frozen", "lora"}
    for name, run in runs.items():
        assert run.info.status == "FINISHED"
        params = run.data.params
        assert params["config.strategy.name"] == name
        assert params["config.training.learning_rate"] == "0.005"
        assert params["config.model.name"] == str(tiny_bert)
        metrics = run.data.metrics
        assert 0.0 <= metrics["validation/accuracy"] <= 1.0  # tunewise's final metrics
        history = client.get_metric_history(run.info.run_id, "loss")  # the Trainer's steps
        assert len(history) >= 3 and len({m.step for m in history}) == len(history)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"report.md", "metrics.json", "config.yaml", "loss_curve.png"} <= artifacts
        assert (tmp_path / "my-sweep" / name / "tensorboard").is_dir()  # still there


def test_wandb_offline_writes_its_run_directory(tiny_bert, toy_data, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline is tunewise's default
    raw = toy_config(tiny_bert, toy_data, tmp_path / "run", "lora")
    raw["training"].update(max_steps=3, batch_size=16, logging_steps=1)
    raw["eval"] = {"each_epoch": False}
    raw["tracking"] = ["wandb"]  # the plain list form; TensorBoard is then off
    finetune(load_config(raw))
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("run-*.wandb"))  # the offline log `wandb sync` uploads
    assert (runs[0] / "files" / "report.md").is_file()
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_tracking_list_and_mapping_forms():
    base = {"model": {"name": "m"}, "data": {"train": "t.jsonl"}}
    assert load_config(base).tracking.backends == ["tensorboard"]
    assert load_config({**base, "tracking": ["mlflow", "wandb"]}).tracking.backends == [
        "mlflow",
        "wandb",
    ]
    cfg = load_config(
        {**base, "tracking": {"backends": ["mlflow"], "mlflow": {"tracking_uri": "file:///x"}}}
    )
    assert cfg.tracking.mlflow.tracking_uri == "file:///x"
