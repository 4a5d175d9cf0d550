"""Several model workers: batches run side by side, a `call` (model swap, stream) still runs
alone, the server answers as the Predictor does, and generation keeps to one worker."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

from serve_helpers import LiveServer, chat_run, classification_run
from tunewise import api
from tunewise.errors import TunewiseError
from tunewise.serving.batcher import MicroBatcher
from tunewise.serving.settings import ServeSettings


def test_two_workers_run_batches_side_by_side():
    both = threading.Barrier(2, timeout=5)  # passes only if two batches are running at once

    def run(key, items):
        both.wait()
        return items

    batcher = MicroBatcher(run, max_batch=1, max_wait_s=0, workers=2)
    futures = [batcher.submit("k", [i]) for i in range(4)]
    assert [f.result(10) for f in futures] == [[0], [1], [2], [3]]
    batcher.close(5)
    alone = MicroBatcher(run, max_batch=1, max_wait_s=0, workers=1)
    assert isinstance(alone.submit("k", [0]).exception(10), threading.BrokenBarrierError)
    alone.close(5)


def test_a_call_waits_for_running_batches_and_runs_alone():
    lock = threading.Lock()
    running, seen, order = [0], [], []

    def run(key, items):
        with lock:
            running[0] += 1
        time.sleep(0.05)
        with lock:
            running[0] -= 1
            order.append(items[0])
        return items

    def swap():
        seen.append(running[0])  # batches running beside the call
        time.sleep(0.1)
        seen.append(running[0])
        order.append("swap")
        return "swapped"

    batcher = MicroBatcher(run, max_batch=1, max_wait_s=0, workers=3)
    before = [batcher.submit("k", [i]) for i in range(3)]
    call = batcher.call(swap)
    after = [batcher.submit("k", [i]) for i in range(3, 6)]
    assert call.result(10) == "swapped" and [f.result(10) for f in before + after]
    assert seen == [0, 0]  # nothing ran beside it
    assert set(order[:3]) == {0, 1, 2} and order[3] == "swap"  # in queue order
    assert set(order[4:]) == {3, 4, 5}
    batcher.close(5)


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_server_with_two_workers_answers_as_the_predictor(tiny_bert, tmp_path, two_threads):
    run = classification_run(tmp_path, tiny_bert)
    app = api.create_app(run, ServeSettings(max_wait_ms=1, max_batch=4))
    st = app.state.tw
    assert st.workers == 2 and torch.get_num_threads() == 1  # auto: the 2 cores shared out
    live = LiveServer(app)
    texts = [f"film number {i} was {'good' if i % 2 else 'awful and bad'}" for i in range(48)]
    expected = api.load(run).predict(texts)
    try:
        with httpx.Client(base_url=live.url, timeout=30) as c:

            def ask(i: int) -> dict:
                return c.post("/v1/predict", json={"inputs": [texts[i]]}).json()["predictions"][0]

            with ThreadPoolExecutor(12) as pool:
                got = list(pool.map(ask, range(len(texts))))
    finally:
        live.stop()
    assert [g["label"] for g in got] == [e["label"] for e in expected]
    for g, e in zip(got, expected, strict=True):
        assert g["score"] == pytest.approx(e["score"], abs=1e-5)


def test_generation_keeps_to_one_worker(tmp_path, two_threads):
    run = chat_run(tmp_path)
    assert api.create_app(run, ServeSettings()).state.tw.workers == 1  # auto: one
    with pytest.raises(TunewiseError, match="--workers 1"):
        api.create_app(run, ServeSettings(workers=2))
    from typer.testing import CliRunner

    from tunewise.cli import app

    result = CliRunner().invoke(app, ["serve", str(run), "--workers", "0"])
    assert result.exit_code == 2 and "--workers must be at least 1" in result.output


def test_two_workers_reload_under_load_and_onnx(tiny_bert, tmp_path, two_threads):
    """A reload with two workers busy loses no request; the onnx backend shares the cores too."""
    a = classification_run(tmp_path, tiny_bert, "a")
    b = classification_run(tmp_path, tiny_bert, "b", seed=1)
    live = LiveServer(api.create_app(a, ServeSettings(max_wait_ms=1, workers=2)))
    statuses: list[int] = []
    served: set[str] = set()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=live.url, timeout=30) as own:
            while not stop.is_set():
                r = own.post("/v1/predict", json={"inputs": ["good film", "bad film"]})
                statuses.append(r.status_code)
                served.add(r.json().get("model"))

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        r = httpx.post(f"{live.url}/admin/reload", json={"run": str(b)}, timeout=60)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
        live.stop()
    assert r.status_code == 200 and statuses and set(statuses) == {200}
    assert served == {"a", "b"}

    torch.set_num_threads(2)
    app = api.create_app(a, ServeSettings(backend="onnx", workers=2))
    engine = app.state.tw.engine
    assert app.state.tw.workers == 2 and engine.predictor.model.session  # rebuilt, 1 thread
    assert engine.predictor.model.session.get_session_options().intra_op_num_threads == 1
    texts = ["good film", "an awful, boring plot", "fine"]
    want = api.load(a).predict(texts)
    got = engine.predict(texts, 32)
    assert [g["label"] for g in got] == [w["label"] for w in want]
    for g, w in zip(got, want, strict=True):
        assert g["score"] == pytest.approx(w["score"], abs=1e-4)
    app.state.tw.close(5)
