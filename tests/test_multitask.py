"""Multi-task learning (`tasks:` + `multitask:`): one backbone, one head per task."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from typer.testing import CliRunner

import tunewise
from conftest import NEGATIVE, POSITIVE, sentiment_records, write_jsonl
from tunewise.cli import app
from tunewise.config import load_config
from tunewise.errors import ConfigError
from tunewise.multitask.sampling import schedule, task_probabilities


def ner_records(n: int, seed: int) -> list[dict]:
    """Positive words are tagged POS, negative words NEG, the rest O (3-6 words)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        filler = rng.sample(["the", "film", "was", "really", "very"], rng.randint(1, 4))
        words = rng.sample(POSITIVE, 1) + rng.sample(NEGATIVE, 1) + filler  # lengths vary
        rng.shuffle(words)
        tags = ["B-POS" if w in POSITIVE else "B-NEG" if w in NEGATIVE else "O" for w in words]
        out.append({"tokens": words, "tags": tags})
    return out


def test_sampling_proportions_match_the_scheme():
    sizes = {"a": 900, "b": 100}
    n = 20000
    for scheme, temperature in (("proportional", 1.0), ("temperature", 2.0), ("temperature", 5)):
        expected = task_probabilities(sizes, scheme, temperature)
        counts = Counter(schedule(sizes, n, scheme, temperature, seed=3))
        for name, p in expected.items():
            assert counts[name] / n == pytest.approx(p, abs=0.01), (scheme, temperature)
    assert task_probabilities(sizes, "proportional", 2.0)["a"] == pytest.approx(0.9)
    assert task_probabilities(sizes, "temperature", 2.0)["a"] == pytest.approx(0.75)  # 30:10
    assert schedule(sizes, 6, "round_robin", 1.0, 0) == ["a", "b"] * 3
    assert schedule(sizes, 50, "temperature", 2.0, 7) == schedule(sizes, 50, "temperature", 2.0, 7)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("mt")
    return {
        "s_train": write_jsonl(root / "s.jsonl", sentiment_records(48, seed=1)),
        "s_dev": write_jsonl(root / "s_dev.jsonl", sentiment_records(16, seed=2)),
        "n_train": write_jsonl(root / "n.jsonl", ner_records(48, seed=3)),
        "n_dev": write_jsonl(root / "n_dev.jsonl", ner_records(16, seed=4)),
        "root": root,
    }


def multitask_config(model, files, out, strategy="lora", **multitask):
    return {
        "model": {"name": str(model), "max_length": 32},
        "tasks": {
            "sentiment": {
                "task": {"type": "classification"},
                "data": {"train": str(files["s_train"]), "validation": str(files["s_dev"])},
            },
            "ner": {
                "task": {"type": "token_classification"},
                "data": {"train": str(files["n_train"]), "validation": str(files["n_dev"])},
            },
        },
        "multitask": {"sampling": "round_robin", **multitask},
        "strategy": {"name": strategy},
        "training": {"epochs": 4, "batch_size": 8, "learning_rate": 1e-2, "logging_steps": 2},
        "output_dir": str(out),
        "seed": 0,
    }


@pytest.mark.parametrize("strategy", ["lora", "full"])
def test_both_heads_learn_and_predict_from_one_artifact(tiny_bert, files, strategy):
    out = files["root"] / f"run-{strategy}"
    result = tunewise.finetune(multitask_config(tiny_bert, files, out, strategy))
    v = result.metrics["validation"]
    assert v["sentiment"]["accuracy"] >= 0.7, v["sentiment"]  # chance: 0.5
    assert v["ner"]["f1"] > 0.5, v["ner"]
    assert v["combined"] == pytest.approx((v["sentiment"]["accuracy"] + v["ner"]["f1"]) / 2)
    assert (out / "model" / "trained.safetensors").is_file()
    # Each head predicts from the one run directory, with a single-task run's output shape.
    pos = tunewise.api.predict(out, ["great superb film"], task="sentiment")
    assert pos[0]["label"] == "pos" and set(pos[0]) >= {"label", "score", "scores"}
    spans = tunewise.load(out, task="ner").predict(["the film was superb"])[0]
    assert isinstance(spans, (list, dict))
    # eval with one head gives exactly that task's metrics, as a single-task eval would
    m = tunewise.api.evaluate(out, files["n_dev"], task="ner")
    assert m["f1"] == pytest.approx(v["ner"]["f1"])
    # the one shared backbone: a single set of adapters / block weights in the artifact
    from safetensors import safe_open

    with safe_open(str(out / "model" / "trained.safetensors"), "pt") as fh:
        keys = list(fh.keys())
    assert any("heads.sentiment.classifier" in k for k in keys)
    assert any("heads.ner" in k and "classifier" in k for k in keys)
    assert not any(k.startswith("heads.ner.backbone") or ".heads.ner.backbone" in k for k in keys)


def test_both_task_losses_fall_and_are_logged(tiny_bert, files, tmp_path):
    from tunewise.registry import TASKS
    from tunewise.training.build_trainer import make_trainer

    cfg = load_config(multitask_config(tiny_bert, files, tmp_path / "r", "lora"))
    task = TASKS.get("multitask")(cfg.task, cfg.data, cfg.model)
    splits, _ = task.read_splits(cfg)
    from tunewise.assemble import assemble

    built = assemble(cfg, task)
    encoded = {k: task.tokenize(v, built.tokenizer) for k, v in splits.items()}
    trainer = make_trainer(cfg, task, built.model, built.tokenizer, encoded, 1e-2, tmp_path)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss_sentiment" in h or "loss_ner" in h]
    for name in ("loss_sentiment", "loss_ner"):
        values = [h[name] for h in logs if name in h]
        assert len(values) >= 3, name
        assert values[-1] < values[0] * 0.8, (name, values)


def test_multitask_cli_and_refusals(tiny_bert, files, tmp_path):
    out = files["root"] / "run-lora"
    if not out.is_dir():
        pytest.skip("needs the lora run of the test above")
    m = tmp_path / "m.json"
    args = ["eval", str(out), "--task", "sentiment", "--data", str(files["s_dev"]), "--output", m]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "accuracy" in json.loads(m.read_text())
    missing = CliRunner().invoke(app, ["predict", str(out), "--text", "good"])
    assert missing.exit_code == 2 and "sentiment" in missing.output and "ner" in missing.output
    one = multitask_config(tiny_bert, files, tmp_path / "x")
    one["tasks"].pop("ner")
    with pytest.raises(ConfigError, match="at least two"):
        load_config(one)
    gen = multitask_config(tiny_bert, files, tmp_path / "x")
    gen["tasks"]["ner"]["task"] = {"type": "instruction"}
    with pytest.raises(ConfigError, match="shares one encoder backbone"):
        load_config(gen)
