"""Houlsby adapters on tiny BERT and LLaMA: placed after the attention and feed-forward output
projections, identity at initialisation, exactly adapters + norms + head train, loss falls,
save → load reproduces predictions, options (reduction, placement, non-linearity), no merge."""

from __future__ import annotations

import pytest
import torch

from strategy_helpers import (
    BLOCKS,
    HEAD,
    assert_only_trainable_moved,
    assert_size_matches,
    batch_of,
    build,
    logits_of,
    roundtrip,
    train_steps,
    trainable_elements,
    trainable_names,
)
from tunewise.errors import ConfigError
from tunewise.strategies.adapter import AdaptedOutput

# Written out from the architectures, not from the code under test.
SUBLAYERS = {
    "tiny_bert": {"attention": "attention.output.dense", "ffn": "output.dense"},
    "tiny_llama": {"attention": "self_attn.o_proj", "ffn": "mlp.down_proj"},
}
NORMS = {
    "tiny_bert": [
        "attention.output.LayerNorm.weight",
        "attention.output.LayerNorm.bias",
        "output.LayerNorm.weight",
        "output.LayerNorm.bias",
    ],
    "tiny_llama": ["input_layernorm.weight", "post_attention_layernorm.weight"],
}


@pytest.fixture(params=["tiny_bert", "tiny_llama"])
def model(request):
    return request.param, request.getfixturevalue(request.param)


def adapter_names(key: str, places: list[str]) -> set[str]:
    return {
        f"{BLOCKS[key]}.{i}.{SUBLAYERS[key][p]}.adapter.{layer}.{w}"
        for i in range(2)
        for p in places
        for layer in ("down", "up")
        for w in ("weight", "bias")
    }


def test_adapters_sit_after_both_sublayers_and_only_they_norms_and_head_train(
    model, toy_data, tmp_path
):
    key, model_dir = model
    built, task, train = build(model_dir, toy_data, tmp_path, "adapter", reduction_factor=8)
    norms = {f"{BLOCKS[key]}.{i}.{n}" for i in range(2) for n in NORMS[key]}
    assert (
        set(trainable_names(built.model)) == adapter_names(key, ["attention", "ffn"]) | norms | HEAD
    )
    for i in range(2):
        block = built.model.get_submodule(f"{BLOCKS[key]}.{i}")
        for path in SUBLAYERS[key].values():
            wrapped = block.get_submodule(path)
            assert isinstance(wrapped, AdaptedOutput)
            assert wrapped.adapter.down.weight.shape == (32 // 8, 32)  # bottleneck 4
            assert wrapped.adapter.up.weight.shape == (32, 32 // 8)
    batch = batch_of(task, built.tokenizer, train)
    # the strategy's own short-run rate (1e-3 × 3); 3e-2 makes tiny LLaMA's adapters oscillate
    lr = built.strategy.default_learning_rate(40)
    assert lr == pytest.approx(3e-3)
    assert_only_trainable_moved(built.model, batch, steps=40, lr=lr)


def test_adapters_start_as_the_identity(model, toy_data, tmp_path):
    """With zero-initialised up-projections the adapted model computes what the base did."""
    _, model_dir = model
    plain, task, train = build(model_dir, toy_data, tmp_path / "a", "frozen")
    adapted, _, _ = build(model_dir, toy_data, tmp_path / "b", "adapter")
    batch = batch_of(task, plain.tokenizer, train)
    torch.testing.assert_close(logits_of(adapted.model, batch), logits_of(plain.model, batch))


@pytest.mark.parametrize("placement", ["attention", "ffn"])
def test_placement_restricts_where_adapters_go(placement, toy_data, tmp_path, tiny_bert):
    built, _, _ = build(
        tiny_bert, toy_data, tmp_path, "adapter", placement=placement, train_norms=False
    )
    assert set(trainable_names(built.model)) == adapter_names("tiny_bert", [placement]) | HEAD
    assert list(built.strategy.details["sublayers"]) == [placement]


def test_non_linearity_option_is_used(toy_data, tmp_path, tiny_bert):
    built, _, _ = build(tiny_bert, toy_data, tmp_path, "adapter", non_linearity="tanh")
    wrapped = built.model.get_submodule("backbone.encoder.layer.0.output.dense")
    assert isinstance(wrapped.adapter.act, torch.nn.Tanh)


def test_save_load_reproduces_predictions_and_saves_only_what_trained(model, toy_data, tmp_path):
    _, model_dir = model
    built, task, train = build(model_dir, toy_data, tmp_path, "adapter")
    batch = batch_of(task, built.tokenizer, train)
    train_steps(built.model, batch, steps=5, lr=3e-3)
    trained = logits_of(built.model, batch)
    untrained, loaded, size = roundtrip(built, model_dir, toy_data, tmp_path, "adapter", batch)
    assert not torch.allclose(untrained, trained, atol=1e-4)
    torch.testing.assert_close(loaded, trained, atol=1e-5, rtol=0)
    assert_size_matches(size, trainable_elements(built.model), len(trainable_names(built.model)))


def test_adapter_cannot_be_merged(toy_data, tmp_path, tiny_bert):
    built, _, _ = build(tiny_bert, toy_data, tmp_path, "adapter")
    with pytest.raises(ConfigError, match="cannot be merged"):
        built.strategy.merge(built.model)


def test_bad_option_is_a_config_error(toy_data, tmp_path, tiny_bert):
    with pytest.raises(ConfigError, match="reduction_factor"):
        build(tiny_bert, toy_data, tmp_path, "adapter", reduction_factor=0)
