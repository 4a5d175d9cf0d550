"""Integration: minilm NER on 1,000 CoNLL-2003 training sentences with tunewise's defaults.

Reads ../shared/data/conll2003 in place (never copied into the repo); skipped where it is absent.
The issue's bar: validation entity F1 ≥ 0.70 in under ~3 minutes of training on 2 cores (a
hand-written script gets 0.79 with 3 epochs at lr 2e-4 and 0.33 with 1 epoch at 5e-5). Scored
on the whole validation split (3,250 sentences). Measured with the defaults (3 epochs, batches of
16, lr 2.25e-4 from the strategy rule): F1 0.794 in 395 s of training on one thread while the
2-core machine ran at load ~12 (151 real tokens/s); ~10 minutes for the whole test there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tunewise
from tunewise.cli import app

CONLL = Path(__file__).resolve().parents[2] / "shared" / "data" / "conll2003"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CONLL.is_dir(), reason="../shared/data/conll2003 not present"),
]


@pytest.fixture(autouse=True)
def _all_cores(_one_torch_thread):
    """Real models use every core (conftest defaults the suite to one thread)."""
    import torch

    torch.set_num_threads(_one_torch_thread)
    yield
    torch.set_num_threads(1)


def test_minilm_ner_on_1000_sentences_reaches_070(tmp_path):
    run_dir = tmp_path / "run"
    result = tunewise.finetune(
        {
            "model": {"name": "minilm"},
            "task": {"type": "token_classification"},
            "data": {"train": str(CONLL / "train.txt"), "validation": str(CONLL / "valid.txt")},
            "strategy": {"name": "full"},
            "training": {"max_train_samples": 1000},
            "eval": {"each_epoch": False},
            "output_dir": str(run_dir),
        }
    )
    training = result.manifest["training"]
    metrics = result.metrics["validation"]
    print(f"\nNER 1,000 sentences: {metrics['f1']:.4f} F1, {training}")
    assert training["n_train"] == 1000 and metrics["n_examples"] == 3250
    assert metrics["f1"] >= 0.70, metrics
    assert set(metrics["per_type"]) == {"LOC", "MISC", "ORG", "PER"}
    assert result.manifest["task"]["state"]["labels"][0] == "O"

    # `tunewise eval RUN --data FILE --output m.json` on a CoNLL file (.txt: format detected)
    sentences = (CONLL / "valid.txt").read_text(encoding="utf-8").split("\n\n")[:200]
    test_file = tmp_path / "test.txt"
    test_file.write_text("\n\n".join(sentences) + "\n", encoding="utf-8")
    out = tmp_path / "m.json"
    run = CliRunner().invoke(
        app, ["eval", str(run_dir), "--data", str(test_file), "--output", str(out)]
    )
    assert run.exit_code == 0, run.output
    written = json.loads(out.read_text())
    assert written["n_examples"] == 200
    assert {"f1", "precision", "recall"} <= set(written) and written["f1"] > 0.5

    # raw text in, entities with exact character offsets out
    text = "Acme hires Dutch engineers for its plant in Oslo, says Maria Jansen of the union."
    [pred] = result.load().predict([text])
    assert pred["entities"], pred
    for entity in pred["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
        assert entity["type"] in {"LOC", "MISC", "ORG", "PER"}
    found = {e["text"] for e in pred["entities"]}
    assert found & {"Acme", "Dutch", "Oslo", "Maria Jansen"}, pred
