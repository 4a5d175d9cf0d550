"""`serve --backend onnx`: the encoder tasks' forward pass runs in onnxruntime on a graph exported
and parity-checked at start-up; every answer equals the torch backend's (floats within 1e-4),
over the Engine and over HTTP. Generative runs and unknown backends are refused with the reason.
`--backend auto` (the default) takes onnx for encoder tasks, and torch (saying why) otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from serve_helpers import LiveServer, chat_run, classification_run
from test_serve_tasks import CASES, assert_close
from tunewise import api
from tunewise.errors import ConfigError, TunewiseError
from tunewise.serving.engine import Engine
from tunewise.serving.onnx_backend import OnnxModel
from tunewise.serving.settings import ServeSettings

TEXTS = ["a great film", "the plot was awful and far too long", "fine", {"text": "so boring"}]


def make_classification(model: Path, root: Path) -> Path:
    return classification_run(root, model)


TASKS: dict[str, tuple[Any, list[Any]]] = {
    "classification": (make_classification, TEXTS),
    **{task: (make, inputs) for task, (make, inputs, _) in CASES.items()},
}


@pytest.mark.parametrize("task", list(TASKS))
def test_onnx_engine_answers_as_torch_does(task, tiny_bert, tmp_path) -> None:
    make, inputs = TASKS[task]
    run = make(tiny_bert, tmp_path)
    torch_engine = Engine(run, device="cpu")
    onnx_engine = Engine(run, device="cpu", backend="onnx")
    assert isinstance(onnx_engine.predictor.model, OnnxModel)  # the graph really answers
    assert onnx_engine.export["parity"] and onnx_engine.export["max_abs_diff"] <= 1e-4
    want = torch_engine.predict(inputs, 32)
    assert_close(onnx_engine.predict(inputs, 32), want, task)
    assert_close(onnx_engine.predict(inputs[::-1], 32), want[::-1], f"{task} reversed")


def test_onnx_server_over_http(tiny_bert, tmp_path) -> None:
    run = classification_run(tmp_path, tiny_bert)
    want = Engine(run, device="cpu").predict(TEXTS, 32)
    live = LiveServer(api.create_app(run, ServeSettings(backend="onnx"), device="cpu"))
    try:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            r = client.post("/v1/predict", json={"inputs": TEXTS})
            assert r.status_code == 200, r.text
            assert_close(r.json()["predictions"], want, "predictions")
            model = client.get("/v1/models").json()["data"][0]
            assert model["backend"] == "onnx" and model["onnx_max_abs_diff"] <= 1e-4
    finally:
        live.stop()


def test_generative_runs_are_refused_with_the_reason(tmp_path) -> None:
    run = chat_run(tmp_path)
    with pytest.raises(TunewiseError, match=r"--backend onnx: .*--format hf"):
        Engine(run, device="cpu", backend="onnx")


def test_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--backend must be auto, torch or onnx"):
        ServeSettings(backend="tensorflow").resolve()


def test_auto_serves_an_encoder_task_with_onnx_by_default(tiny_bert, tmp_path) -> None:
    run = classification_run(tmp_path, tiny_bert)
    want = Engine(run, device="cpu").predict(TEXTS, 32)
    live = LiveServer(api.create_app(run, ServeSettings(), device="cpu"))  # the defaults
    try:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            model = client.get("/v1/models").json()["data"][0]
            assert model["backend"] == "onnx" and "backend_note" not in model
            r = client.post("/v1/predict", json={"inputs": TEXTS})
            assert r.status_code == 200, r.text
            assert_close(r.json()["predictions"], want, "predictions")
    finally:
        live.stop()


def test_auto_keeps_torch_for_generative_runs_and_says_why(tmp_path) -> None:
    engine = Engine(chat_run(tmp_path), device="cpu", backend="auto")
    assert engine.backend == "torch" and not isinstance(engine.predictor.model, OnnxModel)
    assert "generates text" in engine.info()["backend_note"]


def test_auto_falls_back_to_torch_when_the_export_fails(tiny_bert, tmp_path, monkeypatch) -> None:
    import tunewise.export.onnx as onnx_export

    def broken(*args: Any, **kw: Any) -> None:
        raise RuntimeError("exporter cannot trace this model")

    monkeypatch.setattr(onnx_export, "export_onnx", broken)
    run = classification_run(tmp_path, tiny_bert)
    engine = Engine(run, device="cpu", backend="auto")
    assert engine.backend == "torch" and engine.export is None
    assert "exporter cannot trace this model" in engine.backend_note
    assert engine.predict(TEXTS, 32) == Engine(run, device="cpu").predict(TEXTS, 32)
    # asked for by name, the same failure stops the server, with the reason and the way out
    with pytest.raises(TunewiseError, match=r"cannot trace this model.*--backend torch"):
        Engine(run, device="cpu", backend="onnx")
