"""Preference tuning (task: preference, method: dpo|orpo|simpo) on a tiny random LLaMA."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import tunewise
from generation_fixtures import COLOURS, OPPOSITE, build_llama, write
from tunewise.config import load_config
from tunewise.errors import DataError
from tunewise.registry import TASKS
from tunewise.tasks.preference import losses


def test_dpo_loss_matches_the_hand_computed_value():
    chosen, rejected = torch.tensor([-5.0, -9.0]), torch.tensor([-7.0, -6.0])
    ref_c, ref_r = torch.tensor([-6.0, -8.0]), torch.tensor([-6.5, -6.5])
    loss, c_r, r_r = losses.dpo(chosen, rejected, ref_c, ref_r, beta=0.1)
    # pair 0: 0.1·((−5+6) − (−7+6.5)) = 0.15; pair 1: 0.1·((−9+8) − (−6+6.5)) = −0.15
    expected = torch.tensor([-F.logsigmoid(torch.tensor(0.15)), -F.logsigmoid(torch.tensor(-0.15))])
    assert torch.allclose(loss, expected)
    assert torch.allclose(c_r, torch.tensor([0.1, -0.1])) and torch.allclose(
        r_r, torch.tensor([-0.05, 0.05])
    )


def test_simpo_and_orpo_match_trl():
    from trl.experimental.cpo import CPOTrainer
    from trl.experimental.orpo import ORPOTrainer

    torch.manual_seed(0)
    c, r = -torch.rand(6) * 3, -torch.rand(6) * 3
    device = SimpleNamespace(device="cpu")
    cpo = SimpleNamespace(
        beta=2.0,
        simpo_gamma=0.5,
        loss_type="simpo",
        label_smoothing=0.0,
        alpha=0.0,
        accelerator=device,
    )
    trl_loss, trl_c, trl_r = CPOTrainer.cpo_loss(cpo, c, r)
    # TRL: −log σ(β(Δ − γ/β)) = −log σ(βΔ − γ): the same γ
    ours, oc, orr = losses.simpo(c, r, beta=2.0, gamma=0.5)
    assert (
        torch.allclose(ours, trl_loss) and torch.allclose(oc, trl_c) and torch.allclose(orr, trl_r)
    )
    orpo_self = SimpleNamespace(beta=0.1, accelerator=device)
    trl_ratio_losses, trl_c, trl_r, *_ = ORPOTrainer.odds_ratio_loss(orpo_self, c, r)
    nll = torch.rand(6)
    ours, oc, orr = losses.orpo(c, r, nll, beta=0.1)
    # TRL's ORPO loss = NLL − mean(β·log σ(log odds)); ours is the same per pair
    assert torch.allclose(ours, nll - trl_ratio_losses, atol=1e-6)
    assert torch.allclose(oc, trl_c) and torch.allclose(orr, trl_r)


def planted(n: int, seed: int) -> list[dict]:
    """Chosen answers are always one of four colours, rejected ones one of the other four."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        good, bad, asked = rng.choice(COLOURS[:4]), rng.choice(COLOURS[4:]), rng.choice(COLOURS)
        out.append({"prompt": f"repeat {asked}", "chosen": good, "rejected": bad})
    return out


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    root = tmp_path_factory.mktemp("pref")
    model = build_llama(root / "llama")
    data = {
        "train": write(root / "train.jsonl", planted(48, 1)),
        "validation": write(root / "dev.jsonl", planted(16, 2)),
    }
    return model, data, root


def config(model, data, out, strategy="lora", **task):
    return {
        "model": {"name": str(model), "max_length": 64},
        "task": {"type": "preference", **task},
        "data": {"train": str(data["train"]), "validation": str(data["validation"])},
        "strategy": {"name": strategy},
        "training": {"epochs": 4, "batch_size": 8, "learning_rate": 1e-2, "logging_steps": 2},
        "output_dir": str(out),
        "seed": 0,
    }


