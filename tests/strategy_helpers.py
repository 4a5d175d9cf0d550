"""Helpers shared by the tests of the strategies added for the advisor issue: build a task model
with a strategy on a tiny model, train it a few steps, compare logits, round-trip the trained
tensors through a run directory."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from conftest import toy_config
from tunewise.artifacts import WEIGHTS, load_trained, save_trained
from tunewise.assemble import assemble
from tunewise.config import load_config
from tunewise.registry import TASKS

HEAD = {"classifier.weight", "classifier.bias"}
BLOCKS = {"tiny_bert": "backbone.encoder.layer", "tiny_llama": "backbone.layers"}


def trainable_names(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


def build(model_dir: Path, data: dict[str, Path], tmp_path: Path, strategy: str, **options):
    """(assembled, task, train dataset) for `strategy` with extra options, seed 0."""
    raw = toy_config(model_dir, data, tmp_path / "run", strategy)
    raw["strategy"].update(options)
    cfg = load_config(raw)
    task = TASKS.get("classification")(cfg.task, cfg.data, cfg.model)
    train = task.read(cfg.data.split("train"), fit=True)
    return assemble(cfg, task), task, train


def batch_of(task, tokenizer, dataset, n: int = 16) -> dict[str, torch.Tensor]:
    encoded = task.tokenize(dataset.select(range(n)), tokenizer)
    keep = ["input_ids", "token_type_ids", "attention_mask", "labels"]
    encoded = encoded.select_columns([c for c in keep if c in encoded.column_names])
    return task.collator(tokenizer)([encoded[i] for i in range(n)])


def loss_of(model: nn.Module, batch) -> float:
    model.eval()
    with torch.no_grad():
        return float(model(**batch).loss)


def logits_of(model: nn.Module, batch) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**batch).logits.detach().clone()


def train_steps(model: nn.Module, batch, steps: int = 15, lr: float = 1e-2) -> None:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    torch.manual_seed(0)
    for _ in range(steps):
        model.train()
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()


def assert_only_trainable_moved(model: nn.Module, batch, steps: int = 15, lr: float = 1e-2):
    """Train; frozen tensors must be bit-identical afterwards, trained ones must all move, and
    the loss must fall. Returns (loss before, loss after)."""
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    before = loss_of(model, batch)
    train_steps(model, batch, steps, lr)
    after = loss_of(model, batch)
    params = dict(model.named_parameters())
    for n, old in frozen.items():
        assert torch.equal(params[n], old), f"frozen {n} moved"
    unmoved = [n for n, old in trained.items() if torch.equal(params[n], old)]
    assert not unmoved, f"trainable tensors did not move: {unmoved}"
    assert after < 0.95 * before, (before, after)
    return before, after


def roundtrip(built, model_dir, data, tmp_path, strategy, batch, **options):
    """Save the trained tensors, rebuild a fresh model, load them: (fresh logits before
    loading, logits after loading, saved file bytes)."""
    run = tmp_path / "saved"
    info = save_trained(built.model, run)
    fresh, _, _ = build(model_dir, data, tmp_path / "fresh", strategy, **options)
    untrained = logits_of(fresh.model, batch)
    load_trained(fresh.model, run)
    assert info["bytes"] == (run / WEIGHTS).stat().st_size
    return untrained, logits_of(fresh.model, batch), info["bytes"]


def trainable_elements(model: nn.Module) -> int:
    seen, n = set(), 0
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n


def assert_size_matches(n_bytes: int, n_floats: int, n_tensors: int) -> None:
    """A safetensors file of fp32 tensors: 4 bytes per element plus a JSON header."""
    assert 4 * n_floats <= n_bytes <= 4 * n_floats + 8 + 200 * n_tensors + 64, (n_bytes, n_floats)
