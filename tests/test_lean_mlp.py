"""training.recompute_mlp: gated MLPs keep gate and up only; outputs and gradients unchanged."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.bert.modeling_bert import BertIntermediate
from transformers.models.llama.modeling_llama import LlamaMLP

from tunewise.strategies.lora_fused import FusedLoraLinear
from tunewise.training.lean_mlp import is_gated_mlp, recompute_mlp


def tiny_llama(mode: str, act: str = "silu") -> nn.Module:
    """A random 2-block LLaMA in float64: `full` (every weight trains), `lora` (fused LoRA on
    every linear layer), `lora_attn` (LoRA on attention only: the MLP is frozen)."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=40,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        hidden_act=act,
        mlp_bias=mode == "full",
    )
    model = LlamaForCausalLM(config).double()
    if mode == "full":
        return model
    targets = ["q_proj", "v_proj"] if mode == "lora_attn" else "all-linear"
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=targets)
    lora._register_custom_module({nn.Linear: FusedLoraLinear})
    model = get_peft_model(model, lora)
    for name, param in model.named_parameters():
        if "lora_B" in name:  # B starts at zero: make the update and A's gradient non-trivial
            nn.init.normal_(param, std=0.5)
    return model


def step(model: nn.Module, lean: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    ids = torch.randint(0, 64, (3, 7), generator=torch.Generator().manual_seed(1))
    with recompute_mlp(model, enabled=lean) as swapped:
        assert swapped == (2 if lean else 0)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    return loss.detach(), grads


@pytest.mark.parametrize(("mode", "act"), [("lora", "silu"), ("lora_attn", "silu"),
                                           ("full", "silu"), ("lora", "gelu")])  # fmt: skip
def test_outputs_and_gradients_equal_the_stock_mlp(mode, act):
    model = tiny_llama(mode, act)
    loss_stock, grads_stock = step(model, lean=False)
    loss_lean, grads_lean = step(model, lean=True)
    torch.testing.assert_close(loss_lean, loss_stock, rtol=0, atol=1e-12)
    assert grads_lean.keys() == grads_stock.keys() and grads_lean
    for name, grad in grads_stock.items():
        torch.testing.assert_close(grads_lean[name], grad, rtol=0, atol=1e-10, msg=name)


def test_the_mlp_keeps_two_tensors_instead_of_four():
    """The tensors autograd keeps for one block's MLP: gate and up (plus LoRA's rank-r ones)."""
    model = tiny_llama("lora")
    mlp = model.base_model.model.model.layers[0].mlp
    x = torch.randn(2, 5, 16, dtype=torch.float64, requires_grad=True)

    def kept(lean: bool) -> int:
        sizes: list[int] = []

        def pack(t: torch.Tensor) -> torch.Tensor:
            if t.numel() == 2 * 5 * 40:  # (tokens, intermediate): not the weights
                sizes.append(t.data_ptr())
            return t

        hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        with recompute_mlp(model, enabled=lean), hooks:
            mlp(x).sum().backward()
        return len(set(sizes))

    assert kept(lean=False) == 4  # gate, act(gate), up, act(gate) * up
    assert kept(lean=True) == 2  # gate, up


def test_swapped_for_the_block_only_and_unsupported_cases_run_the_stock_forward():
    model = tiny_llama("lora")
    mlps = [m for m in model.modules() if isinstance(m, LlamaMLP)]
    with recompute_mlp(model):
        assert all(type(m).__name__ == "LeanLlamaMLP" for m in mlps)
        with torch.no_grad():  # no gradient: the stock forward
            model(input_ids=torch.ones(1, 4, dtype=torch.long))
        x = torch.randn(1, 3, 16, dtype=torch.float64, requires_grad=True)
        assert "GatedDownFunction" in type(mlps[0](x).grad_fn).__name__
        mlps[0].down_proj.lora_dropout["default"] = nn.Dropout(0.1)  # peft's own path
        assert "GatedDownFunction" not in type(mlps[0](x).grad_fn).__name__
    assert all(type(m) is LlamaMLP for m in mlps)
    with pytest.raises(RuntimeError), recompute_mlp(model):
        raise RuntimeError("an error inside the block")
    assert all(type(m) is LlamaMLP for m in mlps)
    assert not is_gated_mlp(BertIntermediate(model.config))  # another forward