def test_lora_reference_logps_are_the_base_models(llama):
    from tunewise.assemble import assemble
    from tunewise.tasks.preference.model import answer_logps

    model_dir, data, _ = llama
    cfg = load_config(config(model_dir, data, "unused"))
    task = TASKS.get("preference")(cfg.task, cfg.data, cfg.model)
    built = assemble(cfg, task)
    with torch.no_grad():  # make the adapters matter
        for name, p in built.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    enc = task.tokenize(task.read(cfg.data.split("validation")), built.tokenizer)
    batch = task.collator(built.tokenizer)([enc[i] for i in range(4)])
    ids, mask, labels = (batch[f"chosen_{k}"] for k in ("input_ids", "attention_mask", "labels"))
    inner = built.model.get_base_model()
    ref = inner.reference_logps(ids, mask, labels)
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        expected = answer_logps(base, ids, mask, labels)[0]
        policy = answer_logps(inner.lm, ids, mask, labels)[0]
    assert torch.allclose(ref, expected, atol=1e-5)
    assert not torch.allclose(policy, expected, atol=1e-3)  # adapters back on afterwards
    assert task.state() == {"reference": "adapters_disabled"}
    assert inner.__dict__["_reference"] is None  # no second copy


@pytest.mark.parametrize(
    "strategy,method,reference",
    [("lora", "dpo", "adapters_disabled"), ("full", "dpo", "frozen_copy"), ("lora", "orpo", None)],
)
def test_preference_accuracy_rises_on_a_planted_set(llama, strategy, method, reference):
    model_dir, data, root = llama
    result = tunewise.finetune(
        config(model_dir, data, root / f"{strategy}-{method}", strategy, method=method)
    )
    m = result.metrics["validation"]
    for key in ("preference_accuracy", "reward_margin", "perplexity"):
        assert f"{key}_before" in m
    assert m["preference_accuracy"] >= 0.8, m
    assert m["preference_accuracy"] > m["preference_accuracy_before"]
    assert m["reward_margin"] > m["reward_margin_before"]
    assert m["logprob_accuracy"] > m["logprob_accuracy_before"]
    # The run reloads with the same reference and gives the same numbers.
    again = tunewise.api.evaluate(result.run_dir, data["validation"])
    assert again["preference_accuracy"] == pytest.approx(m["preference_accuracy"])
    assert again["reward_margin"] == pytest.approx(m["reward_margin"], rel=1e-4)
    state = json.loads((result.run_dir / "tunewise.json").read_text())["task"]["state"]
    assert state.get("reference") == reference
    assert len(tunewise.load(result.run_dir).predict(["repeat red"])) == 1


def test_chat_records_and_bad_records(llama, tmp_path):
    model_dir, data, _ = llama
    cfg = load_config(config(model_dir, data, "unused"))
    task = TASKS.get("preference")(cfg.task, cfg.data, cfg.model)
    a, b = next(iter(OPPOSITE.items()))
    turns = [{"role": "user", "content": f"the opposite of {a}"}]
    path = write(
        tmp_path / "chat.jsonl",
        [
            {
                "chosen": [*turns, {"role": "assistant", "content": b}],
                "rejected": [*turns, {"role": "assistant", "content": a}],
            }
        ],
    )
    row = task.read(cfg.data.split("train").model_copy(update={"path": str(path)}))[0]
    assert row["messages"] == turns and (row["chosen"], row["rejected"]) == (b, a)
    bad = write(tmp_path / "bad.jsonl", [{"prompt": "x", "chosen": "y"}])
    with pytest.raises(DataError, match=r"bad.jsonl, line 1: field 'rejected' is missing"):
        task.read(cfg.data.split("train").model_copy(update={"path": str(bad)}))


def test_impossible_addons_are_refused_before_any_model_loads(llama, monkeypatch):
    from tunewise import assemble as assemble_module
    from tunewise.errors import ConfigError
    from tunewise.strategies.compat import matrix

    model_dir, data, root = llama
    cfg = config(model_dir, data, root / "refused")
    cfg["training"]["adversarial"] = {"method": "fgm"}

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(assemble_module, "load_base", no_loading)
    with pytest.raises(ConfigError, match="'adversarial' cannot train task 'preference'"):
        tunewise.finetune(cfg)
    addons = matrix()["addons"]
    assert addons["adversarial"]["preference"]["compatible"] is False
    assert addons["distill"]["extractive_qa"]["reason"]
    assert addons["adversarial"]["classification"]["compatible"] is True
