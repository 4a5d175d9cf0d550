"""The fused LoRA layer computes exactly what peft's layer computes, and only where it applies."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn

from tunewise.strategies.lora import LoraOptions, LoraStrategy
from tunewise.strategies.lora_fused import FusedLoraLinear


def two_layers(fused: bool, dropout: float = 0.0, bias_trains: bool = False) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 24), nn.GELU(), nn.Linear(24, 8)).double()
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=["0", "2"])
    if fused:
        config._register_custom_module({nn.Linear: FusedLoraLinear})
    model = get_peft_model(model, config)
    for name, param in model.named_parameters():
        if "lora_B" in name:  # B starts at zero; make the update (and A's gradient) non-trivial
            nn.init.normal_(param, std=0.5)
        if bias_trains and name.endswith("base_layer.bias"):
            param.requires_grad_(True)
    return model


def forward_backward(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor, dict]:
    torch.manual_seed(1)
    x = torch.randn(3, 5, 16, dtype=torch.float64, requires_grad=True)
    out = model(x)
    (out * torch.linspace(-1, 1, 8, dtype=torch.float64)).sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    return out, x.grad, grads


@pytest.mark.parametrize("bias_trains", [False, True])
def test_fused_outputs_and_gradients_equal_peft(bias_trains):
    stock = two_layers(False, bias_trains=bias_trains)
    fused = two_layers(True, bias_trains=bias_trains)
    assert isinstance(fused.base_model.model[0], FusedLoraLinear)
    out_s, gx_s, grads_s = forward_backward(stock)
    out_f, gx_f, grads_f = forward_backward(fused)
    assert "LoraLinearFunction" in type(out_f.grad_fn).__name__  # the fused node ran
    torch.testing.assert_close(out_f, out_s, rtol=0, atol=1e-12)
    torch.testing.assert_close(gx_f, gx_s, rtol=0, atol=1e-12)
    assert grads_f.keys() == grads_s.keys() and len(grads_f) == (6 if bias_trains else 4)
    for name in grads_s:
        torch.testing.assert_close(grads_f[name], grads_s[name], rtol=0, atol=1e-12)


def test_cases_the_fused_node_does_not_cover_run_peft_forward():
    with_dropout = two_layers(True, dropout=0.1)
    assert "LoraLinearFunction" not in type(forward_backward(with_dropout)[0].grad_fn).__name__
    fused = two_layers(True)
    with fused.disable_adapter():  # base model only: the update must not be added
        base_out = fused(torch.ones(2, 16, dtype=torch.float64))
    fused.base_model.model[0].merge()
    merged = fused.base_model.model[0](torch.ones(2, 16, dtype=torch.float64))
    assert "LoraLinearFunction" not in type(merged.grad_fn).__name__
    assert not torch.allclose(fused(torch.ones(2, 16, dtype=torch.float64)), base_out)


def test_lora_strategy_builds_fused_layers_that_merge_to_the_same_logits(tiny_bert):
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    model = LoraStrategy(LoraOptions()).apply(base, head_modules=["classifier"])
    layers = [m for m in model.modules() if isinstance(m, FusedLoraLinear)]
    assert layers and all(type(m.get_base_layer()) is nn.Linear for m in layers)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            nn.init.normal_(param, std=0.05)
    model.eval()
    ids = torch.randint(5, base.config.vocab_size, (2, 7))
    before = model(input_ids=ids).logits
    merged = LoraStrategy(LoraOptions()).merge(model)
    torch.testing.assert_close(merged(input_ids=ids).logits, before, rtol=0, atol=1e-5)
