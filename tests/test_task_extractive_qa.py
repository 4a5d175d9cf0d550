"""Extractive QA end to end on a tiny random BERT: every strategy that makes sense trains
(loss goes down), predictions have the promised shape, `eval` / `predict` agree with the
task's own decoding, SQuAD 2.0 questions are handled, and bad setups fail clearly."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FILLER, POSITIVE
from tunewise import api
from tunewise.cli import app
from tunewise.config import load_config
from tunewise.errors import DataError
from tunewise.evaluation.squad import squad_scores
from tunewise.registry import TASKS


def qa_records(n: int, seed: int, unanswerable: float = 0.0) -> list[dict]:
    """Contexts of filler words with one 'positive' word, which is the answer; contexts run
    past the 32-token windows, so many questions span several windows."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(8, 50))]
        answer = None
        if rng.random() >= unanswerable:
            pos = rng.randrange(len(words))
            words[pos] = answer = rng.choice(POSITIVE)
        context = " ".join(words)
        answers = {"text": [], "answer_start": []}
        if answer:
            start = len(" ".join(words[:pos])) + (1 if pos else 0)
            answers = {"text": [answer], "answer_start": [start]}
        out.append({"id": f"q{i}", "question": "which word is good", "context": context,
                    "answers": answers})  # fmt: skip
    return out


def write_squad(path: Path, records: list[dict]) -> Path:
    """The same records as SQuAD v2 JSON, two questions per paragraph where contexts repeat."""
    paragraphs = [
        {
            "context": r["context"],
            "qas": [
                {
                    "id": r["id"],
                    "question": r["question"],
                    "answers": [
                        {"text": t, "answer_start": s}
                        for t, s in zip(
                            r["answers"]["text"], r["answers"]["answer_start"], strict=True
                        )
                    ],
                    "is_impossible": not r["answers"]["text"],
                }
            ],
        }
        for r in records
    ]
    path.write_text(
        json.dumps({"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]})
    )
    return path


def qa_config(model: Path, data: dict[str, Path], out: Path, strategy: str, **task) -> dict:
    return {
        "model": {"name": str(model), "max_length": 32},
        "task": {"type": "extractive_qa", "doc_stride": 8, **task},
        "data": {"train": str(data["train"]), "validation": str(data["validation"])},
        "strategy": {"name": strategy},
        "training": {"epochs": 3, "batch_size": 8, "learning_rate": 5e-3, "logging_steps": 5},
        "output_dir": str(out),
        "seed": 0,
    }


def mean_loss(model, task, tokenizer, dataset) -> float:
    import torch

    encoded = task.tokenize(dataset, tokenizer)
    cols = ["input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions"]
    rows = encoded.select_columns(cols)
    collate = task.collator(tokenizer)
    model.eval()
    with torch.inference_mode():
        losses = [
            float(model(**collate([rows[j] for j in range(i, min(i + 16, len(rows)))])).loss)
            for i in range(0, len(rows), 16)
        ]
    return sum(losses) / len(losses)


@pytest.fixture(scope="module")
def qa_data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("qa")
    train = root / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in qa_records(64, seed=1)))
    dev = write_squad(root / "dev.json", qa_records(16, seed=2))
    return {"train": train, "validation": dev, "root": root}


@pytest.fixture(scope="module")
def trained(tiny_bert, qa_data) -> dict:
    """One short run per strategy, shared by the tests below."""
    runs = {}
    for strategy in ("full", "lora", "frozen"):
        cfg = qa_config(tiny_bert, qa_data, qa_data["root"] / f"run-{strategy}", strategy)
        cfg["training"]["epochs"] = 4  # random batches, no warmup: LoRA needs a few more steps
        runs[strategy] = (cfg, api.finetune(cfg))
    return runs


@pytest.mark.parametrize("strategy", ["full", "lora", "frozen"])
def test_training_lowers_loss(trained, qa_data, strategy) -> None:
    from tunewise.assemble import assemble

    cfg, result = trained[strategy]
    config = load_config(cfg)
    task = TASKS.get("extractive_qa")(config.task, config.data, config.model)
    dev = task.read(config.data.split("validation"))
    untrained = assemble(config, task)  # same seed: the head starts where training started
    before = mean_loss(untrained.model, task, untrained.tokenizer, dev)
    predictor = result.load()
    after = mean_loss(predictor.model, task, predictor.tokenizer, dev)
    # frozen: only the 66-parameter head trains on a random backbone, so it gains least
    assert after < {"full": 0.8, "lora": 0.8, "frozen": 0.97}[strategy] * before, (before, after)
    metrics = result.metrics["validation"]
    assert metrics["n_examples"] == 16
    # averaged over the 16 questions (not over windows): each question adds 0 or 100/16 to EM
    assert (metrics["exact_match"] * 16 / 100) == pytest.approx(
        round(metrics["exact_match"] * 0.16)
    )
    assert result.manifest["data"]["train"]["label_counts"] == {"answerable": 64, "unanswerable": 0}


