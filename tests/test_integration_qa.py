"""Extractive QA on real data: minilm on XQuAD-en, split by article (about 2 minutes on 2 cores).

The set is tiny (786 training questions), so a short run learns little (the issue quotes F1 9.9
for a hand-written 2-epoch script against 9.0 for the first-sentence baseline). This test checks
the mechanics on real text: the run finishes, its EM / F1 are exactly what the official rules
give for its own raw predictions (recomputed here, a few by an independent hand-written F1), and
it prints both the model's and the first-sentence baseline's scores.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from pathlib import Path

import pytest

import tunewise
from tunewise.evaluation.qa_baseline import first_sentence_scores
from tunewise.evaluation.squad import f1, squad_scores
from tunewise.tasks.extractive_qa.squad import read_qa, split_by_article

XQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "xquad-en"

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _all_cores(_one_torch_thread):
    import torch

    torch.set_num_threads(_one_torch_thread)
    yield
    torch.set_num_threads(1)


def hand_f1(pred: str, gold: str) -> float:
    """Token F1 written out longhand from the SQuAD paper's definition (not our module)."""

    def norm(s: str) -> list[str]:
        s = "".join(c for c in s.lower() if c not in set(string.punctuation))
        return re.sub(r"\b(a|an|the)\b", " ", s).split()

    p, g = norm(pred), norm(gold)
    same = sum((Counter(p) & Counter(g)).values())
    if not p or not g or same == 0:
        return float(p == g)
    return 2 * (same / len(p)) * (same / len(g)) / (same / len(p) + same / len(g))


@pytest.mark.skipif(not XQUAD.is_dir(), reason="../shared/data/xquad-en not present")
def test_minilm_extractive_qa_xquad(tmp_path: Path) -> None:
    train, held = split_by_article(XQUAD / "train.json", 6, tmp_path)  # 30 / 6 articles
    result = tunewise.finetune(
        {
            "model": {"name": "minilm", "max_length": 384},
            "task": {"type": "extractive_qa", "doc_stride": 128},
            "data": {"train": str(train), "validation": str(held), "format": "squad"},
            "strategy": {"name": "full"},
            "training": {"max_steps": 40, "batch_size": 16, "logging_steps": 10},
            "eval": {"each_epoch": False},
            "output_dir": str(tmp_path / "run"),
        }
    )
    metrics = result.metrics["validation"]
    records = read_qa(held)
    assert result.manifest["training"]["n_train"] == 786
    assert metrics["n_examples"] == len(records) == 139

    # Recompute from the raw predictions of the saved run (Predictor.predict path).
    preds = result.load().predict(
        [{"question": r["question"], "context": r["context"]} for r in records]
    )
    golds = [r["answers"]["text"] for r in records]
    again = squad_scores([p["answer"] for p in preds], golds)
    assert again["exact_match"] == pytest.approx(metrics["exact_match"])
    assert again["f1"] == pytest.approx(metrics["f1"])
    for pred, rec in zip(preds[:8], records[:8], strict=True):
        assert pred["answer"] == rec["context"][pred["start"] : pred["end"]]
        by_hand = max(hand_f1(pred["answer"], g) for g in rec["answers"]["text"])
        assert f1(pred["answer"], rec["answers"]["text"]) == pytest.approx(by_hand)

    baseline = first_sentence_scores([r["context"] for r in records], golds)
    assert 0 < baseline["f1"] < 100
    print(
        f"\nXQuAD-en held-out ({len(records)} q): minilm full 40 steps "
        f"EM {metrics['exact_match']:.1f} F1 {metrics['f1']:.1f}; first sentence "
        f"EM {baseline['exact_match']:.1f} F1 {baseline['f1']:.1f}; "
        f"train {result.manifest['training']['train_seconds']} s"
    )
