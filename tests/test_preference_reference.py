"""DPO's reference model when a preference run starts from an SFT run (`init_from`): the SFT
model (LoRA: adapters disabled over the merged parent; other strategies: a frozen copy of the
starting weights), both while training and after the run directory is reloaded."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, TrainerCallback

import tunewise
from generation_fixtures import build_llama, instruction_records, write
from test_addon_strategies import train
from test_preference import config, planted
from tunewise.config import load_config
from tunewise.registry import TASKS
from tunewise.tasks.preference.model import PreferenceModel, answer_logps

QUIET = {"eval": {"each_epoch": False}, "tracking": {"backends": []}}


@pytest.fixture(scope="module")
def sft(tmp_path_factory):
    """A tiny LLaMA, preference pairs, and a LoRA SFT run on it that moved the model."""
    root = tmp_path_factory.mktemp("pref-ref")
    model_dir = build_llama(root / "llama")
    data = {
        "train": write(root / "train.jsonl", planted(16, 1)),
        "validation": write(root / "dev.jsonl", planted(8, 2)),
    }
    raw = {
        "model": {"name": str(model_dir), "max_length": 64},
        "task": {"type": "instruction"},
        "data": {"train": str(write(root / "i.jsonl", instruction_records(16)))},
        "strategy": {"name": "lora"},
        "training": {"max_steps": 4, "batch_size": 4, "learning_rate": 5e-2},
        "output_dir": str(root / "sft"),
        **QUIET,
    }
    return model_dir, data, tunewise.finetune(raw).run_dir


def inner(model: torch.nn.Module) -> PreferenceModel:
    return next(m for m in model.modules() if isinstance(m, PreferenceModel))


class Reference(TrainerCallback):
    """The reference log-probs the run trained against, read at the end of training."""

    def __init__(self, batch) -> None:
        self.batch, self.logps = batch, None

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.logps = inner(model).reference_logps(*self.batch)


@pytest.mark.parametrize("strategy", ["full", "partial", "lora"])
def test_dpo_reference_is_the_sft_parent_in_training_and_after_reload(sft, tmp_path, strategy):
    model_dir, data, parent = sft
    raw = config(model_dir, data, tmp_path / "dpo", strategy, method="dpo")
    raw["training"].update(max_steps=3, logging_steps=1)
    raw.update(init_from=str(parent), **QUIET)
    cfg = load_config(raw)
    task = TASKS.get("preference")(cfg.task, cfg.data, cfg.model)
    sft_model = tunewise.api.merge(parent).eval()  # the SFT model as plain weights
    tokenizer = tunewise.load(parent).tokenizer
    enc = task.tokenize(task.read(cfg.data.split("validation")), tokenizer)
    rows = task.collator(tokenizer)([enc[i] for i in range(8)])
    batch = tuple(rows[f"chosen_{k}"] for k in ("input_ids", "attention_mask", "labels"))
    base = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        expected = answer_logps(sft_model, *batch)[0]
        base_logps = answer_logps(base, *batch)[0]
    assert not torch.allclose(expected, base_logps, atol=1e-2)  # the SFT run moved the model

    seen = Reference(batch)
    result = train(raw, seen)
    torch.testing.assert_close(seen.logps, expected, atol=1e-5, rtol=0)
    reloaded = inner(tunewise.load(result.run_dir).model)
    torch.testing.assert_close(reloaded.reference_logps(*batch), expected, atol=1e-5, rtol=0)
    with torch.no_grad():  # the policy trained away from its reference
        assert not torch.allclose(answer_logps(reloaded.lm, *batch)[0], expected, atol=1e-3)
    reference = {"lora": "adapters_disabled"}.get(strategy, "frozen_copy")
    assert result.manifest["task"]["state"] == {"reference": reference}
    again = tunewise.api.evaluate(result.run_dir, data["validation"])
    m = result.metrics["validation"]
    assert again["reward_margin"] == pytest.approx(m["reward_margin"], rel=1e-4, abs=1e-6)