def test_full_finetune_learns_the_toy_task(trained) -> None:
    # The answer is the only 'positive' word of the context: full fine-tuning finds most.
    assert trained["full"][1].metrics["validation"]["f1"] >= 50


@pytest.mark.parametrize("strategy", ["full", "lora", "frozen"])
def test_predictions_are_context_spans(trained, strategy) -> None:
    predictor = trained[strategy][1].load()
    records = qa_records(6, seed=3)
    inputs = [{"question": r["question"], "context": r["context"]} for r in records]
    preds = predictor.predict(inputs)
    assert len(preds) == len(inputs)
    for pred, rec in zip(preds, inputs, strict=True):
        assert set(pred) == {"answer", "score", "start", "end"}
        assert isinstance(pred["answer"], str) and isinstance(pred["score"], float)
        assert isinstance(pred["start"], int) and isinstance(pred["end"], int)
        assert 0 <= pred["start"] < pred["end"] <= len(rec["context"])
        assert pred["answer"] == rec["context"][pred["start"] : pred["end"]]
        assert 0 < pred["score"] <= 1
    with pytest.raises(DataError, match="'question' and 'context'"):
        predictor.predict(["just a text"])


def test_cli_eval_and_predict_agree_with_decoding(trained, qa_data, tmp_path) -> None:
    run_dir = trained["full"][1].run_dir
    out = tmp_path / "m.json"
    res = CliRunner().invoke(
        app, ["eval", str(run_dir), "--data", str(qa_data["validation"]), "--output", str(out)]
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads(out.read_text())
    # Recompute EM / F1 from raw predictions through `predict` (a separate code path).
    records = qa_records(16, seed=2)
    inp = tmp_path / "in.jsonl"
    inp.write_text(
        "".join(
            json.dumps({"question": r["question"], "context": r["context"]}) + "\n" for r in records
        )
    )
    pred_file = tmp_path / "p.jsonl"
    res = CliRunner().invoke(
        app, ["predict", str(run_dir), "--input", str(inp), "--output", str(pred_file)]
    )
    assert res.exit_code == 0, res.output
    preds = [json.loads(line)["answer"] for line in pred_file.read_text().splitlines()]
    expected = squad_scores(preds, [r["answers"]["text"] for r in records])
    assert metrics["exact_match"] == pytest.approx(expected["exact_match"])
    assert metrics["f1"] == pytest.approx(expected["f1"])
    assert metrics["n_examples"] == 16


def test_squad_v2_unanswerable(tiny_bert, tmp_path) -> None:
    train = write_squad(tmp_path / "train.json", qa_records(64, seed=4, unanswerable=0.3))
    dev = write_squad(tmp_path / "dev.json", qa_records(16, seed=5, unanswerable=0.3))
    data = {"train": train, "validation": dev}
    cfg = qa_config(tiny_bert, data, tmp_path / "run", "full", version_2_with_negative=True)
    cfg["data"]["format"] = "squad"
    result = api.finetune(cfg)
    m = result.metrics["validation"]
    assert m["has_answer_n_examples"] + m["no_answer_n_examples"] == m["n_examples"] == 16
    assert m["no_answer_n_examples"] > 0
    expected = (
        m["has_answer_f1"] * m["has_answer_n_examples"]
        + m["no_answer_f1"] * m["no_answer_n_examples"]
    ) / 16
    assert m["f1"] == pytest.approx(expected)
    # A planted null-score margin decides the answer: with a threshold far below any margin
    # the null answer must win (""), far above it the best span must (a real context span).
    predictor = result.load()
    record = {"question": "which word is good", "context": "the film was great"}
    predictor.task.options.null_score_threshold = -1e9
    null = predictor.predict([record])[0]
    assert (null["answer"], null["start"], null["end"]) == ("", -1, -1)
    predictor.task.options.null_score_threshold = 1e9
    span = predictor.predict([record])[0]
    assert span["answer"] and span["start"] >= 0
    assert record["context"][span["start"] : span["end"]] == span["answer"]


def test_v1_mode_rejects_unanswerable_questions(tiny_bert, tmp_path) -> None:
    dev = write_squad(tmp_path / "dev.json", qa_records(8, seed=6, unanswerable=0.5))
    config = load_config(qa_config(tiny_bert, {"train": dev, "validation": dev}, tmp_path, "full"))
    task = TASKS.get("extractive_qa")(config.task, config.data, config.model)
    with pytest.raises(DataError, match="version_2_with_negative"):
        task.read(config.data.split("train"))


def test_decoder_backbone_runs(tiny_llama, qa_data, tmp_path) -> None:
    """A causal LM loaded as the bare backbone carries the same span head."""
    cfg = qa_config(tiny_llama, qa_data, tmp_path / "run", "lora")
    cfg["training"]["epochs"] = 1
    result = api.finetune(cfg)
    assert result.metrics["validation"]["n_examples"] == 16
    assert result.manifest["strategy"]["details"]["n_adapted_layers"] > 0
