"""Multiple choice: reading (gold as index / text / letter, errors that name the record),
variable numbers of candidates, metrics against hand-computed values and sklearn, scores that do
not depend on batch padding, training with several strategies, and the predictor round trip."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FILLER, NEGATIVE, POSITIVE, write_jsonl
from tunewise import api
from tunewise.assemble import assemble
from tunewise.config import SplitFile, load_config
from tunewise.errors import DataError
from tunewise.registry import TASKS


def mc_records(n: int, seed: int, min_choices: int = 2, max_choices: int = 4) -> list[dict]:
    """Toy ranking: the right candidate holds a positive word, the others negative words; the
    gold position and the number of candidates vary."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(min_choices, max_choices)
        gold = rng.randrange(k)
        choices = [
            " ".join([rng.choice(POSITIVE if j == gold else NEGATIVE), *rng.sample(FILLER, 2)])
            for j in range(k)
        ]
        out.append({"question": " ".join(rng.sample(FILLER, 3)), "choices": choices, "label": gold})
    return out


@pytest.fixture
def mc_data(tmp_path) -> dict[str, Path]:
    return {
        "train": write_jsonl(tmp_path / "train.jsonl", mc_records(96, seed=1)),
        "validation": write_jsonl(tmp_path / "dev.jsonl", mc_records(40, seed=2)),
    }


def mc_config(model_dir: Path, data: dict[str, Path], out: Path, strategy: str = "full", **kw):
    cfg = {
        "model": {"name": str(model_dir), "max_length": 32},
        "task": {"type": "multiple_choice"},
        "data": {"train": str(data["train"]), "validation": str(data["validation"])},
        "strategy": {"name": strategy},
        "training": {"epochs": 4, "batch_size": 8, "learning_rate": 3e-3, "logging_steps": 4},
        "eval": {"batch_size": 16},
        "output_dir": str(out),
        "seed": 0,
    }
    cfg.update(kw)
    return cfg


def make_task(model_dir: Path, data: dict[str, Path], tmp_path: Path, **task_options):
    raw = mc_config(model_dir, data, tmp_path / "run")
    raw["task"].update(task_options)
    cfg = load_config(raw)
    return TASKS.get("multiple_choice")(cfg.task, cfg.data, cfg.model), cfg


# --------------------------------------------------------------------------------------- metrics


def test_metrics_match_hand_computed_values(tiny_bert, mc_data, tmp_path):
    task, _ = make_task(tiny_bert, mc_data, tmp_path)
    nan = np.nan
    logits = np.array(
        [
            [0.1, 0.9, nan, nan],  # gold 1 is best: rank 1
            [0.5, 0.2, 0.3, nan],  # gold 2 is beaten by 0.5: rank 2
            [0.2, 0.1, 0.7, 0.9],  # gold 0 is beaten by 0.7 and 0.9: rank 3
            [0.0, 1.0, 2.0, 3.0],  # gold 3 is best: rank 1
        ]
    )
    m = task.compute_metrics(logits, np.array([1, 2, 0, 3]))
    assert m["accuracy"] == pytest.approx(2 / 4)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1) / 4)
    assert m["n_examples"] == 4
    assert m["mean_candidates"] == pytest.approx((2 + 3 + 4 + 4) / 4)
    assert m["chance_accuracy"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 4 + 1 / 4) / 4)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(2, 6), st.integers(0, 10_000))
def test_mrr_equals_sklearn_label_ranking_precision_with_one_gold(n, k, seed):
    """With one relevant item, label-ranking average precision is the reciprocal rank."""
    from sklearn.metrics import accuracy_score, label_ranking_average_precision_score

    from tunewise.tasks.multiple_choice import MultipleChoiceTask

    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n, k))
    labels = rng.integers(0, k, size=n)
    task = MultipleChoiceTask.__new__(MultipleChoiceTask)
    m = task.compute_metrics(scores, labels)
    truth = np.eye(k, dtype=int)[labels]
    assert m["mrr"] == pytest.approx(label_ranking_average_precision_score(truth, scores))
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, scores.argmax(1)))


# ------------------------------------------------------------------------------------------ data


def test_gold_given_as_index_text_or_letter(tiny_bert, mc_data, tmp_path):
    path = write_jsonl(
        tmp_path / "golds.jsonl",
        [
            {"question": "q", "choices": ["a", "b", "c"], "label": 2},
            {"question": "q", "choices": ["a", "b", "c"], "label": "b"},
            {"question": "q", "choices": ["x", "y"], "label": "A"},
            {"question": "q", "choices": ["x", "y"], "label": 1.0},
        ],
    )
    task, _ = make_task(tiny_bert, mc_data, tmp_path)
    ds = task.read(SplitFile(path=str(path), format="auto"))
    assert ds["label"] == [2, 1, 0, 1]
    assert [len(c) for c in ds["choices"]] == [3, 3, 2, 2]


