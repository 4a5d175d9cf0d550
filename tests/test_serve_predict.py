"""`tunewise serve` on a tiny classification run, over real HTTP against uvicorn on a loopback
port: /v1/predict matches the Predictor, auth, input validation, micro-batching in /metrics, the
request log and feedback, hot reload under load, the registry watch, graceful shutdown."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from serve_helpers import LiveServer, classification_run, metric
from tunewise import api
from tunewise.serving.settings import ServeSettings

KEY = "sekret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def runs(tiny_bert, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("registry")
    return {
        "a": classification_run(root, tiny_bert, "a"),
        "b": classification_run(root, tiny_bert, "b", seed=1),
        "root": root,
    }


@pytest.fixture(scope="module")
def server(runs, tmp_path_factory):
    settings = ServeSettings(
        api_key=KEY,
        log_requests=tmp_path_factory.mktemp("logs"),
        max_wait_ms=100,
        max_items=8,
        max_input_chars=200,
        max_body_bytes=20_000,
    )
    live = LiveServer(api.create_app(runs["a"], settings))
    live.client = httpx.Client(base_url=live.url, headers=AUTH, timeout=30)
    live.settings = settings
    yield live
    live.stop()


def test_predictions_are_the_predictors_and_metadata_comes_from_the_manifest(server, runs):
    c = server.client
    health = httpx.get(f"{server.url}/health")  # no key needed
    assert health.status_code == 200 and health.json()["task"] == "classification"
    model = c.get("/v1/models").json()["data"][0]
    assert model["id"] == "a" and model["labels"] == ["neg", "pos"] and model["strategy"] == "lora"
    inputs = ["good film", {"text": "awful boring plot"}, "the movie was fine"]
    body = c.post("/v1/predict", json={"inputs": inputs}).json()
    assert body["predictions"] == api.load(runs["a"]).predict(inputs)
    assert len(body["ids"]) == 3 and len(set(body["ids"])) == 3


def test_every_route_but_health_needs_the_key(server, runs, monkeypatch):
    for method, path in [
        ("get", "/v1/models"),
        ("get", "/metrics"),
        ("post", "/v1/predict"),
        ("post", "/v1/feedback"),
        ("post", "/admin/reload"),
        ("post", "/v1/chat/completions"),
    ]:
        r = httpx.request(method, f"{server.url}{path}", json={})
        assert r.status_code == 401, path
        assert r.json()["error"]["type"] == "authentication_error"
        assert r.headers["www-authenticate"] == "Bearer"
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.request(method, f"{server.url}{path}", headers=wrong).status_code == 401
    assert httpx.get(f"{server.url}/health").status_code == 200
    # the key may come from TUNEWISE_API_KEY instead of --api-key
    monkeypatch.setenv("TUNEWISE_API_KEY", "from-env")
    assert ServeSettings().resolve().api_key == "from-env"
    assert ServeSettings(api_key="flag").resolve().api_key == "flag"


BAD = [
    ({}, 422, "inputs: Field required", "inputs"),
    ({"inputs": []}, 422, "inputs is empty", "inputs"),
    ({"inputs": "good"}, 422, "inputs must be a list", "inputs"),
    ({"inputs": [3]}, 422, "inputs[0] must be a text or a record", "inputs[0]"),
    ({"inputs": ["good", "  "]}, 422, "inputs[1] is empty", "inputs[1]"),
    ({"inputs": [{"txt": "good"}]}, 422, "inputs[0].text must be non-empty text", "inputs[0]"),
    ({"inputs": ["good"] * 9}, 422, "9 items; at most 8", "inputs"),
    ({"inputs": ["a" * 201]}, 422, "201 characters long; at most 200", "inputs[0]"),
    ({"inputs": [{"text": "good", "text_pair": "x"}, "bad"]}, 422, "text_pair", "inputs"),
    ({"inputs": ["good"], "extra": 1}, 422, "extra: Extra inputs are not permitted", "extra"),
]


@pytest.mark.parametrize(("body", "status", "message", "param"), BAD)
def test_bad_input_gets_a_4xx_naming_the_field(server, body, status, message, param):
    r = server.client.post("/v1/predict", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert message in error["message"] and error["param"] == param


def test_malformed_and_oversized_bodies(server):
    c = server.client
    r = c.post("/v1/predict", content=b'{"inputs": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = c.post("/v1/predict", json={"inputs": ["x" * 150] * 200})  # > 20 kB
    assert r.status_code == 413 and "larger than 20000 bytes" in r.json()["error"]["message"]

    def chunks():  # no content-length: the limit is counted as the body arrives
        for _ in range(30):
            yield b"x" * 1000

    assert c.post("/v1/predict", content=chunks()).status_code == 413
    assert c.get("/health").status_code == 200  # still serving


def test_concurrent_requests_are_batched(server, runs):
    c = server.client
    before = c.get("/metrics").text
    texts = [f"{w} film" for w in ("good", "bad", "great", "awful", "fine", "dull")] * 2
    with ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(lambda t: c.post("/v1/predict", json={"inputs": [t]}), texts))
    after = c.get("/metrics").text
    assert all(a.status_code == 200 for a in answers)
    expected = api.load(runs["a"]).predict(texts)
    for answer, want in zip(answers, expected, strict=True):
        got = answer.json()["predictions"][0]
        assert got["label"] == want["label"] and got["score"] == pytest.approx(want["score"], 1e-4)
    passes, inputs = (
        metric(after, f"tunewise_batch_size_{k}") - metric(before, f"tunewise_batch_size_{k}")
        for k in ("count", "sum")
    )
    assert inputs == len(texts) and passes < len(texts)  # grouped into fewer forward passes
    assert metric(after, "tunewise_requests_total", route="/v1/predict", status="200") >= 12
    assert metric(after, "tunewise_errors_total", route="/v1/predict", status="422") >= 0
    assert "tunewise_request_latency_seconds_bucket" in after


def test_feedback_round_trip(server):
    c, logs = server.client, server.settings.log_requests
    body = c.post("/v1/predict", json={"inputs": ["lovely story", {"text": "sad plot"}]}).json()
    ids = body["ids"]
    files = sorted(logs.glob("requests-*.jsonl"))
    lines = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    logged = {x["id"]: x for x in lines}
    first = logged[ids[0]]
    assert first["input"] == {"text": "lovely story"} and first["route"] == "/v1/predict"
    assert first["prediction"] == body["predictions"][0] and first["task"] == "classification"
    assert first["score"] == body["predictions"][0]["score"] and first["latency_ms"] > 0
    assert first["run"].endswith("a") and first["time"].endswith("Z")
    assert logged[ids[1]]["input"] == {"text": "sad plot"}
    assert c.post("/v1/feedback", json={"id": ids[0], "label": "neg"}).status_code == 200
    assert c.post("/v1/feedback", json={"id": ids[1], "answer": "pos"}).status_code == 200
    stored = [json.loads(x) for x in (logs / "feedback.jsonl").read_text().splitlines()]
    assert [(x["id"], x["label"]) for x in stored[-2:]] == [(ids[0], "neg"), (ids[1], "pos")]
    r = c.post("/v1/feedback", json={"id": "0" * 32, "label": "neg"})
    assert r.status_code == 404 and r.json()["error"]["param"] == "id"
    r = c.post("/v1/feedback", json={"id": ids[0]})
    assert r.status_code == 422 and r.json()["error"]["param"] == "label"
    r = c.post("/v1/feedback", json={"label": "neg"})
    assert r.status_code == 422 and r.json()["error"]["param"] == "id"


def test_reload_under_load_loses_no_request(server, runs):
    c = server.client
    statuses: list[int] = []
    served: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as own:
            while not stop.is_set():
                r = own.post("/v1/predict", json={"inputs": ["good film", "bad film"]})
                statuses.append(r.status_code)
                served.append(r.json().get("model"))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    r = c.post("/admin/reload", json={"run": str(runs["b"])})
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert r.status_code == 200 and r.json()["previous"] == str(runs["a"])
    assert c.get("/health").json()["run"] == str(runs["b"])
    assert statuses and set(statuses) == {200}  # none dropped, none failed
    assert {"a", "b"} <= set(served)
    r = c.post("/admin/reload", json={"run": str(runs["root"] / "missing")})
    assert r.status_code == 422 and r.json()["error"]["param"] == "run"
    assert c.post("/admin/reload").json()["run"] == str(runs["b"])  # no body: the served run
    c.post("/admin/reload", json={"run": str(runs["a"])})


def test_watch_follows_the_registry(runs, tmp_path):
    registry = runs["root"]
    settings = ServeSettings(watch=registry, watch_interval_s=0.1)
    live = LiveServer(api.create_app(runs["a"], settings))

    def serving(run: Path) -> bool:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if httpx.get(f"{live.url}/health").json()["run"] == str(run):
                return True
            time.sleep(0.1)
        return False

    try:  # the pointer file, relative to the registry
        (registry / "promoted.json").write_text(json.dumps({"run": "b"}))
        assert serving(registry / "b")
        manifest = runs["a"] / "tunewise.json"  # a manifest newly marked promoted
        data = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**data, "promoted": True}))
        assert serving(runs["a"])
        r = httpx.post(f"{live.url}/v1/feedback", json={"id": "x", "label": 1})
        assert r.status_code == 409 and "--log-requests" in r.json()["error"]["message"]
    finally:
        live.stop()
        (registry / "promoted.json").unlink()


def test_shutdown_lets_in_flight_requests_finish(runs):
    live = LiveServer(api.create_app(runs["a"], ServeSettings(max_wait_ms=1500)))
    result: dict[str, httpx.Response] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "r", httpx.post(f"{live.url}/v1/predict", json={"inputs": ["good"]}, timeout=30)
        )
    )
    thread.start()
    time.sleep(0.4)  # the request now waits in the batcher
    live.stop()
    thread.join()
    assert result["r"].status_code == 200 and result["r"].json()["predictions"][0]["label"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{live.url}/health")


def test_cli_serves_until_sigterm_and_in_flight_requests_finish(runs):
    import os
    import signal
    import subprocess
    import sys

    from serve_helpers import free_port

    port = free_port()
    env = {**os.environ, "TUNEWISE_API_KEY": KEY}  # the key from the environment
    args = ["serve", str(runs["a"]), "--port", str(port), "--max-wait-ms", "1500"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunewise.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, up = time.monotonic() + 300, False  # generous: the suite shares the CPUs
        while not up and time.monotonic() < deadline and proc.poll() is None:
            try:
                up = httpx.get(f"{url}/health").status_code == 200
            except httpx.TransportError:
                time.sleep(0.2)
        assert up, f"tunewise serve did not come up (exit status {proc.poll()})"
        assert httpx.get(f"{url}/v1/models").status_code == 401
        assert httpx.get(f"{url}/v1/models", headers=AUTH).json()["data"][0]["id"] == "a"
        result: dict[str, httpx.Response] = {}
        body = {"inputs": ["good film"]}
        thread = threading.Thread(
            target=lambda: result.setdefault(
                "r", httpx.post(f"{url}/v1/predict", json=body, headers=AUTH, timeout=60)
            )
        )
        thread.start()
        time.sleep(0.5)  # in the batcher's 1.5 s window
        proc.send_signal(signal.SIGTERM)
        thread.join(60)
        assert result["r"].status_code == 200
        # uvicorn re-raises SIGTERM once shut down, so the exit status says what stopped it
        assert proc.wait(60) in (0, -signal.SIGTERM)
        assert "Finished server process" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_refuses_a_bad_run_or_setting(tmp_path):
    from typer.testing import CliRunner

    from tunewise.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "not a tunewise run directory" in result.output
    result = CliRunner().invoke(app, ["serve", str(tmp_path), "--max-batch", "0"])
    assert result.exit_code == 2 and "--max-batch must be at least 1" in result.output
