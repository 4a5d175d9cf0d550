"""Generation on real data with the packaged SmolLM2-135M-Instruct (CPU, one thread each: the
machine's 2 cores are shared, and one thread is several times faster than two under load).

- alpaca-en-demo: a LoRA fine-tune of a few dozen steps lowers the held-out answer loss;
- XQuAD-en (held-out articles): zero-shot generative QA through the chat template; its
  EM/F1 equal a hand check with the official SQuAD normalisation on the same predictions.
The before/after XQuAD comparison with a LoRA fine-tune is in benchmarks/generation.py.
"""

from __future__ import annotations

import json
import math
import re
import string
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
ALPACA = DATA / "alpaca-en-demo" / "train.json"
XQUAD = DATA / "xquad-en" / "train.json"


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_alpaca_lora_lowers_held_out_loss(tmp_path):
    import tunewise

    records = json.loads(ALPACA.read_text(encoding="utf-8"))
    train, held = records[:48], records[-16:]  # the file's last records are never trained on
    (tmp_path / "train.json").write_text(json.dumps(train), encoding="utf-8")
    (tmp_path / "held.json").write_text(json.dumps(held), encoding="utf-8")
    cfg = {
        "model": {"name": "smollm2-135m", "max_length": 256},
        "task": {"type": "instruction"},
        "data": {"train": str(tmp_path / "train.json"), "validation": str(tmp_path / "held.json")},
        "strategy": {"name": "lora"},
        "training": {"max_steps": 24, "batch_size": 2, "num_threads": 1, "logging_steps": 8},
        "eval": {"each_epoch": False, "batch_size": 8},
        "output_dir": str(tmp_path / "run"),
    }
    result = tunewise.finetune(cfg)
    m = result.metrics["validation"]
    print(
        f"alpaca held-out: loss {m['loss_before']:.4f} -> {m['loss']:.4f}, perplexity "
        f"{m['perplexity_before']:.3f} -> {m['perplexity']:.3f} "
        f"({result.manifest['training']['train_seconds']} s training)"
    )
    assert m["loss"] < m["loss_before"]
    assert m["perplexity"] == pytest.approx(math.exp(m["loss"]))
    assert m["n_examples"] == 16 and m["n_tokens"] > 16 * 10


def _normalise(s: str) -> list[str]:  # the official SQuAD v1.1 normalisation, written out again
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    return re.sub(r"\b(a|an|the)\b", " ", s).split()


def _f1(pred: str, gold: str) -> float:
    p, g = _normalise(pred), _normalise(gold)
    common = sum(min(p.count(t), g.count(t)) for t in set(p))
    if not p or not g or not common:
        return float(p == g)
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def test_xquad_zero_shot_generative_qa_matches_a_hand_check(tmp_path):
    import tunewise
    from tunewise.tasks.extractive_qa.squad import split_by_article

    _, held = split_by_article(XQUAD, 6, tmp_path)  # the same split as the extractive route
    squad = json.loads(held.read_text(encoding="utf-8"))
    rows = [
        {"question": qa["question"], "context": p["context"], "answers": qa["answers"]}
        for a in squad["data"]
        for p in a["paragraphs"]
        for qa in p["qas"]
    ][:5]
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    metrics = tunewise.api.evaluate_base(
        "smollm2-135m",
        "generative_qa",
        path,
        overrides=["model.max_length=384", "task.eval_generate_samples=5"],
    )
    samples = metrics["samples"]
    assert len(samples) == 5 and all(isinstance(s["prediction"], str) for s in samples)
    hand_f1 = (
        100
        * sum(max(_f1(s["prediction"], g) for g in s["references"]) for s in samples)
        / len(samples)
    )
    hand_em = (
        100
        * sum(
            any(_normalise(s["prediction"]) == _normalise(g) for g in s["references"])
            for s in samples
        )
        / len(samples)
    )
    print("xquad zero-shot:", [(s["prediction"], s["references"][0]) for s in samples])
    assert metrics["f1"] == pytest.approx(hand_f1)
    assert metrics["exact_match"] == pytest.approx(hand_em)
    assert math.isfinite(metrics["loss"]) and metrics["n_examples"] == 5
