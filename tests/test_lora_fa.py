"""LoRA-FA: A stays frozen (and is stored with the run), only B and the head train, the fused
layer keeps no input for the backward pass, and its gradients equal peft's own layer's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from strategy_helpers import (
    assert_only_trainable_moved,
    batch_of,
    build,
    logits_of,
    roundtrip,
    train_steps,
)
from test_lora_fused import two_layers  # the same two LoRA layers, peft's and fused


@pytest.fixture(params=["tiny_bert", "tiny_llama"])
def model_dir(request):
    return request.getfixturevalue(request.param)


def test_only_b_and_the_head_train_and_a_run_round_trips(model_dir, toy_data, tmp_path):
    built, task, train = build(model_dir, toy_data, tmp_path, "lora_fa")
    params = dict(built.model.named_parameters())
    a_names = [n for n in params if ".lora_A." in n]
    b_names = [n for n in params if ".lora_B." in n]
    assert a_names and len(a_names) == len(b_names)
    assert not any(params[n].requires_grad for n in a_names)
    assert all(params[n].requires_grad for n in b_names)
    trained = {n for n, p in params.items() if p.requires_grad}
    assert trained - set(b_names) and all("classifier" in n for n in trained - set(b_names))
    batch = batch_of(task, built.tokenizer, train)
    assert_only_trainable_moved(built.model, batch, steps=20, lr=3e-2)  # A is bit-identical

    _, loaded, _ = roundtrip(built, model_dir, toy_data, tmp_path, "lora_fa", batch)
    torch.testing.assert_close(loaded, logits_of(built.model, batch), atol=1e-5, rtol=0)


def test_a_changed_after_saving_is_what_loading_restores(tiny_bert, toy_data, tmp_path):
    """Without A in the file, loading would keep the fresh model's own A: perturb the trained
    model's A before saving and check the loaded model follows the file, not its init."""
    built, task, train = build(tiny_bert, toy_data, tmp_path, "lora_fa")
    batch = batch_of(task, built.tokenizer, train)
    train_steps(built.model, batch, steps=5, lr=3e-2)
    with torch.no_grad():
        for n, p in built.model.named_parameters():
            if ".lora_A." in n:
                p.mul_(-2.0)
    expected = logits_of(built.model, batch)
    untrained, loaded, _ = roundtrip(built, tiny_bert, toy_data, tmp_path, "lora_fa", batch)
    assert not torch.allclose(untrained, expected, atol=1e-4)
    torch.testing.assert_close(loaded, expected, atol=1e-5, rtol=0)


def frozen_a(model: nn.Module, frozen: bool = True) -> nn.Module:
    for name, param in model.named_parameters():
        if "lora_A" in name:
            param.requires_grad_(not frozen)
    return model


def saved_storages(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, set[int]]:
    """The output and the data pointers of every tensor autograd keeps for the backward."""
    kept: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        kept.add(t.untyped_storage().data_ptr())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    return out, kept


def test_the_fused_layer_keeps_no_input_when_a_is_frozen_and_matches_peft():
    x = torch.randn(3, 5, 16, dtype=torch.float64, requires_grad=True)
    weights = torch.linspace(-1, 1, 8, dtype=torch.float64)
    fused = frozen_a(two_layers(True))
    out, kept = saved_storages(fused, x)
    assert "LoraLinearFunction" in type(out.grad_fn).__name__
    assert x.untyped_storage().data_ptr() not in kept  # the first layer's input is not kept
    # with A training, the same layer must keep it (the check above can fail)
    _, kept_lora = saved_storages(frozen_a(fused, False), x)
    assert x.untyped_storage().data_ptr() in kept_lora
    frozen_a(fused)

    (out * weights).sum().backward()
    grad_x = x.grad.clone()
    grads = {n: p.grad for n, p in fused.named_parameters() if p.grad is not None}
    x.grad = None
    stock = frozen_a(two_layers(False))
    (stock(x) * weights).sum().backward()
    torch.testing.assert_close(grad_x, x.grad, rtol=0, atol=1e-12)
    expected = {n: p.grad for n, p in stock.named_parameters() if p.grad is not None}
    assert grads.keys() == expected.keys() and all("lora_B" in n for n in grads)
    for n in grads:
        torch.testing.assert_close(grads[n], expected[n], rtol=0, atol=1e-12)
