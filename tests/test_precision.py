"""training.precision and training.gradient_checkpointing on CPU: bf16 autocast and
checkpointing give losses within a stated tolerance of fp32 after a few steps, checkpointing
with frozen (LoRA) weights still trains the adapters, fp16 on CPU is refused before anything is
written."""

from __future__ import annotations

import pytest
import torch

from conftest import toy_config
from strategy_helpers import batch_of, build
from tunewise.config import load_config
from tunewise.errors import ConfigError
from tunewise.training.precision import enable_gradient_checkpointing
from tunewise.training.recipe import finetune


def run_loss(tiny_bert, toy_data, out, **training) -> dict:
    raw = toy_config(tiny_bert, toy_data, out, "lora")
    raw["training"].update(max_steps=6, batch_size=16, logging_steps=1, **training)
    raw["eval"] = {"each_epoch": False}
    return finetune(load_config(raw)).manifest


def test_bf16_autocast_and_checkpointing_stay_within_tolerance_of_fp32(
    tiny_bert, toy_data, tmp_path
):
    fp32 = run_loss(tiny_bert, toy_data, tmp_path / "fp32")
    bf16 = run_loss(tiny_bert, toy_data, tmp_path / "bf16", precision="bf16")
    ckpt = run_loss(tiny_bert, toy_data, tmp_path / "ckpt", gradient_checkpointing=True)
    ref = fp32["training"]["final_train_loss"]
    # bf16 keeps 8 bits of mantissa: the mean loss of 6 steps moves, but by under 2 %
    got = bf16["training"]["final_train_loss"]
    assert got != ref  # autocast really ran in bf16 ...
    assert abs(got - ref) <= 0.02 * ref, (got, ref)  # ... and stayed close
    # checkpointing recomputes the same fp32 forward (same dropout RNG): within 1e-4
    assert ckpt["training"]["final_train_loss"] == pytest.approx(ref, rel=1e-4)
    assert bf16["training"]["precision"] == "bf16" and ckpt["training"]["gradient_checkpointing"]


def test_checkpointing_with_frozen_weights_still_trains_the_adapters(tiny_bert, toy_data, tmp_path):
    built, task, train = build(tiny_bert, toy_data, tmp_path, "lora")
    assert enable_gradient_checkpointing(built.model) == 1
    backbone = built.model.get_base_model().backbone
    assert backbone.is_activation_checkpointing
    batch = batch_of(task, built.tokenizer, train, 8)
    built.model.train()
    built.model(**batch).loss.backward()
    lora = [
        p for n, p in built.model.named_parameters() if "lora_B" in n and p.requires_grad
    ]  # A gets 0 at init (B = 0)
    assert lora and all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora)


def test_fp16_on_cpu_is_refused_before_anything_is_written(tiny_bert, toy_data, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("fp16 runs on CUDA")
    raw = toy_config(tiny_bert, toy_data, tmp_path / "run", "lora")
    raw["training"]["precision"] = "fp16"
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        finetune(load_config(raw))
    assert not (tmp_path / "run").exists()
