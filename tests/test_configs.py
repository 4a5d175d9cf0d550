"""Every example in configs/ is a valid config (validation only: nothing trains), with a comment
at the top saying how to run it, and the shared data it needs named where it needs any."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunewise.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
TASKS = {
    "classification",
    "token_classification",
    "extractive_qa",
    "multiple_choice",
    "instruction",
    "chat",
    "generative_qa",
    "summarization",
    "translation",
    "continued_pretraining",
}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_config_validates_and_says_how_to_run(path: Path):
    cfg = load_config(path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#") and "tunewise train configs/" + path.name in text
    uses_shared = any(
        "../shared/data" in str(getattr(cfg.data, split) or "")
        for split in ("train", "validation", "test")
    )
    header = text.split("\nmodel:")[0]
    if uses_shared:  # the top comment says which optional data it needs
        assert "shared data" in header and "../shared/data/" in header


def test_one_example_per_task_and_one_for_smollm2():
    tasks = {load_config(p).task.type for p in CONFIGS}
    assert tasks >= TASKS
    assert any(load_config(p).model.name == "smollm2-135m" for p in CONFIGS)
