"""Integration on real data and real packaged models (minutes on 2 CPU cores).

Reads ../shared/data in place (never copied into the repo); skipped where it is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tunewise
from tunewise.cli import app

SST2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _all_cores(_one_torch_thread):
    """Real models use every core (conftest defaults the suite to one thread)."""
    import torch

    torch.set_num_threads(_one_torch_thread)
    yield
    torch.set_num_threads(1)


@pytest.mark.skipif(not SST2.is_dir(), reason="../shared/data/sst2 not present")
def test_minilm_lora_sst2_subset_reaches_080(tmp_path):
    """The issue's bar: minilm + LoRA, 4,000 training examples, 1 epoch, full dev set ≥ 0.80
    with tunewise's defaults (a plain peft LoRA script gets 0.675 here)."""
    result = tunewise.finetune(
        {
            "model": {"name": "minilm"},
            "task": {"type": "classification"},
            "data": {
                "train": str(SST2 / "train.tsv"),
                "validation": str(SST2 / "dev.tsv"),
                "text_column": ["sentence", "content"],
            },
            "strategy": {"name": "lora"},
            "training": {"epochs": 1, "max_train_samples": 4000},
            "output_dir": str(tmp_path / "run"),
        }
    )
    metrics = result.metrics["validation"]
    assert metrics["n_examples"] == 872
    assert metrics["accuracy"] >= 0.80, metrics["accuracy"]
    assert result.manifest["training"]["n_train"] == 4000
    # Only the adapters and the head were saved: well under 5% of the model's 22.7M parameters.
    assert result.manifest["strategy"]["parameters"]["percent"] < 5
    # The saved run predicts the obvious cases right.
    preds = result.load().predict(["a wonderful , moving film .", "a dull , lifeless mess ."])
    assert [p["label"] for p in preds] == ["1", "0"]


def test_quickstart_demo_end_to_end(tmp_path):
    """`make demo`: the bundled data, LoRA on minilm, metrics and predictions printed."""
    out = tmp_path / "quickstart"
    result = CliRunner().invoke(app, ["quickstart", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert "validation metrics" in result.output and "report:" in result.output
    metrics = json.loads((out / "metrics.json").read_text())["validation"]
    assert metrics["n_examples"] == 80
    assert metrics["accuracy"] >= 0.85, metrics
    for label in ("billing", "technical", "shipping", "account"):
        assert label in result.output


def test_smollm2_alias_loads_from_gguf_and_trains_lora(tmp_path):
    """The `smollm2-135m` alias: GGUF in a PyPI package → cached safetensors → LLaMA backbone
    with last-token pooling; LoRA adapts every linear layer of its 30 blocks."""
    rows = [{"text": t, "label": y} for t, y in [("great movie", "pos"), ("awful film", "neg")] * 8]
    data = tmp_path / "t.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = tunewise.finetune(
        {
            "model": {"name": "smollm2-135m", "max_length": 16},
            "data": {"train": str(data), "validation": str(data)},
            "strategy": {"name": "lora"},
            "training": {"max_steps": 2, "batch_size": 8},
            "output_dir": str(tmp_path / "run"),
        }
    )
    assert result.manifest["base_model"]["model_type"] == "llama"
    details = result.manifest["strategy"]["details"]
    assert details["n_adapted_layers"] == 30 * 7
    assert set(details["target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    params = result.manifest["strategy"]["parameters"]
    assert 130e6 < params["total"] < 140e6 and params["percent"] < 3
    # The cached conversion keeps the (tied) embedding: no backbone weight starts random.
    from transformers import AutoModel

    from tunewise.models import resolve

    source = resolve("smollm2-135m")
    _, info = AutoModel.from_pretrained(source.path, output_loading_info=True)
    assert info["missing_keys"] == [] or info["missing_keys"] == set()
    assert (Path(source.path) / "model.safetensors").is_file()
