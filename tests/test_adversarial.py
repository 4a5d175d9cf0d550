"""Adversarial training (training.adversarial) and the robustness evaluation (eval --perturb)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import tunewise
from conftest import toy_config
from tunewise.cli import app
from tunewise.config import AdversarialConfig, load_config
from tunewise.evaluation.perturb import perturb_dataset
from tunewise.registry import TASKS
from tunewise.training.adversarial import input_embeddings
from tunewise.training.build_trainer import make_trainer
from tunewise.training.recipe import _read_splits


def _setup(tiny_bert, toy_data, tmp_path, strategy="full", **training):
    from tunewise.assemble import assemble

    cfg = load_config(
        toy_config(tiny_bert, toy_data, tmp_path / "run", strategy, training=training)
    )
    task = TASKS.get("classification")(cfg.task, cfg.data, cfg.model)
    splits, _ = _read_splits(cfg, task)
    built = assemble(cfg, task)
    encoded = {k: task.tokenize(v, built.tokenizer) for k, v in splits.items()}
    trainer = make_trainer(cfg, task, built.model, built.tokenizer, encoded, 5e-3, tmp_path)
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop before each step
    return trainer, built.model, batch


def _grads(trainer, model, batch) -> dict[str, torch.Tensor]:
    model.zero_grad()
    torch.manual_seed(0)
    trainer.training_step(model, dict(batch))
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("method", ["fgm", "pgd", "freelb"])
def test_adversarial_step_changes_gradient_and_restores_embeddings(
    tiny_bert, toy_data, tmp_path, method
):
    trainer, model, batch = _setup(tiny_bert, toy_data, tmp_path)
    embeddings = input_embeddings(model)
    weight = embeddings.weight.detach().clone()
    model.eval()
    with torch.no_grad():
        before = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    clean = _grads(trainer, model, batch)
    trainer.adversarial = AdversarialConfig(method=method, epsilon=1.0, alpha=0.3, steps=3)
    adversarial = _grads(trainer, model, batch)
    assert clean.keys() == adversarial.keys()
    changed = sum(not torch.allclose(clean[n], adversarial[n]) for n in clean)
    assert changed > len(clean) // 2, f"{method}: only {changed}/{len(clean)} gradients changed"
    # The perturbation lives in a forward hook: gone afterwards, weights untouched, outputs equal.
    assert not embeddings._forward_hooks
    assert torch.equal(embeddings.weight, weight)
    model.eval()
    with torch.no_grad():
        after = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    assert torch.equal(before, after)
    assert len(trainer._adv_losses) == 1 and trainer._adv_losses[0] > 0


@pytest.mark.parametrize("steps", [1, 2, 3, 4])
def test_pgd_first_ascent_reuses_the_clean_gradient(tiny_bert, toy_data, tmp_path, steps):
    """PGD runs one clean pass, `steps` - 2 extra ascent passes (the first ascent step takes the
    clean pass's gradient at δ = 0) and one adversarial pass; with 2 steps the adversarial δ is
    α·g/‖g‖ of the clean gradient g, projected on the ε-ball."""
    trainer, model, batch = _setup(tiny_bert, toy_data, tmp_path)
    embeddings = input_embeddings(model)
    outputs: list[torch.Tensor] = []
    handle = embeddings.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach()))
    trainer.adversarial = AdversarialConfig(method="pgd", epsilon=0.5, alpha=0.3, steps=steps)
    deltas: list[torch.Tensor] = []
    original = trainer._adv_step

    def spy(model_, embeddings_, delta, *rest):
        deltas.append(delta.detach().clone())
        return original(model_, embeddings_, delta, *rest)

    trainer._adv_step = spy
    try:
        _grads(trainer, model, batch)
    finally:
        handle.remove()
    assert len(outputs) == 1 + max(steps - 2, 0) + 1
    (delta,) = deltas
    norms = delta.flatten(1).norm(dim=1)
    if steps == 1:
        assert torch.equal(delta, torch.zeros_like(delta))
    elif steps == 2:
        assert torch.allclose(norms, torch.full_like(norms, 0.3), atol=1e-5)
    else:
        assert (norms <= 0.5 + 1e-5).all() and (norms > 0.3).any()


def test_adversarial_training_logs_both_losses_and_loss_falls(tiny_bert, toy_data, tmp_path):
    # (LoRA trains without dropout by default: the toy set needs 8 epochs for a clear fall)
    trainer, _, _ = _setup(
        tiny_bert, toy_data, tmp_path, "lora", adversarial={"method": "pgd"}, epochs=8
    )
    trainer.train()
    logged = [h for h in trainer.state.log_history if "adversarial_loss" in h]
    assert len(logged) >= 4
    assert all("clean_loss" in h for h in logged)
    # Batches are random draws, so one logged batch's loss is noisy: compare the run's halves.
    half = len(logged) // 2

    def mean(key: str, part: list[dict]) -> float:
        return sum(h[key] for h in part) / len(part)

    for key in ("clean_loss", "adversarial_loss"):
        assert mean(key, logged[-half:]) < mean(key, logged[:half]), key
    # The attack makes the loss larger than the clean one (on average over the run).
    assert sum(h["adversarial_loss"] - h["clean_loss"] for h in logged) > 0


def test_perturbations_are_seeded_and_keep_labels(tiny_bert, toy_data):
    from datasets import Dataset

    data = Dataset.from_dict(
        {
            "text": ["the film was really good, and the plot superb!", "awful movie"] * 3,
            "label": ["pos", "neg"] * 3,
        }
    )
    for kind in ("typos", "case", "punctuation"):
        a = perturb_dataset(data, kind, seed=1)
        assert a["text"] == perturb_dataset(data, kind, seed=1)["text"], kind
        assert a["label"] == data["label"]
        assert a["text"] != data["text"], kind
        assert a["text"] != perturb_dataset(data, kind, seed=2)["text"], kind
    words = Dataset.from_dict({"words": [["Paris", "is", "lovely", "."]], "text": ["x"]})
    typos = perturb_dataset(words, "typos", seed=3)
    assert len(typos["words"][0]) == 4 and typos["text"][0] == " ".join(typos["words"][0])


def test_synonym_perturbation_uses_wordnet(tmp_path):
    from datasets import Dataset

    from tunewise.data.wordnet import DEBIAN_DIR

    if not (DEBIAN_DIR / "data.noun").is_file():
        pytest.skip("Debian's wordnet-base is not installed")
    data = Dataset.from_dict({"text": ["a happy film with a wonderful story"]})
    out = perturb_dataset(data, "synonyms", seed=0)
    assert out["text"] == perturb_dataset(data, "synonyms", seed=0)["text"]
    assert out["text"] != data["text"]


def test_eval_perturb_writes_clean_and_perturbed_metrics(tiny_bert, toy_data, tmp_path):
    cfg = toy_config(tiny_bert, toy_data, tmp_path / "run", "lora")
    cfg["training"]["adversarial"] = {"method": "fgm"}
    run = tunewise.finetune(cfg).run_dir
    plain = tunewise.api.evaluate(run, toy_data["validation"])
    out = tmp_path / "m.json"
    args = ["eval", str(run), "--data", str(toy_data["validation"]), "--output", str(out)]
    result = CliRunner().invoke(app, [*args, "--perturb", "typos,case", "--seed", "7"])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert {k: v for k, v in written.items() if k != "perturbed"} == json.loads(json.dumps(plain))
    assert set(written["perturbed"]) == {"typos", "case"}
    for values in written["perturbed"].values():
        assert set(values) == set(plain)
    again = tmp_path / "m2.json"
    CliRunner().invoke(app, [*args[:-1], str(again), "--perturb", "typos,case", "--seed", "7"])
    assert json.loads(again.read_text()) == written
    bad = CliRunner().invoke(app, [*args, "--perturb", "typo"])
    assert bad.exit_code == 2 and "typos" in bad.output
