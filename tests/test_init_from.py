"""`init_from: RUN_DIR`: continue a run's tensors, merge it for another strategy or task, refuse
what cannot work, record the parent and rebuild it when the child loads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import tunewise
from conftest import sentiment_records, toy_config, write_jsonl
from strategy_helpers import batch_of, logits_of
from tunewise.artifacts import WEIGHTS, read_manifest
from tunewise.assemble import assemble
from tunewise.config import load_config
from tunewise.errors import ConfigError
from tunewise.registry import TASKS
from tunewise.serving.predictor import Predictor


def _train(model_dir, data, out, strategy="lora", **kw):
    raw = toy_config(model_dir, data, out, strategy, training={"epochs": 1, "max_steps": 4}, **kw)
    return tunewise.finetune(raw)


@pytest.fixture(scope="module")
def module_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    return {
        "train": write_jsonl(d / "train.jsonl", sentiment_records(48, seed=1)),
        "validation": write_jsonl(d / "dev.jsonl", sentiment_records(16, seed=2)),
    }


@pytest.fixture(scope="module")
def lora_parent(tiny_bert, module_data, tmp_path_factory):
    return _train(tiny_bert, module_data, tmp_path_factory.mktemp("p") / "lora").run_dir


def _child_model(tiny_bert, data, parent, tmp_path, strategy="lora", **kw):
    raw = toy_config(tiny_bert, data, tmp_path / "child", strategy, init_from=str(parent), **kw)
    cfg = load_config(raw)
    task = TASKS.get(cfg.task.type)(cfg.task, cfg.data, cfg.model)
    train = task.read(cfg.data.split("train"), fit=True)
    return assemble(cfg, task), task, train


def test_same_strategy_and_task_continues_the_parents_tensors(
    tiny_bert, module_data, lora_parent, tmp_path
):
    built, task, train = _child_model(tiny_bert, module_data, lora_parent, tmp_path)
    assert built.init_from["mode"] == "continue"
    from safetensors.torch import load_file

    saved = load_file(str(lora_parent / WEIGHTS))
    params = dict(built.model.named_parameters())
    assert saved and all(torch.equal(params[k], v) for k, v in saved.items())
    # the same trainable tensors as the parent: the same adapter keeps training
    assert {n for n, p in params.items() if p.requires_grad} == set(saved)
    batch = batch_of(task, built.tokenizer, train)
    parent = Predictor(lora_parent, device="cpu")
    assert torch.allclose(logits_of(built.model, batch), logits_of(parent.model, batch), atol=1e-6)


def test_child_run_records_the_parent_and_loads_only_while_it_is_intact(
    tiny_bert, module_data, tmp_path
):
    parent = _train(tiny_bert, module_data, tmp_path / "parent").run_dir
    child = _train(tiny_bert, module_data, tmp_path / "child", init_from=str(parent))
    info = child.manifest["init_from"]
    assert info["run"] == str(parent.resolve()) and info["mode"] == "continue"
    assert len(info["sha256"]) == 64
    texts = ["good great film", "awful bad plot"]
    before = Predictor(child.run_dir, device="cpu").predict(texts)
    # a chain: a grandchild continues the child, which is rebuilt on the parent
    from safetensors.torch import load_file

    grand, _, _ = _child_model(tiny_bert, module_data, child.run_dir, tmp_path)
    params = dict(grand.model.named_parameters())
    saved = load_file(str(child.run_dir / WEIGHTS))
    assert all(torch.equal(params[k], v) for k, v in saved.items())
    moved = tmp_path / "moved"
    shutil.move(parent, moved)
    with pytest.raises(ConfigError, match="gone or incomplete"):
        Predictor(child.run_dir)
    shutil.move(moved, parent)
    assert Predictor(child.run_dir, device="cpu").predict(texts) == before
    (parent / WEIGHTS).write_bytes((parent / WEIGHTS).read_bytes() + b" ")
    with pytest.raises(ConfigError, match="changed since"):
        Predictor(child.run_dir)


def test_another_strategy_starts_from_the_merged_parent_with_its_head(
    tiny_bert, module_data, lora_parent, tmp_path
):
    built, task, train = _child_model(tiny_bert, module_data, lora_parent, tmp_path, "full")
    assert built.init_from["mode"] == "merged"
    assert all(p.requires_grad for p in built.model.parameters())  # full: plain weights train
    batch = batch_of(task, built.tokenizer, train)
    parent = Predictor(lora_parent, device="cpu")
    assert torch.allclose(logits_of(built.model, batch), logits_of(parent.model, batch), atol=1e-5)


def test_another_label_set_keeps_the_backbone_and_builds_a_new_head(
    tiny_bert, module_data, lora_parent, tmp_path
):
    labels = ["x", "y", "z"]
    records = [{**r, "label": labels[i % 3]} for i, r in enumerate(sentiment_records(24))]
    data = {"train": write_jsonl(tmp_path / "t3.jsonl", records), "validation": None}
    data["validation"] = data["train"]
    built, _, _ = _child_model(tiny_bert, data, lora_parent, tmp_path)
    assert built.init_from["mode"] == "merged"  # lora → lora across tasks: merge, fresh adapter
    model = built.model
    head = model.base_model.model.classifier.modules_to_save["default"]
    assert head.weight.shape[0] == 3
    merged = tunewise.api.merge(lora_parent)
    mine = model.get_base_model().backbone.encoder.layer[0].attention.self.query
    theirs = merged.backbone.encoder.layer[0].attention.self.query
    assert torch.equal(mine.base_layer.weight, theirs.weight)  # the parent's merged weights
    assert torch.count_nonzero(mine.lora_B["default"].weight) == 0  # a fresh adapter on top


def test_a_continued_run_keeps_the_parents_labels_when_new_data_shows_fewer(
    tiny_bert, module_data, lora_parent, tmp_path
):
    only_pos = [r for r in sentiment_records(40, seed=5) if r["label"] == "pos"]
    data = {"train": write_jsonl(tmp_path / "pos.jsonl", only_pos)}
    data["validation"] = module_data["validation"]
    raw = toy_config(tiny_bert, data, tmp_path / "c", training={"max_steps": 1})
    raw["init_from"] = str(lora_parent)
    child = tunewise.finetune(raw)
    assert child.manifest["task"]["state"]["labels"] == ["neg", "pos"]
    assert child.manifest["init_from"]["mode"] == "continue"


def test_different_base_model_is_refused_before_anything_is_written(
    tiny_llama, module_data, lora_parent, tmp_path
):
    raw = toy_config(tiny_llama, module_data, tmp_path / "out", init_from=str(lora_parent))
    with pytest.raises(ConfigError, match="trained on base model"):
        tunewise.finetune(raw)
    assert not (tmp_path / "out").exists()


def test_missing_or_unfinished_parent_is_refused(tiny_bert, module_data, tmp_path):
    raw = toy_config(tiny_bert, module_data, tmp_path / "out", init_from=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="not a directory"):
        tunewise.finetune(raw)
    (tmp_path / "half").mkdir()
    raw["init_from"] = str(tmp_path / "half")
    with pytest.raises(ConfigError, match="not a finished tunewise run"):
        tunewise.finetune(raw)


def test_unmergeable_parent_refuses_another_strategy_but_continues_its_own(
    tiny_bert, module_data, tmp_path
):
    parent = _train(tiny_bert, module_data, tmp_path / "adapter", "adapter").run_dir
    raw = toy_config(tiny_bert, module_data, tmp_path / "out", "lora", init_from=str(parent))
    with pytest.raises(ConfigError, match="cannot be merged"):
        tunewise.finetune(raw)
    assert not (tmp_path / "out").exists()
    built, _, _ = _child_model(tiny_bert, module_data, parent, tmp_path, "adapter")
    assert built.init_from["mode"] == "continue"


def test_manifest_of_a_run_without_init_from_has_no_parent(lora_parent):
    assert "init_from" not in read_manifest(Path(lora_parent))
    assert read_manifest(Path(lora_parent))["config"]["init_from"] is None


def test_lora_sft_to_another_task_merges_so_disabled_adapters_are_the_parent(tmp_path):
    """SFT → chat (as SFT → preference): the parent's adapter is merged into the base and a fresh
    one trains on top, so the child with its adapters disabled is exactly the SFT model."""
    from generation_fixtures import build_llama, chat_records, instruction_records, write

    model_dir = build_llama(tmp_path / "llama")
    sft = {
        "model": {"name": str(model_dir), "max_length": 64},
        "task": {"type": "instruction"},
        "data": {"train": str(write(tmp_path / "i.jsonl", instruction_records(16)))},
        "strategy": {"name": "lora"},
        "training": {"max_steps": 3, "batch_size": 4, "learning_rate": 2e-2},
        "output_dir": str(tmp_path / "sft"),
    }
    parent = tunewise.finetune(sft).run_dir
    child_raw = {
        **sft,
        "task": {"type": "chat"},
        "data": {"train": str(write(tmp_path / "c.jsonl", chat_records(8)))},
        "init_from": str(parent),
    }
    cfg = load_config(child_raw)
    task = TASKS.get("chat")(cfg.task, cfg.data, cfg.model)
    built = assemble(cfg, task)
    assert built.init_from["mode"] == "merged" and built.init_from["parent_task"] == "instruction"
    ids = torch.tensor([[5, 9, 17, 33, 41, 2]])
    merged = tunewise.api.merge(parent).eval()
    base = Predictor.from_base(str(model_dir), "instruction").model
    built.model.eval()
    with torch.no_grad(), built.model.disable_adapter():
        reference = built.model(input_ids=ids).logits
    with torch.no_grad():
        assert torch.allclose(reference, merged(input_ids=ids).logits, atol=1e-5)
        assert not torch.allclose(reference, base(input_ids=ids).logits, atol=1e-3)


def test_classification_to_ner_keeps_the_merged_backbone_under_a_token_head(
    tiny_bert, lora_parent, tmp_path
):
    records = [
        {"tokens": ["good", "film", "and", "actor"], "tags": ["B-X", "O", "O", "B-Y"]},
        {"tokens": ["the", "plot", "was", "dull"], "tags": ["O", "B-Y", "O", "O"]},
    ] * 4
    path = write_jsonl(tmp_path / "ner.jsonl", records)
    raw = toy_config(tiny_bert, {"train": path, "validation": path}, tmp_path / "n", "full")
    raw.update(task={"type": "token_classification"}, init_from=str(lora_parent))
    cfg = load_config(raw)
    task = TASKS.get(cfg.task.type)(cfg.task, cfg.data, cfg.model)
    task.read(cfg.data.split("train"), fit=True)
    built = assemble(cfg, task)
    assert (
        built.init_from["mode"] == "merged" and built.init_from["parent_task"] == "classification"
    )
    assert built.model.classifier.out_features == len(task.labels) == 5  # O + B/I of X and Y
    merged = tunewise.api.merge(lora_parent)
    for name, value in merged.backbone.state_dict().items():
        assert torch.equal(built.model.backbone.state_dict()[name], value), name
