"""`tunewise serve` on token classification, extractive QA and multiple choice runs, over real
HTTP against uvicorn on a loopback port: /v1/predict answers what `Predictor.predict` does for
the same inputs (in order), a record missing a field or with one of the wrong type is a 4xx
naming `inputs[i].field` (never a 5xx, and the server keeps answering), /v1/models names the task.

The server folds LoRA into the weights (Engine), so the reference Predictor is folded too."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import write_jsonl
from serve_helpers import LiveServer
from test_task_extractive_qa import qa_config, qa_records
from test_task_multiple_choice import mc_config, mc_records
from test_task_token_classification import ner_config, ner_sentences, write_conll
from tunewise import api
from tunewise.serving.batch_predict import fold_for_inference
from tunewise.serving.predictor import Predictor
from tunewise.serving.settings import ServeSettings

FEW_STEPS = {"epochs": 1, "max_steps": 3, "learning_rate": 1e-2}
NO_EVAL = {"each_epoch": False}


def ner_run(model: Path, root: Path) -> Path:
    data = {
        "train": write_conll(root / "train.txt", ner_sentences(48, seed=1)),
        "validation": write_conll(root / "dev.txt", ner_sentences(4, seed=2)),
    }
    cfg = ner_config(model, data, root / "ner", "lora")
    # enough steps that the inputs below have entities (whose scores are compared): 6-7 of them
    # for seeds 0-3 (20 steps at 5e-2 gave >= 3 for 2 seeds of 4, with either dropout)
    cfg["training"].update({**FEW_STEPS, "max_steps": 60, "learning_rate": 2e-2})
    return Path(api.finetune({**cfg, "eval": NO_EVAL}).run_dir)


def record_run(records: Any, config: Any, model: Path, root: Path, name: str) -> Path:
    """A few LoRA steps of a task whose data are JSONL records (`records(n, seed)`)."""
    data = {
        "train": write_jsonl(root / "train.jsonl", records(24, seed=1)),
        "validation": write_jsonl(root / "dev.jsonl", records(4, seed=2)),
    }
    cfg = config(model, data, root / name, "lora")
    cfg["training"].update(FEW_STEPS)
    return Path(api.finetune({**cfg, "eval": NO_EVAL}).run_dir)


def qa_run(model: Path, root: Path) -> Path:
    return record_run(qa_records, qa_config, model, root, "qa")


def mc_run(model: Path, root: Path) -> Path:
    return record_run(mc_records, mc_config, model, root, "mc")


NER_INPUTS = [
    "the film was great but the plot awful",
    {"text": "really boring story"},
    {"tokens": ["awful", "movie", 7, "superb", "actor"]},  # numbers are words too
    "it is a lovely film",
]
QA_INPUTS = [
    {k: r[k] for k in ("question", "context")} for r in qa_records(4, seed=3)
]  # contexts run past one 32-token window
MC_INPUTS = [{k: r[k] for k in ("question", "choices")} for r in mc_records(4, seed=3)] + [
    {"question": 12, "choices": [{"text": "good film"}, "bad plot", 3]}  # as the task reads them
]

# task → (make run, inputs, bad bodies: (inputs, field the error must name))
CASES: dict[str, tuple[Any, list[Any], list[tuple[list[Any], str]]]] = {
    "token_classification": (
        ner_run,
        NER_INPUTS,
        [
            (["good film", {"txt": "good film"}], "inputs[1].text"),
            (["good film", {"text": 3}], "inputs[1].text"),
            ([{"tokens": "good film"}], "inputs[0].tokens"),
            (["good", {"text": "  "}], "inputs[1].text"),
            ([{"tokens": []}], "inputs[0].tokens"),
            ([{"tokens": ["good", None]}], "inputs[0].tokens[1]"),
            ([{"text": "good", "tokens": [["good"]]}], "inputs[0].tokens[0]"),
        ],
    ),
    "extractive_qa": (
        qa_run,
        QA_INPUTS,
        [
            ([QA_INPUTS[0], {"question": "which word"}], "inputs[1].context"),
            ([QA_INPUTS[0], {"question": 7, "context": "a good film"}], "inputs[1].question"),
            (
                [QA_INPUTS[0], {"question": "which", "context": ["a good film"]}],
                "inputs[1].context",
            ),
            ([{"question": " ", "context": "a good film"}], "inputs[0].question"),
            ([QA_INPUTS[0], "which word is good"], "inputs[1]"),
        ],
    ),
    "multiple_choice": (
        mc_run,
        MC_INPUTS,
        [
            ([MC_INPUTS[0], {"question": "the film"}], "inputs[1].choices"),
            ([{"choices": ["good film", "bad film"]}, MC_INPUTS[0]], "inputs[0].question"),
            ([MC_INPUTS[0], {"question": "the film", "choices": "good"}], "inputs[1].choices"),
            ([MC_INPUTS[0], {"question": ["x"], "choices": ["a", "b"]}], "inputs[1].question"),
            ([MC_INPUTS[0], {"question": "q", "choices": ["good film"]}], "inputs[1].choices"),
            ([MC_INPUTS[0], {"question": "q", "choices": ["a", True]}], "inputs[1].choices[1]"),
            ([MC_INPUTS[0], {"question": "q", "choices": ["a", {"x": 1}]}], "inputs[1].choices[1]"),
            ([{"query": "q", "choices": ["a", "b"]}, MC_INPUTS[0]], "inputs[1].query"),
            ([MC_INPUTS[0], "just a text"], "inputs[1]"),
        ],
    ),
}


@pytest.fixture(scope="module", params=list(CASES))
def served(request, tiny_bert, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """One tiny LoRA run per task, its folded Predictor, and a live server on it."""
    task = request.param
    make, inputs, bad = CASES[task]
    run = make(tiny_bert, tmp_path_factory.mktemp(task))
    predictor = Predictor(run, device="cpu")
    assert fold_for_inference(predictor)  # as the server's Engine does
    live = LiveServer(api.create_app(run, ServeSettings(max_wait_ms=5), device="cpu"))
    client = httpx.Client(base_url=live.url, timeout=60)
    try:
        yield {"task": task, "run": run, "predictor": predictor, "client": client,
               "inputs": inputs, "bad": bad}  # fmt: skip
    finally:
        client.close()
        live.stop()


def assert_close(got: Any, want: Any, where: str = "") -> None:
    """Equal structure, keys and values; floats within 1e-4."""
    if isinstance(want, float) or isinstance(got, float):
        assert isinstance(got, (int, float)) and math.isclose(got, want, abs_tol=1e-4), where
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), where
        for key in want:
            assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{where}[{i}]")
    else:
        assert got == want, where


def test_predictions_are_the_predictors_in_order(served):
    c, inputs = served["client"], served["inputs"]
    want = served["predictor"].predict(inputs)
    if served["task"] == "token_classification":
        assert sum(len(p["entities"]) for p in want) >= 3  # spans and scores get compared
    r = c.post("/v1/predict", json={"inputs": inputs})
    assert r.status_code == 200, r.text
    got = r.json()["predictions"]
    assert_close(got, want, "predictions")
    # the same inputs reversed come back reversed: order is the request's, not a batch's
    r = c.post("/v1/predict", json={"inputs": inputs[::-1]})
    assert_close(r.json()["predictions"], want[::-1], "reversed")


def test_bad_records_get_a_4xx_naming_the_field(served):
    c = served["client"]
    for inputs, field in served["bad"]:
        r = c.post("/v1/predict", json={"inputs": inputs})
        assert 400 <= r.status_code < 500, (inputs, r.status_code, r.text)
        error = r.json()["error"]
        assert field in error["message"] and error["param"] == field, (inputs, error)
        # and the server keeps answering
        ok = c.post("/v1/predict", json={"inputs": served["inputs"][:1]})
        assert ok.status_code == 200 and len(ok.json()["predictions"]) == 1


def test_models_and_health_report_the_task(served):
    c = served["client"]
    [model] = c.get("/v1/models").json()["data"]
    assert model["task"] == served["task"] and model["run"] == str(served["run"])
    assert model["strategy"] == "lora" and model["generative"] is False
    assert c.get("/health").json()["task"] == served["task"]


def test_in_memory_predictions_equal_the_dataset_path(served):
    """`predict_records` (what predict and the server call; some tasks skip building a
    `datasets` table) answers what the task's `predict` on `records_to_dataset` answers."""
    p, inputs = served["predictor"], served["inputs"]
    dataset = p.task.records_to_dataset(inputs)
    want = p.task.predict(p.model, p.tokenizer, dataset, 2)
    assert_close(p.task.predict_records(p.model, p.tokenizer, inputs, 2), want, "in memory")
