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