def test_configurable_fields_and_context(tiny_bert, mc_data, tmp_path):
    path = write_jsonl(
        tmp_path / "swag.jsonl",
        [{"passage": "the film", "ctx": "it was", "endings": ["good", "bad"], "answer": "bad"}],
    )
    task, _ = make_task(tiny_bert, mc_data, tmp_path, context_field="passage")
    ds = task.read(SplitFile(path=str(path), format="auto"))
    assert ds["question"] == ["the film it was"]
    assert ds["choices"] == [["good", "bad"]] and ds["label"] == [1]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"question": "q", "choices": ["a", "b"], "label": "c"},
            "'c' (field 'label') is not among",
        ),
        ({"question": "q", "choices": ["a", "b"], "label": 5}, "index 5, but there are 2"),
        ({"question": "q", "choices": ["a"], "label": 0}, "at least two candidates"),
        ({"question": "q", "choices": ["a", ""], "label": 0}, "candidate 1 of 'choices'"),
        ({"question": "", "choices": ["a", "b"], "label": 0}, "field 'question' is missing"),
        ({"question": "q", "choices": ["a", "b"]}, "'label' (the gold answer) is missing"),
    ],
)
def test_bad_records_name_file_line_and_field(tiny_bert, mc_data, tmp_path, record, message):
    good = {"question": "q", "choices": ["a", "b"], "label": 0}
    path = write_jsonl(tmp_path / "bad.jsonl", [good, record])
    task, _ = make_task(tiny_bert, mc_data, tmp_path)
    with pytest.raises(DataError) as err:
        task.read(SplitFile(path=str(path), format="auto"))
    assert f"{path}, line 2" in str(err.value) and message in str(err.value)


def test_missing_choices_field_lists_what_the_records_have(tiny_bert, mc_data, tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "answers": ["a"], "label": 0}])
    task, _ = make_task(tiny_bert, mc_data, tmp_path)
    with pytest.raises(
        DataError, match=r"no field 'choices' or 'endings'.*'answers'.*choices_field"
    ):
        task.read(SplitFile(path=str(path), format="auto"))


# --------------------------------------------------------------------------- collator and model


@pytest.mark.parametrize("model_fixture", ["tiny_bert", "tiny_llama"])
def test_candidate_scores_do_not_depend_on_batch_padding(model_fixture, mc_data, tmp_path, request):
    """An example's scores are the same alone and in a batch padded to more candidates and
    longer ones; absent candidates get the lowest possible score."""
    model_dir = request.getfixturevalue(model_fixture)
    raw = mc_config(model_dir, mc_data, tmp_path / "run")
    cfg = load_config(raw)
    task = TASKS.get("multiple_choice")(cfg.task, cfg.data, cfg.model)
    built = assemble(cfg, task)
    built.model.eval()
    ds = task.read(cfg.data.split("validation"))
    enc = task.tokenize(ds, built.tokenizer)
    collate = task.collator(built.tokenizer)
    widths = [len(x) for x in enc["input_ids"]]
    small, big = widths.index(2), widths.index(4)
    rows = enc.select_columns(["input_ids", "attention_mask", "labels"])
    batch = collate([rows[small], rows[big]])
    assert batch["input_ids"].shape[:2] == (2, 4)
    assert batch["attention_mask"][0, 2:].sum() == 0  # the 2-candidate example's padding rows
    with torch.no_grad():
        both = built.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        alone = built.model(
            **{k: v for k, v in collate([rows[small]]).items() if k != "labels"}
        ).logits
    torch.testing.assert_close(both[0, :2], alone[0], atol=1e-5, rtol=1e-5)
    assert torch.all(both[0, 2:] == torch.finfo(both.dtype).min)


def test_token_lengths_count_padded_candidate_tokens(tiny_bert, mc_data, tmp_path):
    task, cfg = make_task(tiny_bert, mc_data, tmp_path)
    built = assemble(cfg, task)
    enc = task.tokenize(task.read(cfg.data.split("validation")), built.tokenizer)
    for ids, length in zip(enc["input_ids"], enc["length"], strict=True):
        assert length == len(ids) * max(len(c) for c in ids)


# ---------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def mc_runs(tmp_path_factory, tiny_bert, tiny_llama):
    """One finished run per (model, strategy) pair the tests below look at."""
    base = tmp_path_factory.mktemp("mc")
    data = {
        "train": write_jsonl(base / "train.jsonl", mc_records(96, seed=1)),
        "validation": write_jsonl(base / "dev.jsonl", mc_records(40, seed=2)),
    }
    runs = {}
    for key, model_dir, strategy in [
        ("bert-full", tiny_bert, "full"),
        ("bert-lora", tiny_bert, "lora"),
        ("llama-lora", tiny_llama, "lora"),
        ("bert-frozen", tiny_bert, "frozen"),
    ]:
        raw = mc_config(model_dir, data, base / key, strategy)
        if strategy == "lora":
            raw["training"]["learning_rate"] = 1e-2
        runs[key] = api.finetune(raw)
    return runs, data


