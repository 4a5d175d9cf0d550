"""Adding a task is one class and one registry line: a small regression task defined entirely
in this file goes through train → eval → predict → `data prepare`, and the same class works
named by its dotted path in a config (`task: {type: module:Class}`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import Field
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

import tunewise
from conftest import NEGATIVE, POSITIVE, write_jsonl
from tunewise import api
from tunewise.config import SplitFile, StrategyOptions, TaskOptions
from tunewise.data.readers import read_records
from tunewise.data.schemas import Problem, Schema, SchemaSpec, text_problem
from tunewise.errors import DataError
from tunewise.registry import TASKS
from tunewise.strategies.full import FullStrategy
from tunewise.tasks.base import Task
from tunewise.tasks.heads import BackboneHead, head_linear, pool


class ScoreOptions(TaskOptions):
    type: str = "positivity"
    scale: float = Field(1.0, gt=0)  # predicted scores are multiplied by this


def _check(record: dict, schema: Schema) -> Problem | None:
    problem = text_problem(record, "text")
    if problem:
        return problem
    if not isinstance(record.get("score"), (int, float)):
        return ("score", "should be a number", record.get("score"))
    return None


class ScoreHead(BackboneHead):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__(backbone)
        self.regressor = head_linear(backbone.config.hidden_size, 1)

    def forward(self, input_ids, attention_mask, labels=None, **_: Any) -> Any:
        hidden = self.token_states(input_ids, attention_mask)
        out = self.regressor(self.dropout(pool(hidden, attention_mask, "mean"))).squeeze(-1)
        loss = None if labels is None else nn.functional.mse_loss(out, labels.to(out.dtype))
        return SequenceClassifierOutput(loss=loss, logits=out)


class ScoreTask(Task):
    """Text → a number (here: +1 for positive sentences, -1 for negative ones)."""

    name = "positivity"
    Options = ScoreOptions
    default_metric = "mse"
    greater_is_better = False
    head_modules: ClassVar[list[str]] = ["regressor"]
    predict_fields = ("text",)
    prepare_schema = SchemaSpec(
        name="positivity",
        aliases={"text": ("sentence",), "score": ()},
        check=_check,
        text_fields=("text",),
        key_fields=("text",),
    )

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        return None

    def read(self, spec: SplitFile, *, fit: bool = False, labelled: bool = True) -> Any:
        from datasets import Dataset

        cols: dict[str, list] = {"text": [], "label": []}
        for line, rec in read_records(spec.path, spec.format):
            if labelled and not isinstance(rec.get("score"), (int, float)):
                raise DataError(f"{spec.path}, line {line}: 'score' should be a number.")
            cols["text"].append(rec["text"])
            cols["label"].append(float(rec.get("score", 0.0)))
        return Dataset.from_dict(cols if labelled else {"text": cols["text"]})

    def tokenize(self, dataset: Any, tokenizer: Any) -> Any:
        def encode(batch: dict[str, list]) -> dict[str, list]:
            out = tokenizer(batch["text"], truncation=True, max_length=self.model_cfg.max_length)
            out["length"] = [len(ids) for ids in out["input_ids"]]
            return out

        drop = [c for c in dataset.column_names if c != "label"]
        ds = dataset.map(encode, batched=True, remove_columns=drop)
        return ds.rename_column("label", "labels") if "label" in ds.column_names else ds

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def build_model(self, backbone: nn.Module) -> nn.Module:
        return ScoreHead(backbone)

    def compute_metrics(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        pred = np.asarray(logits).reshape(-1)
        return {"mse": float(np.mean((pred - labels.reshape(-1)) ** 2)), "n_examples": len(pred)}

    def decode(self, logits: np.ndarray) -> list[dict[str, Any]]:
        return [{"score": float(v) * self.options.scale} for v in np.asarray(logits).reshape(-1)]


def _records(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        words = list(rng.choice(POSITIVE if i % 2 == 0 else NEGATIVE, 3))
        out.append({"text": " ".join(words), "score": 1.0 if i % 2 == 0 else -1.0})
    return out


@pytest.fixture
def registered(monkeypatch):
    """The one registry line (undone after the test)."""
    monkeypatch.setattr(TASKS, "_entries", dict(TASKS._entries))
    monkeypatch.setattr(TASKS, "_loaded", dict(TASKS._loaded))
    TASKS.register("positivity", f"{__name__}:ScoreTask")
    return "positivity"


def _config(tiny_bert: Path, tmp_path: Path, task: str) -> dict:
    train = write_jsonl(tmp_path / "train.jsonl", _records(48, 1))
    dev = write_jsonl(tmp_path / "dev.jsonl", _records(16, 2))
    return {
        "model": {"name": str(tiny_bert), "max_length": 16},
        "task": {"type": task, "scale": 2.0},
        "data": {"train": str(train), "validation": str(dev)},
        "strategy": {"name": "full"},
        "training": {"epochs": 3, "batch_size": 8, "learning_rate": 3e-3, "warmup": 0},
        "output_dir": str(tmp_path / "run"),
        "seed": 0,
    }


def test_a_task_defined_in_a_test_file_trains_evaluates_predicts_and_prepares(
    registered, tiny_bert, tmp_path
):
    cfg = _config(tiny_bert, tmp_path, registered)
    run = tunewise.finetune(cfg)
    final = run.metrics["validation"]
    assert final["n_examples"] == 16
    # Learning happened: a constant 0 for ±1 targets has mse 1.
    assert final["mse"] < 0.5
    metrics = api.evaluate(run.run_dir, tmp_path / "dev.jsonl")
    assert metrics["mse"] == pytest.approx(final["mse"], rel=1e-4)
    preds = tunewise.load(run.run_dir).predict(["good great fine", "bad awful poor"])
    assert preds[0]["score"] > preds[1]["score"]
    # The task's options reached it through the saved config (scale 2.0 doubles the raw output).
    raw = tunewise.load(run.run_dir)
    raw.task.options.scale = 1.0
    assert raw.predict(["good great fine"])[0]["score"] == pytest.approx(
        preds[0]["score"] / 2, rel=1e-5
    )
    # `tunewise predict --input` keeps exactly the task's declared fields.
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"text": "good nice", "id": 7}])
    from typer.testing import CliRunner

    from tunewise.cli import app

    result = CliRunner().invoke(app, ["predict", str(run.run_dir), "--input", str(pool)])
    assert result.exit_code == 0, result.output
    # one JSON line per input record: the task's output plus the input line it answers
    assert set(json.loads(result.stdout.strip().splitlines()[-1])) == {"score", "line"}

    # `data prepare` checks records against the schema the class declares.
    raw_file = write_jsonl(
        tmp_path / "raw.jsonl",
        [{"sentence": f"good film {i}", "score": 1} for i in range(8)]
        + [{"sentence": "bad film", "score": "high"}],
    )
    result = api.prepare_data(
        raw_file, tmp_path / "prepared", task=registered, options={"on_error": "skip"}
    )
    assert result.counts["n_rejected"] == 1
    rejected = (tmp_path / "prepared" / "rejected.jsonl").read_text().splitlines()
    assert "score" in rejected[0] and "number" in rejected[0]
    kept = [json.loads(x) for s in ("train", "validation", "test") for x in _lines(result, s)]
    assert len(kept) == 8 and all("text" in r and "sentence" not in r for r in kept)


def _lines(result: Any, split: str) -> list[str]:
    path = result.files.get(split)
    return Path(path).read_text().splitlines() if path else []


def test_a_task_class_named_by_dotted_path_in_the_config(tiny_bert, tmp_path):
    cfg = _config(tiny_bert, tmp_path, f"{__name__}:ScoreTask")
    cfg["training"]["epochs"] = 1
    run = tunewise.finetune(cfg)
    assert run.metrics["validation"]["n_examples"] == 16
    assert "score" in tunewise.load(run.run_dir).predict(["good"])[0]


def test_a_dotted_path_that_does_not_import_names_the_module():
    from tunewise.errors import ConfigError

    with pytest.raises(ConfigError, match=r"cannot import module 'no_such_pkg\.tasks'"):
        TASKS.get("no_such_pkg.tasks:Nope")
    with pytest.raises(ConfigError, match="has no attribute 'Nope'"):
        TASKS.get("tunewise.tasks.base:Nope")


class MyFullOptions(StrategyOptions):
    name: str = "mine"  # a dotted-path class accepts its path as its name
    note: str = "hello"


class MyFull(FullStrategy):
    name = "mine"
    Options = MyFullOptions


def test_a_strategy_class_named_by_dotted_path_in_the_config(tiny_bert, tmp_path):
    from tunewise.assemble import assemble
    from tunewise.config import load_config

    raw = _config(tiny_bert, tmp_path, "classification")
    raw["task"] = {"type": "classification"}
    for name in ("train", "validation"):
        write_jsonl(
            Path(raw["data"][name]),
            [{"text": "good", "label": "pos"}, {"text": "bad", "label": "neg"}],
        )
    raw["strategy"] = {"name": f"{__name__}:MyFull", "note": "set"}
    cfg = load_config(raw)
    assert isinstance(cfg.strategy, MyFullOptions) and cfg.strategy.note == "set"
    task = TASKS.get("classification")(cfg.task, cfg.data, cfg.model)
    task.read(cfg.data.split("train"), fit=True)
    assert isinstance(assemble(cfg, task).strategy, MyFull)


def test_data_prepare_schemas_come_from_the_task_classes():
    from tunewise.data.schemas import schema_for
    from tunewise.errors import ConfigError

    assert schema_for("ner").name == "token_classification"  # the old shorthands still work
    assert schema_for("translation").name == schema_for("seq2seq").name == "seq2seq"
    assert schema_for("chat").check is schema_for("instruction").check
    with pytest.raises(ConfigError, match="declares no data schema"):
        schema_for("multiple_choice")
