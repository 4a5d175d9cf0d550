"""docs/config.md is generated from the config models and fails here when it is stale."""

from __future__ import annotations

from tunewise import docs_gen
from tunewise.config import TrainingConfig


def test_config_reference_is_up_to_date():
    assert docs_gen.main(["--check"]) == 0, "run: python -m tunewise.docs_gen"


def test_every_key_is_listed_with_its_default_and_meaning():
    text = docs_gen.render()
    for name, field in TrainingConfig.model_fields.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `training.{name}` |"))
        cells = [c.strip() for c in row.split(" | ")]
        assert cells[-1].rstrip("|").strip(), f"training.{name} has no meaning"
        assert repr(field.default) in row or field.default_factory is not None
    assert "#### `task.type: extractive_qa`" in text and "| `task.doc_stride` |" in text
    assert "#### `strategy.name: lora`" in text and "| `strategy.r` |" in text