@pytest.mark.parametrize("key", ["bert-full", "bert-lora", "llama-lora"])
def test_training_lowers_the_loss_and_beats_chance(key, mc_runs):
    runs, data = mc_runs
    run = runs[key]
    history = json.loads((run.run_dir / "tunewise.json").read_text())["training"]
    val = run.metrics["validation"]
    assert val["accuracy"] > val["chance_accuracy"] + 0.2
    # accuracy and MRR agree with the ranking `predict` returns for the same records
    records = [json.loads(line) for line in Path(data["validation"]).read_text().splitlines()]
    preds = run.load().predict(records)
    ranks = [
        1 + [item["index"] for item in p["ranking"]].index(r["label"])
        for p, r in zip(preds, records, strict=True)
    ]
    assert val["accuracy"] == pytest.approx(sum(k == 1 for k in ranks) / len(ranks), abs=1e-6)
    assert val["mrr"] == pytest.approx(sum(1 / k for k in ranks) / len(ranks), abs=1e-6)
    # first logged training loss vs. the final one
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run.run_dir / "tensorboard"))
    events.Reload()
    losses = [e.value for e in events.Scalars("train/loss")]
    assert losses[-1] < losses[0]
    assert history["steps"] > 0


def test_frozen_trains_only_the_scorer(mc_runs):
    runs, _ = mc_runs
    manifest = runs["bert-frozen"].manifest
    assert manifest["strategy"]["parameters"]["trainable"] == 32 + 1  # linear(hidden 32, 1)


@pytest.mark.parametrize("key", ["bert-full", "llama-lora"])
def test_predictor_round_trip(key, mc_runs):
    runs, data = mc_runs
    run = runs[key]
    predictor = run.load()
    again = predictor.evaluate(data["validation"], progress=False)
    for name in ("accuracy", "mrr", "n_examples"):
        assert again[name] == pytest.approx(run.metrics["validation"][name])
    records = [json.loads(line) for line in data["validation"].read_text().splitlines()[:5]]
    preds = predictor.predict([{k: r[k] for k in ("question", "choices")} for r in records])
    assert len(preds) == 5
    for pred, rec in zip(preds, records, strict=True):
        assert pred["choice"] == rec["choices"][pred["index"]]
        ranking = pred["ranking"]
        assert sorted(r["index"] for r in ranking) == list(range(len(rec["choices"])))
        assert ranking[0]["index"] == pred["index"] and ranking[0]["score"] == pred["score"]
        assert [r["score"] for r in ranking] == sorted((r["score"] for r in ranking), reverse=True)
        assert sum(r["score"] for r in ranking) == pytest.approx(1.0, abs=1e-4)


def test_predict_rejects_plain_strings(mc_runs):
    runs, _ = mc_runs
    with pytest.raises(DataError, match="input 0: multiple choice needs a record"):
        runs["bert-full"].load().predict(["just a text"])


def test_cli_eval_and_predict_from_a_file(mc_runs, tmp_path):
    from typer.testing import CliRunner

    from tunewise.cli import app

    runs, data = mc_runs
    run_dir = runs["bert-full"].run_dir
    out = tmp_path / "m.json"
    result = CliRunner().invoke(
        app, ["eval", str(run_dir), "--data", str(data["validation"]), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert metrics["accuracy"] == pytest.approx(runs["bert-full"].metrics["validation"]["accuracy"])
    assert {"mrr", "n_examples"} <= set(metrics)
    records = mc_records(4, seed=9)
    inputs = write_jsonl(
        tmp_path / "in.jsonl", [{k: r[k] for k in ("question", "choices")} for r in records]
    )
    preds_path = tmp_path / "p.jsonl"
    result = CliRunner().invoke(
        app, ["predict", str(run_dir), "--input", str(inputs), "--output", str(preds_path)]
    )
    assert result.exit_code == 0, result.output
    preds = [json.loads(line) for line in preds_path.read_text().splitlines()]
    assert [p["choice"] for p in preds] == [
        r["choices"][p["index"]] for r, p in zip(records, preds, strict=True)
    ]
    bad = write_jsonl(
        tmp_path / "bad.jsonl", [{"question": "q", "choices": ["a", "b"], "label": "z"}]
    )
    result = CliRunner().invoke(app, ["eval", str(run_dir), "--data", str(bad)])
    assert result.exit_code == 2 and "bad.jsonl, line 1" in result.output
