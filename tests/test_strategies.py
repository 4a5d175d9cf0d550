"""Strategies: exactly which parameters train, parameter accounting, block discovery, learning
rate defaults, and that a few optimizer steps on the resulting model lower the training loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import toy_config
from strategy_helpers import trainable_names
from tunewise.assemble import assemble
from tunewise.config import load_config
from tunewise.errors import ConfigError
from tunewise.registry import STRATEGIES, TASKS
from tunewise.strategies.base import count_parameters, find_blocks

STRATEGY_NAMES = ["full", "partial", "frozen", "lora", "bitfit"]
MODELS = ["tiny_bert", "tiny_llama"]
# every (model, strategy) pair that applies: LLaMA has no biases for bitfit
APPLICABLE = [(m, s) for m in MODELS for s in STRATEGY_NAMES if (m, s) != ("tiny_llama", "bitfit")]

# Independent of the code under test: what each tiny architecture looks like.
BLOCKS = {"tiny_bert": "backbone.encoder.layer", "tiny_llama": "backbone.layers"}
# Linear layers inside one block (relative to the block).
BLOCK_LINEARS = {
    "tiny_bert": [
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "intermediate.dense",
        "output.dense",
    ],
    "tiny_llama": [
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.o_proj",
        "mlp.gate_proj",
        "mlp.up_proj",
        "mlp.down_proj",
    ],
}
# Parameters that come after the block stack in the backbone (final norm), by model.
AFTER_BLOCKS = {"tiny_bert": set(), "tiny_llama": {"backbone.norm.weight"}}
HEAD = {"classifier.weight", "classifier.bias"}
PEFT = "base_model.model."
LORA_HEAD = {
    PEFT + "classifier.modules_to_save.default.weight",
    PEFT + "classifier.modules_to_save.default.bias",
}


def build(model_dir: Path, data: dict[str, Path], tmp_path: Path, strategy: str, **options):
    """(assembled model, task, config) for `strategy` with extra strategy options."""
    raw = toy_config(model_dir, data, tmp_path / "run", strategy)
    raw["strategy"].update(options)
    cfg = load_config(raw)
    task = TASKS.get("classification")(cfg.task, cfg.data, cfg.model)
    task.read(cfg.data.split("train"), fit=True)
    return assemble(cfg, task), task, cfg


@pytest.fixture(params=MODELS)
def model(request) -> tuple[str, Path]:
    return request.param, request.getfixturevalue(request.param)


def all_names(model_dir, data, tmp_path) -> set[str]:
    built, _, _ = build(model_dir, data, tmp_path, "frozen")
    return {n for n, _ in built.model.named_parameters()}


# ------------------------------------------------------------------------ which parameters train


def test_full_trains_every_parameter(model, toy_data, tmp_path):
    _, model_dir = model
    built, _, _ = build(model_dir, toy_data, tmp_path, "full")
    names = [n for n, _ in built.model.named_parameters()]
    assert set(trainable_names(built.model)) == set(names)
    assert set(names) >= HEAD


def test_frozen_trains_only_the_head(model, toy_data, tmp_path):
    _, model_dir = model
    built, _, _ = build(model_dir, toy_data, tmp_path, "frozen")
    assert set(trainable_names(built.model)) == HEAD
    report = count_parameters(built.model)
    assert report.trainable == 32 * 2 + 2  # hidden 32 → 2 labels


def test_bitfit_trains_biases_and_head_only(toy_data, tmp_path, tiny_bert):
    built, _, _ = build(tiny_bert, toy_data, tmp_path, "bitfit")
    names = {n for n, _ in built.model.named_parameters()}
    biases = {n for n in names if n.endswith(".bias")}
    assert len(biases - HEAD) > 10  # the backbone's biases, not only the head's
    assert set(trainable_names(built.model)) == biases | HEAD
    assert not [n for n in trainable_names(built.model) if n.endswith(".weight") and n not in HEAD]


def test_bitfit_on_llama_is_a_config_error(toy_data, tmp_path, tiny_llama):
    with pytest.raises(ConfigError, match="bias"):
        build(tiny_llama, toy_data, tmp_path, "bitfit")


def test_partial_trains_top_block_what_follows_and_head(model, toy_data, tmp_path):
    key, model_dir = model
    names = all_names(model_dir, toy_data, tmp_path)
    built, _, _ = build(model_dir, toy_data, tmp_path, "partial", top_blocks=1)
    trainable = set(trainable_names(built.model))
    top = {n for n in names if n.startswith(f"{BLOCKS[key]}.1.")}
    assert top, "expected parameters in the last block"
    assert trainable == top | AFTER_BLOCKS[key] | HEAD
    assert not [n for n in trainable if n.startswith(f"{BLOCKS[key]}.0.")]
    assert not [n for n in trainable if "embed" in n]
    assert built.strategy.details["n_blocks"] == 2


def test_partial_with_more_blocks_than_exist_trains_all_blocks(model, toy_data, tmp_path):
    key, model_dir = model
    names = all_names(model_dir, toy_data, tmp_path)
    built, _, _ = build(model_dir, toy_data, tmp_path, "partial", top_blocks=5)
    blocks = {n for n in names if n.startswith(f"{BLOCKS[key]}.")}
    assert set(trainable_names(built.model)) == blocks | AFTER_BLOCKS[key] | HEAD


def lora_names(key: str, leaves: list[str]) -> set[str]:
    return {
        f"{PEFT}{BLOCKS[key]}.{i}.{leaf}.lora_{ab}.default.weight"
        for i in range(2)
        for leaf in leaves
        for ab in "AB"
    }


def test_lora_adapts_every_linear_layer_of_the_blocks(model, toy_data, tmp_path):
    key, model_dir = model
    built, _, _ = build(model_dir, toy_data, tmp_path, "lora")
    trainable = set(trainable_names(built.model))
    assert trainable == lora_names(key, BLOCK_LINEARS[key]) | LORA_HEAD
    # the original head and every pretrained weight stay frozen
    params = dict(built.model.named_parameters())
    assert not params[PEFT + "classifier.original_module.weight"].requires_grad
    assert built.strategy.details["n_adapted_layers"] == 2 * len(BLOCK_LINEARS[key])
    # the size LoRA promises: r * (in + out) per adapted layer, plus the head copy
    r = 8
    expected = sum(
        r * (m.in_features + m.out_features)
        for name, m in built.model.named_modules()
        if name.endswith("base_layer") and isinstance(m, nn.Linear)
    )
    assert count_parameters(built.model).trainable == expected + 32 * 2 + 2


@pytest.mark.parametrize(("key", "target"), [("tiny_bert", "query"), ("tiny_llama", "q_proj")])
def test_lora_target_modules_restricts_adapted_layers(key, target, toy_data, tmp_path, request):
    model_dir = request.getfixturevalue(key)
    built, _, _ = build(model_dir, toy_data, tmp_path, "lora", target_modules=[target], r=4)
    leaf = next(x for x in BLOCK_LINEARS[key] if x.endswith(target))
    assert set(trainable_names(built.model)) == lora_names(key, [leaf]) | LORA_HEAD
    params = dict(built.model.named_parameters())
    assert params[f"{PEFT}{BLOCKS[key]}.0.{leaf}.lora_A.default.weight"].shape == (4, 32)
    assert built.strategy.details["target_modules"] == [target]


@pytest.mark.parametrize(
    ("key", "available"),
    [
        ("tiny_bert", "dense, key, query, value"),
        ("tiny_llama", "down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj"),
    ],
)
def test_lora_unknown_target_module_lists_available_names(
    key, available, toy_data, tmp_path, request
):
    model_dir = request.getfixturevalue(key)
    with pytest.raises(ConfigError) as info:
        build(model_dir, toy_data, tmp_path, "lora", target_modules=["qkv"])
    assert "qkv" in str(info.value)
    assert available in str(info.value)


# ------------------------------------------------------------------ accounting and block discovery


@pytest.mark.parametrize(("key", "strategy"), APPLICABLE)
def test_count_parameters_matches_a_direct_count(key, strategy, toy_data, tmp_path, request):
    built, _, _ = build(request.getfixturevalue(key), toy_data, tmp_path, strategy)
    report = count_parameters(built.model)
    total, trainable = report.total, report.trainable
    head = 32 * 2 + 2  # the classifier: hidden 32 → 2 labels, with bias
    if strategy == "full":  # transformers' own count of the backbone, plus the head
        assert (trainable, total) == (total, built.model.backbone.num_parameters() + head)
    elif strategy == "frozen":
        assert trainable == head
    else:
        assert head < trainable < total
    assert report.percent == pytest.approx(100.0 * trainable / total)
    assert report.as_dict() == {
        "trainable": trainable,
        "total": total,
        "percent": round(100.0 * trainable / total, 4),
    }
    assert f"{trainable:,}" in str(report)


def test_count_parameters_counts_tied_weights_once():
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    b.bias.requires_grad_(False)
    report = count_parameters(nn.Sequential(a, b))
    assert (report.trainable, report.total) == (16 + 4, 16 + 4 + 4)


def test_find_blocks_finds_the_transformer_stack(model, toy_data, tmp_path):
    key, model_dir = model
    built, _, _ = build(model_dir, toy_data, tmp_path, "frozen")
    name, blocks = find_blocks(built.model)
    assert name == BLOCKS[key]
    assert isinstance(blocks, nn.ModuleList)
    assert len(blocks) == 2
    assert blocks is built.model.get_submodule(BLOCKS[key])


def test_find_blocks_without_a_block_stack_is_a_config_error():
    with pytest.raises(ConfigError, match="transformer blocks"):
        find_blocks(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))


# ----------------------------------------------------------------------------- learning rates


def strategy(name: str):
    cls = STRATEGIES.get(name)
    return cls(cls.Options())


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_default_learning_rate_is_larger_for_short_runs_and_capped(name):
    s = strategy(name)
    steps = [1, 10, 50, 100, 300, 1000, 5000, 100_000]
    rates = [s.default_learning_rate(n) for n in steps]
    assert rates == sorted(rates, reverse=True)  # never grows with more steps
    assert s.default_learning_rate(10) > s.default_learning_rate(10_000)
    cap = s.base_learning_rate * s.lr_max_scale
    assert s.default_learning_rate(1) == pytest.approx(cap, rel=1e-2)
    assert s.default_learning_rate(10) == pytest.approx(cap, rel=1e-2)  # already capped
    assert max(rates) <= cap * 1.001
    assert s.default_learning_rate(s.lr_reference_steps) == pytest.approx(s.base_learning_rate)
    assert s.default_learning_rate(4 * s.lr_reference_steps) < s.default_learning_rate(
        s.lr_reference_steps // 4
    )
    assert s.default_learning_rate(100_000) == pytest.approx(s.base_learning_rate)  # floor
    assert s.default_learning_rate(0) == s.default_learning_rate(1)


def test_lora_default_learning_rate_exceeds_full():
    lora, full = strategy("lora"), strategy("full")
    for steps in (1, 20, 200, 1000, 20_000):
        assert lora.default_learning_rate(steps) > full.default_learning_rate(steps)


# ------------------------------------------------------------------------------- loss falls


def batch_of(task, tokenizer, dataset, n: int = 16) -> dict[str, torch.Tensor]:
    encoded = task.tokenize(dataset.select(range(n)), tokenizer)
    keep = ["input_ids", "token_type_ids", "attention_mask", "labels"]
    encoded = encoded.select_columns([c for c in keep if c in encoded.column_names])
    return task.collator(tokenizer)([encoded[i] for i in range(n)])


def eval_loss(model: nn.Module, batch) -> float:
    model.eval()
    with torch.no_grad():
        return float(model(**batch).loss)


@pytest.mark.parametrize(("key", "strategy_name"), APPLICABLE)
def test_a_few_optimizer_steps_lower_the_training_loss(
    key, strategy_name, toy_data, tmp_path, request
):
    built, task, cfg = build(request.getfixturevalue(key), toy_data, tmp_path, strategy_name)
    train = task.read(cfg.data.split("train"), fit=True)
    batch = batch_of(task, built.tokenizer, train)
    assert batch["input_ids"].shape[0] == 16
    assert sorted(set(batch["labels"].tolist())) == [0, 1]

    model_ = built.model
    frozen_before = {
        n: p.detach().clone() for n, p in model_.named_parameters() if not p.requires_grad
    }
    trained = [p for p in model_.parameters() if p.requires_grad]
    trained_before = [p.detach().clone() for p in trained]
    before = eval_loss(model_, batch)
    optimizer = torch.optim.AdamW(trained, lr=1e-2)
    torch.manual_seed(0)
    for _ in range(12):
        model_.train()
        optimizer.zero_grad()
        model_(**batch).loss.backward()
        optimizer.step()
    after = eval_loss(model_, batch)

    assert after < 0.95 * before, (before, after)
    # frozen parameters really did not move; every trainable tensor got an update
    for n, p in model_.named_parameters():
        if n in frozen_before:
            assert torch.equal(p, frozen_before[n]), n
    assert all(not torch.equal(p, b) for p, b in zip(trained, trained_before, strict=True))
