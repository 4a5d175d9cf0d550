"""Run directories end to end: train with `tunewise.finetune`, load with `tunewise.load`, and
check that what was saved is exactly what trained; plus the training options that only show in a
real run (early stopping, optimizers, schedulers, sample limits, held-out validation)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import tunewise
from conftest import sentiment_records, toy_config, write_jsonl
from tunewise.artifacts import MANIFEST, WEIGHTS, check_output_dir, read_manifest
from tunewise.assemble import assemble
from tunewise.config import load_config
from tunewise.errors import ConfigError, TunewiseError
from tunewise.evaluation.inference import predict_logits
from tunewise.training.trainer import TunewiseTrainer

RUNS = [
    ("tiny_bert", "full"),
    ("tiny_bert", "lora"),
    ("tiny_bert", "frozen"),
    ("tiny_bert", "partial"),
    ("tiny_llama", "lora"),
    ("tiny_llama", "full"),
]
TEXTS = [
    "good film",
    "the plot was awful and the story very boring",
    "superb",
    "a bad movie but the actor was really nice",
    "dull",
    "it is not the worst film",
]
LR = 5e-3  # toy_config's learning rate


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    return {
        "train": write_jsonl(root / "train.jsonl", sentiment_records(64, seed=1)),
        "validation": write_jsonl(root / "dev.jsonl", sentiment_records(32, seed=2)),
    }


def finetune(cfg: dict, **kwargs):
    """`tunewise.finetune` that also hands back the Trainer it ran (for in-memory checks)."""
    trainers: list[TunewiseTrainer] = []
    original = TunewiseTrainer.train

    def spy(self, *args, **kw):
        trainers.append(self)
        return original(self, *args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TunewiseTrainer, "train", spy)
        result = tunewise.finetune(cfg, **kwargs)
    assert len(trainers) == 1
    return result, trainers[0]


@pytest.fixture(scope="module")
def runs(tiny_bert, tiny_llama, data, tmp_path_factory):
    """Trains each (model, strategy) of RUNS once, on first use."""
    models = {"tiny_bert": tiny_bert, "tiny_llama": tiny_llama}
    cache: dict[tuple[str, str], tuple] = {}

    def get(key: str, strategy: str):
        if (key, strategy) not in cache:
            out = tmp_path_factory.mktemp("runs") / f"{key}-{strategy}"
            cache[key, strategy] = finetune(toy_config(models[key], data, out, strategy))
        return cache[key, strategy]

    return get


def tokenized(task, tokenizer, texts: list[str]):
    from datasets import Dataset

    return task.tokenize(Dataset.from_dict({"text": texts}), tokenizer)


# --------------------------------------------------------------------------- save → load → predict


@pytest.mark.parametrize(("key", "strategy"), RUNS)
def test_loaded_run_reproduces_the_trained_models_predictions(key, strategy, runs):
    result, trainer = runs(key, strategy)
    predictor = tunewise.load(result.run_dir)
    encoded = tokenized(predictor.task, predictor.tokenizer, TEXTS)
    collator = predictor.task.collator(predictor.tokenizer)

    in_memory = predict_logits(trainer.model, encoded, collator, progress=False)
    loaded = predict_logits(predictor.model, encoded, collator, progress=False)
    np.testing.assert_allclose(loaded, in_memory, rtol=1e-5, atol=1e-5)

    # predict() decodes those same logits, in input order
    predictions = predictor.predict(TEXTS)
    expected = predictor.task.decode(in_memory)
    assert [p["label"] for p in predictions] == [e["label"] for e in expected]
    for got, want in zip(predictions, expected, strict=True):
        assert got["score"] == pytest.approx(want["score"], abs=1e-5)
        assert got["scores"] == pytest.approx(want["scores"], abs=1e-5)
        assert set(got["scores"]) == {"neg", "pos"}
        assert got["score"] == max(got["scores"].values())

    # ...and they are not what the untrained model (same seed, same head init) says
    fresh = assemble(predictor.config, predictor.task).model
    untrained = predict_logits(fresh, encoded, collator, progress=False)
    assert np.abs(untrained - in_memory).max() > 1e-3


@pytest.mark.parametrize(("key", "strategy"), RUNS)
def test_evaluate_reproduces_the_runs_validation_metrics(key, strategy, runs, data):
    result, _ = runs(key, strategy)
    metrics = tunewise.load(result.run_dir).evaluate(data["validation"], progress=False)
    assert metrics == result.metrics["validation"]
    assert metrics["n_examples"] == 32
    on_disk = json.loads((result.run_dir / "metrics.json").read_text())
    assert on_disk == result.metrics == read_manifest(result.run_dir)["metrics"]


@pytest.mark.parametrize(("key", "strategy"), RUNS)
def test_run_dir_layout_and_manifest(key, strategy, runs, data):
    result, _ = runs(key, strategy)
    run = result.run_dir
    for name in (MANIFEST, "metrics.json", "config.yaml", "report.md"):
        assert (run / name).is_file(), name
    for png in ("loss_curve.png", "confusion_matrix.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert (run / WEIGHTS).is_file()
    assert (run / "tokenizer").is_dir()
    assert any((run / "tokenizer").glob("tokenizer*.json"))
    assert not (run / "checkpoints").exists()

    manifest = json.loads((run / MANIFEST).read_text())
    assert manifest == result.manifest
    assert manifest["task"] == {
        "type": "classification",
        "state": {"labels": ["neg", "pos"], "multi_label": False},
    }
    assert manifest["strategy"]["name"] == strategy
    params = manifest["strategy"]["parameters"]
    assert set(params) == {"trainable", "total", "percent"}
    assert 0 < params["trainable"] <= params["total"]
    assert params["percent"] == pytest.approx(100 * params["trainable"] / params["total"], abs=1e-3)
    assert manifest["config"]["strategy"]["name"] == strategy
    assert manifest["config"]["output_dir"] == str(run)
    assert {"torch", "transformers", "peft"} <= set(manifest["versions"])
    for split in ("train", "validation"):
        digest = hashlib.sha256(data[split].read_bytes()).hexdigest()
        assert manifest["data"][split]["sha256"] == digest
        assert manifest["data"][split]["path"] == str(data[split])
    assert manifest["data"]["train"]["n_examples"] == manifest["training"]["n_train"] == 64
    assert manifest["data"]["train"]["label_counts"] == {"neg": 32, "pos": 32}
    assert manifest["training"]["steps"] == 16  # 2 epochs x 64 / 8

    # the saved config is a valid config again, and the same one
    assert load_config(run / "config.yaml").to_dict() == manifest["config"]

    report = (run / "report.md").read_text()
    assert strategy in report.splitlines()[0]
    assert "(loss_curve.png)" in report
    assert "(confusion_matrix.png)" in report


def expected_saved(key: str, strategy: str, name: str) -> bool:
    """Whether a parameter name belongs in model/trained.safetensors for this strategy."""
    blocks = {"tiny_bert": "backbone.encoder.layer", "tiny_llama": "backbone.layers"}[key]
    if strategy == "full":
        return True
    if strategy == "frozen":
        return name.startswith("classifier.")
    if strategy == "partial":  # default top_blocks=2: both blocks of these 2-block models
        return name.startswith((f"{blocks}.", "backbone.norm.", "classifier."))
    assert strategy == "lora"
    return ".lora_A." in name or ".lora_B." in name or ".modules_to_save." in name


@pytest.mark.parametrize(("key", "strategy"), RUNS)
def test_saved_weights_are_exactly_the_trained_parameters(key, strategy, runs):
    result, trainer = runs(key, strategy)
    path = result.run_dir / WEIGHTS
    saved = load_file(str(path))
    info = result.manifest["strategy"]["saved_weights"]
    assert info == {"tensors": len(saved), "bytes": path.stat().st_size}
    assert (
        sum(t.numel() for t in saved.values())
        == result.manifest["strategy"]["parameters"]["trainable"]
    )

    params = dict(trainer.model.named_parameters())
    trained = {n for n, p in params.items() if p.requires_grad}
    assert set(saved) == trained
    assert all(expected_saved(key, strategy, n) for n in saved)
    for name, tensor in saved.items():
        assert torch.equal(tensor, params[name].detach().cpu()), name
    if strategy == "full":
        assert set(saved) == set(params)


@pytest.mark.parametrize("key", ["tiny_bert", "tiny_llama"])
def test_lora_run_stores_far_less_than_full(key, runs):
    lora, _ = runs(key, "lora")
    full, _ = runs(key, "full")
    numel = {}
    for name, result in (("lora", lora), ("full", full)):
        numel[name] = sum(t.numel() for t in load_file(str(result.run_dir / WEIGHTS)).values())
        assert numel[name] == result.manifest["strategy"]["parameters"]["trainable"]
    # r=8 adapters on 32-wide layers: ~1/3 of these toy models (a real model: well under 1%)
    assert numel["lora"] < 0.45 * numel["full"]
    lora_bytes = (lora.run_dir / WEIGHTS).stat().st_size
    full_bytes = (full.run_dir / WEIGHTS).stat().st_size
    assert lora_bytes < 0.5 * full_bytes


# ------------------------------------------------------------------------------ output dirs


def test_check_output_dir_refuses_a_non_empty_dir_without_overwrite(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("earlier run")
    with pytest.raises(TunewiseError, match="not empty"):
        check_output_dir(run, overwrite=False)
    check_output_dir(run, overwrite=False, resume=True)
    check_output_dir(run, overwrite=True)
    assert (run / "keep.txt").read_text() == "earlier run"  # checking never changes anything


def test_check_output_dir_accepts_new_or_empty_dirs_and_rejects_files(tmp_path):
    check_output_dir(tmp_path / "a" / "b", overwrite=False)
    assert not (tmp_path / "a").exists()
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", overwrite=False)  # empty: fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(TunewiseError, match="not a directory"):
        check_output_dir(tmp_path / "file", overwrite=True)


def test_finetune_into_an_earlier_run_needs_overwrite(runs):
    result, _ = runs("tiny_bert", "frozen")
    before = (result.run_dir / MANIFEST).read_bytes()
    with pytest.raises(TunewiseError, match="overwrite"):
        tunewise.finetune(result.manifest["config"])
    assert (result.run_dir / MANIFEST).read_bytes() == before


# ----------------------------------------------------------------------------- training options


def test_early_stopping_stops_when_the_metric_stops_improving(tiny_bert, data, tmp_path):
    # A learning rate too small to change any prediction: accuracy never improves after epoch 1,
    # so patience 1 stops after the 2nd evaluation instead of running all 5 epochs (40 steps).
    training = {"epochs": 5, "early_stopping_patience": 1, "learning_rate": 1e-9}
    cfg = toy_config(tiny_bert, data, tmp_path / "run", "lora", training=training)
    result, trainer = finetune(cfg)
    assert result.manifest["training"]["steps"] == 2 * 8
    assert trainer.state.epoch == pytest.approx(2)
    assert (result.run_dir / MANIFEST).is_file()
    assert not (result.run_dir / "checkpoints").exists()
    assert result.metrics["validation"]["n_examples"] == 32


def test_early_stopping_needs_per_epoch_evaluation(tiny_bert, data, tmp_path):
    cfg = toy_config(
        tiny_bert,
        data,
        tmp_path / "run",
        "lora",
        training={"early_stopping_patience": 1},
        eval={"each_epoch": False},
    )
    with pytest.raises(ConfigError, match="each_epoch"):
        tunewise.finetune(cfg)


def test_a_config_error_found_before_training_keeps_the_earlier_run(tiny_bert, data, tmp_path):
    # --overwrite replaces an earlier run with a new one; a config the recipe rejects before
    # training anything should not destroy the earlier run and leave nothing in its place.
    run = tmp_path / "run"
    run.mkdir()
    (run / MANIFEST).write_text("{}")
    cfg = toy_config(
        tiny_bert,
        data,
        run,
        "lora",
        training={"early_stopping_patience": 1},
        eval={"each_epoch": False},
    )
    with pytest.raises(ConfigError, match="each_epoch"):
        tunewise.finetune(cfg, overwrite=True)
    assert (run / MANIFEST).is_file()


OPTIMIZERS = {
    "adamw": (torch.optim.AdamW, None),
    "adam": (torch.optim.Adam, None),
    "sgd": (torch.optim.SGD, 0),
    "sgd_momentum": (torch.optim.SGD, 0.9),
}


def train_briefly(model_dir, data, out, **training):
    cfg = toy_config(model_dir, data, out, "lora", training={"max_steps": 2, **training})
    return finetune(cfg)


def torch_optimizer(trainer) -> torch.optim.Optimizer:
    return getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # accelerate wraps it


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_optimizer_trains(name, tiny_bert, data, tmp_path):
    result, trainer = train_briefly(tiny_bert, data, tmp_path / "run", optimizer=name)
    assert result.manifest["training"]["steps"] == 2
    assert np.isfinite(result.manifest["training"]["final_train_loss"])
    cls, momentum = OPTIMIZERS[name]
    optimizer = torch_optimizer(trainer)
    assert type(optimizer) is cls
    if momentum is not None:
        assert all(g["momentum"] == momentum for g in optimizer.param_groups)
    assert (result.run_dir / MANIFEST).is_file()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_optimizer_uses_the_configured_learning_rate(name, tiny_bert, data, tmp_path):
    result, trainer = train_briefly(
        tiny_bert, data, tmp_path / "run", optimizer=name, scheduler="constant", warmup=0
    )
    assert result.manifest["training"]["learning_rate"] == LR
    groups = torch_optimizer(trainer).param_groups
    assert [g["initial_lr"] for g in groups] == [LR] * len(groups)
    logged = [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]
    assert logged and all(lr == pytest.approx(LR) for lr in logged)


@pytest.mark.parametrize("scheduler", ["linear", "cosine", "constant"])
def test_each_scheduler_shapes_the_learning_rate(scheduler, tiny_bert, data, tmp_path):
    result, trainer = train_briefly(
        tiny_bert,
        data,
        tmp_path / "run",
        max_steps=4,
        scheduler=scheduler,
        warmup=0,
        logging_steps=1,
    )
    assert result.manifest["training"]["steps"] == 4
    lrs = [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]
    assert len(lrs) == 4
    assert lrs[0] == pytest.approx(LR)
    drops = np.diff(lrs)
    if scheduler == "constant":
        assert lrs == pytest.approx([LR] * 4)
    elif scheduler == "linear":
        assert drops == pytest.approx([-LR / 4] * 3)
    else:  # cosine: slow, fast, slow; halfway at the midpoint
        assert all(drops < 0)
        assert lrs[2] == pytest.approx(LR / 2)
        assert abs(drops[0]) < LR / 4 < abs(drops[1])


def test_max_train_samples_limits_the_training_set(tiny_bert, data, tmp_path):
    cfg = toy_config(
        tiny_bert, data, tmp_path / "run", "lora", training={"epochs": 1, "max_train_samples": 20}
    )
    result, _ = finetune(cfg)
    manifest = result.manifest
    assert manifest["training"]["n_train"] == 20
    assert manifest["data"]["train"]["n_examples"] == 20
    assert sum(manifest["data"]["train"]["label_counts"].values()) == 20
    assert manifest["training"]["steps"] == 3  # ceil(20 / 8) batches, one epoch
    assert manifest["training"]["n_validation"] == 32  # validation untouched


def test_without_a_validation_file_a_fraction_of_train_is_held_out(tiny_bert, data, tmp_path):
    cfg = toy_config(tiny_bert, data, tmp_path / "run", "lora", training={"epochs": 1})
    cfg["data"] = {"train": str(data["train"]), "validation_fraction": 0.25}
    result, _ = finetune(cfg)
    manifest = result.manifest
    assert manifest["training"]["n_validation"] == 16
    assert manifest["training"]["n_train"] == 48
    assert manifest["data"]["validation"]["held_out_from"] == "train"
    assert manifest["data"]["validation"]["fraction"] == 0.25
    assert result.metrics["validation"]["n_examples"] == 16
    counts = [manifest["data"][s]["label_counts"] for s in ("train", "validation")]
    assert {k: counts[0][k] + counts[1][k] for k in counts[0]} == {"neg": 32, "pos": 32}
    assert manifest["training"]["steps"] == 6  # 48 / 8
