"""Cheap-mask dropout: the right drop rate, unbiased, seeded, exact attention math, and a model
left exactly as it was after the block."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tunewise.training import fast_dropout as fd


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_drop_rate_scale_and_gradient(p):
    x = torch.ones(400, 500, requires_grad=True)
    y = fd.dropout(x, p)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 0.005  # 200k draws: ~5 standard deviations
    assert abs(y.mean().item() - 1) < 0.01  # inverted dropout keeps the expectation
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y != 0).float() * y.max())  # grad flows where kept


def test_seeded_and_identity_outside_training():
    x = torch.randn(64, 33)
    torch.manual_seed(3)
    a = fd.dropout(x, 0.1)
    torch.manual_seed(3)
    assert torch.equal(a, fd.dropout(x, 0.1))
    assert not torch.equal(a, fd.dropout(x, 0.1))
    assert fd.dropout(x, 0.1, training=False) is x and fd.dropout(x, 0.0) is x


class _Attention(nn.Module):
    is_causal = False


@pytest.mark.parametrize("mask_kind", ["bool", "float", "none"])
def test_attention_math_equals_transformers_sdpa(mask_kind, monkeypatch):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4) for _ in range(3))
    keep = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    keep[0, :, :, 3:] = False  # padding in the first example
    mask = {"bool": keep, "float": (~keep).float() * -1e9, "none": None}[mask_kind]
    module = _Attention().train()
    monkeypatch.setattr(fd, "dropout", lambda x, p, training=True: x)  # compare the math alone
    ours, _ = fd.attention(module, q, k, v, mask, dropout=0.1, scaling=0.5)
    expected, _ = sdpa_attention_forward(module, q, k, v, mask, dropout=0.0, scaling=0.5)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)


def test_model_uses_cheap_masks_inside_the_block_only(tiny_bert, monkeypatch):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    model.config._attn_implementation = "sdpa"
    drawn = []
    real_mask = fd._keep_mask
    monkeypatch.setattr(fd, "_keep_mask", lambda shape, p: drawn.append(p) or real_mask(shape, p))
    ids = torch.randint(5, model.config.vocab_size, (3, 6))
    model.train()
    with fd.fast_dropout(model):
        model(input_ids=ids).logits.sum().backward()
    # every nn.Dropout module: the hidden ones run as modules; each self-attention's own module
    # only lends its p to the attention function, which draws the probabilities' mask
    n_dropout = sum(type(m) is nn.Dropout for m in model.modules())
    n_attention = sum(type(m).__name__ == "BertSelfAttention" for m in model.modules())
    assert n_attention == model.config.num_hidden_layers == 2
    assert len(drawn) == n_dropout
    model.config._attn_implementation = "eager"  # not SDPA: its attention keeps torch's dropout
    drawn.clear()
    with fd.fast_dropout(model):
        model(input_ids=ids)
    assert len(drawn) == n_dropout - n_attention
    model.config._attn_implementation = "sdpa"
    assert model.config._attn_implementation == "sdpa"
    assert all(type(m) is not fd.FastDropout for m in model.modules())
    drawn.clear()
    with fd.fast_dropout(model, enabled=False):
        model(input_ids=ids)
    assert drawn == []
    with pytest.raises(RuntimeError), fd.fast_dropout(model):
        raise RuntimeError("training failed")
    assert model.config._attn_implementation == "sdpa"
    assert all(type(m) is not fd.FastDropout for m in model.modules())


def test_attention_arguments_it_does_not_cover_go_to_sdpa(monkeypatch):
    import transformers.integrations.sdpa_attention as sdpa

    calls = []
    monkeypatch.setattr(sdpa, "sdpa_attention_forward", lambda *a, **k: calls.append(k) or (0, 0))
    q = torch.randn(1, 2, 4, 8)
    module = _Attention().train()
    fd.attention(module, q, q, q, None, dropout=0.1, sliding_window=2)
    assert calls and calls[0]["sliding_window"] == 2
    calls.clear()
    out, _ = fd.attention(module, q, q, q, None, dropout=0.1, position_ids=None)
    assert not calls and out.shape == (1, 4, 2, 8)


def test_grouped_query_attention_keeps_the_key_value_heads_as_they_are():
    """LLaMA-style GQA in training: the same loss and gradients as transformers' SDPA, without
    the `repeat_kv` copies of keys and values among the tensors autograd keeps."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=50,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        attn_implementation="sdpa",
    )
    model = LlamaForCausalLM(config).train()
    ids = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # a padded row: transformers copies the key/value heads when there is a mask

    def step(enabled: bool) -> tuple[torch.Tensor, dict, list]:
        shapes: list[tuple[int, ...]] = []

        def pack(t: torch.Tensor) -> torch.Tensor:
            shapes.append(tuple(t.shape))
            return t

        hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        with fd.fast_dropout(model, enabled), hooks:
            loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss
            loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        model.zero_grad()
        return loss.detach(), grads, shapes

    loss_stock, grads_stock, shapes_stock = step(False)
    loss_fast, grads_fast, shapes_fast = step(True)
    torch.testing.assert_close(loss_fast, loss_stock, rtol=0, atol=1e-6)
    for name, grad in grads_stock.items():
        torch.testing.assert_close(grads_fast[name], grad, rtol=1e-5, atol=1e-6, msg=name)
    heads = [s for s in shapes_stock if s == (2, 4, 9, 8)]  # query, key, value, output per layer
    assert len(heads) == 4 * 2
    assert shapes_fast.count((2, 4, 9, 8)) == 2 * 2  # query and output only
    assert shapes_fast.count((2, 1, 9, 8)) == 2 * 2  # the one key and value head, as they are
