"""Shared fixtures: tiny random BERT and LLaMA models built from a config (fast, deterministic),
and small classification files written per test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = [
    "good",
    "great",
    "fine",
    "lovely",
    "superb",
    "happy",
    "excellent",
    "wonderful",
    "nice",
    "best",
    "bad",
    "awful",
    "poor",
    "terrible",
    "sad",
    "worst",
    "boring",
    "dull",
    "ugly",
    "horrible",
    "the",
    "a",
    "film",
    "movie",
    "plot",
    "actor",
    "story",
    "was",
    "is",
    "very",
    "really",
    "quite",
    "and",
    "but",
    "not",
    "it",
    "this",
]
POSITIVE = WORDS[:10]
NEGATIVE = WORDS[10:20]
FILLER = WORDS[20:]


def _tokenizer(directory: Path):
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    assert len(tok) == len(vocab)
    tok.save_pretrained(directory)
    return tok


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models run fastest single-threaded (thread start-up dominates their matmuls) and
    the suite shares 2 cores. Integration tests on real models set their own thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield before
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random BERT saved as a local model directory."""
    from transformers import BertConfig, BertModel

    directory = tmp_path_factory.mktemp("tiny-bert")
    tok = _tokenizer(directory)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random LLaMA (causal LM) saved as a local model directory."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    directory = tmp_path_factory.mktemp("tiny-llama")
    tok = _tokenizer(directory)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def sentiment_records(n: int, seed: int = 0) -> list[dict]:
    """Separable toy sentiment: positive words → 'pos', negative words → 'neg'."""
    import random

    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.sample(POSITIVE if label == "pos" else NEGATIVE, 2) + rng.sample(FILLER, 3)
        rng.shuffle(words)
        out.append({"text": " ".join(words), "label": label})
    return out


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def toy_data(tmp_path) -> dict[str, Path]:
    """train.jsonl (64 records) and dev.jsonl (32 records) of separable toy sentiment."""
    return {
        "train": write_jsonl(tmp_path / "train.jsonl", sentiment_records(64, seed=1)),
        "validation": write_jsonl(tmp_path / "dev.jsonl", sentiment_records(32, seed=2)),
    }


def toy_config(model_dir: Path, data: dict[str, Path], out: Path, strategy: str = "lora", **kw):
    """A complete config dict for a fast run on a tiny model."""
    cfg = {
        "model": {"name": str(model_dir), "max_length": 32},
        "task": {"type": "classification"},
        "data": {"train": str(data["train"]), "validation": str(data["validation"])},
        "strategy": {"name": strategy},
        "training": {"epochs": 2, "batch_size": 8, "learning_rate": 5e-3, "logging_steps": 2},
        "output_dir": str(out),
        "seed": 0,
    }
    for section, values in kw.items():
        cfg[section] = {**cfg.get(section, {}), **values} if isinstance(values, dict) else values
    return cfg


@pytest.fixture(autouse=True)
def _no_leaked_threads():
    """A test must stop the non-daemon threads it starts (a served model's generation loop):
    one left running keeps the interpreter from exiting after the whole suite has passed."""
    import threading
    import time

    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 10
    while True:
        left = [t for t in threading.enumerate() if t not in before and not t.daemon]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"non-daemon threads left running: {[t.name for t in left]}"
