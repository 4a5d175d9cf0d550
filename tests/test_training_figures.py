"""The behaviour published figures rest on: token-budget batches through the Trainer, the real
token count behind tokens/s, gradient accumulation's effect on steps and learning rate,
multi-label training end to end, and evaluation on data.test (with the run's report saying
which split chose the checkpoint)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

import tunewise
from conftest import FILLER, NEGATIVE, POSITIVE, sentiment_records, toy_config, write_jsonl
from tunewise import api
from tunewise.config import load_config
from tunewise.registry import STRATEGIES, TASKS


def test_token_budget_batches_through_the_trainer_stay_under_budget_and_cover_each_example(
    tiny_bert, toy_data, tmp_path
):
    from tunewise.assemble import assemble
    from tunewise.training.build_trainer import make_trainer

    budget = 96
    cfg = load_config(
        toy_config(tiny_bert, toy_data, tmp_path / "run", training={"max_tokens_per_batch": budget})
    )
    task = TASKS.get("classification")(cfg.task, cfg.data, cfg.model)
    train = task.read(cfg.data.split("train"), fit=True)
    built = assemble(cfg, task)
    encoded = {"train": task.tokenize(train, built.tokenizer)}
    encoded["validation"] = encoded["train"]
    trainer = make_trainer(cfg, task, built.model, built.tokenizer, encoded, 1e-3, tmp_path)
    expected = sorted(tuple(ids) for ids in encoded["train"]["input_ids"])
    loader = trainer.get_train_dataloader()
    orders = []
    for _ in range(2):  # two epochs: each covers every example exactly once
        seen = []
        for batch in loader:
            rows, width = batch["input_ids"].shape
            assert rows * width <= budget or rows == 1
            for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True):
                seen.append(tuple(ids[mask.bool()].tolist()))
        assert sorted(seen) == expected
        orders.append(seen)
    assert len(loader) < len(expected) / 2  # short sentences share batches
    assert orders[0] != orders[1]  # the batch order is reshuffled per epoch


@pytest.fixture(scope="module")
def accumulated_run(tiny_bert, tmp_path_factory):
    """64 examples, batches of 8, two batches per optimizer step, 2 epochs, a test file."""
    root = tmp_path_factory.mktemp("accumulate")
    data = {
        "train": write_jsonl(root / "train.jsonl", sentiment_records(64, seed=1)),
        "validation": write_jsonl(root / "dev.jsonl", sentiment_records(24, seed=2)),
    }
    test = write_jsonl(root / "test.jsonl", sentiment_records(20, seed=3))
    cfg = toy_config(tiny_bert, data, root / "run", strategy="lora")
    cfg["data"]["test"] = str(test)
    cfg["training"] = {"epochs": 2, "batch_size": 8, "gradient_accumulation_steps": 2}
    return tunewise.finetune(cfg), cfg, test


def test_gradient_accumulation_sets_the_steps_and_the_default_learning_rate(accumulated_run):
    run, _, _ = accumulated_run
    training = run.manifest["training"]
    assert training["steps"] == 2 * math.ceil(64 / 8 / 2)  # 8 batches → 4 steps per epoch
    lora = STRATEGIES.get("lora")
    expected_lr = lora(lora.Options()).default_learning_rate(8)  # planned from 8 steps, not 16
    assert training["learning_rate"] == pytest.approx(expected_lr)
    assert "for 8 steps" in training["learning_rate_source"]


def test_real_tokens_are_the_attention_masks_trained_on(accumulated_run):
    run, cfg, _ = accumulated_run
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run.run_dir / "tokenizer")
    lines = Path(cfg["data"]["train"]).read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines]
    masks = tokenizer(texts, truncation=True, max_length=cfg["model"]["max_length"])
    per_epoch = sum(sum(m) for m in masks["attention_mask"])
    assert run.manifest["training"]["real_tokens"] == 2 * per_epoch


def test_test_split_is_evaluated_and_the_report_says_which_split_chose(accumulated_run):
    run, _, test = accumulated_run
    assert run.metrics["test"]["n_examples"] == 20
    again = api.evaluate(run.run_dir, test)
    assert again["accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])
    assert run.manifest["training"]["best_checkpoint_split"] == "validation"
    report = (run.run_dir / "report.md").read_text(encoding="utf-8")
    assert "## test metrics" in report
    assert "best epoch by validation macro_f1" in report or "by validation accuracy" in report
    assert "no choice was made on" in report


def test_multi_label_trains_end_to_end(tiny_bert, tmp_path):
    rng = random.Random(0)

    def records(n: int) -> list[dict]:
        out = []
        for i in range(n):
            labels = [name for name, on in (("pos", i % 2 == 0), ("neg", i // 2 % 2 == 0)) if on]
            words = [rng.choice(POSITIVE)] * ("pos" in labels) + [rng.choice(NEGATIVE)] * (
                "neg" in labels
            )
            out.append({"text": " ".join([*words, *rng.sample(FILLER, 3)]), "label": labels})
        return out

    data = {
        "train": write_jsonl(tmp_path / "train.jsonl", records(96)),
        "validation": write_jsonl(tmp_path / "dev.jsonl", records(30)),
    }
    cfg = toy_config(tiny_bert, data, tmp_path / "run", strategy="full")
    cfg["training"].update(epochs=6, learning_rate=3e-3)
    run = tunewise.finetune(cfg)
    assert run.manifest["task"]["state"]["multi_label"] is True
    val = run.metrics["validation"]
    assert val["n_examples"] == 30 and val["micro_f1"] > 0.6
    preds = tunewise.load(run.run_dir).predict(["good great the film", "awful bad the plot"])
    for pred in preds:
        assert isinstance(pred["label"], list) and set(pred["label"]) <= {"pos", "neg"}
        # a label is on exactly when its sigmoid probability reaches the threshold (0.5)
        assert set(pred["label"]) == {k for k, v in pred["scores"].items() if v >= 0.5}
    assert "pos" in preds[0]["label"] and "neg" in preds[1]["label"]
