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
