"""OpenAI-compatible completions from a tiny chat run over real HTTP (no API key: auth off):
non-streamed and streamed (SSE) give the same greedy text, stop sequences, usage, the official
`openai` client, validation, and chat requests in the request log with feedback."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from serve_helpers import LiveServer, chat_run
from tunewise import api
from tunewise.serving.settings import ServeSettings
from tunewise.serving.stop_text import cut_at_stop

ASK = [{"role": "user", "content": "the opposite of hot"}]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return chat_run(tmp_path_factory.mktemp("chat"))


@pytest.fixture(scope="module")
def server(run, tmp_path_factory):
    settings = ServeSettings(
        log_requests=tmp_path_factory.mktemp("logs"), max_tokens_limit=64, max_wait_ms=100
    )
    live = LiveServer(api.create_app(run, settings))
    live.client = httpx.Client(base_url=live.url, timeout=60)
    live.settings = settings
    yield live
    live.stop()


@pytest.fixture(scope="module")
def greedy(run) -> str:
    text = api.load(run).predict([{"messages": ASK}])[0]["generated_text"]
    assert len(text) >= 4  # the random model says something, so comparisons below mean something
    return text


def sse(response: httpx.Response) -> list[dict]:
    """The JSON events of a server-sent event stream, checking the framing and [DONE]."""
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [e for e in response.text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    return [json.loads(e.removeprefix("data: ")) for e in events[:-1]]


def test_auth_off_and_models(server):
    models = httpx.get(f"{server.url}/v1/models").json()["data"]
    assert models[0]["task"] == "chat" and models[0]["generative"] is True


def test_chat_completion_is_the_predictors_text_with_usage(server, greedy):
    body = server.client.post("/v1/chat/completions", json={"messages": ASK}).json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": greedy}
    usage = body["usage"]
    assert usage["prompt_tokens"] > 5 and 0 < usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert choice["finish_reason"] == ("length" if usage["completion_tokens"] == 12 else "stop")
    # max_tokens bounds the completion
    short = server.client.post("/v1/chat/completions", json={"messages": ASK, "max_tokens": 2})
    assert short.json()["usage"]["completion_tokens"] == 2
    assert short.json()["choices"][0]["finish_reason"] == "length"
    # the task endpoint gives the same text
    predicted = server.client.post("/v1/predict", json={"inputs": [{"messages": ASK}]}).json()
    assert predicted["predictions"] == [{"generated_text": greedy}]


@pytest.mark.parametrize("stop", [None, "mid"])
def test_streamed_chat_assembles_to_the_same_text(server, greedy, stop):
    body = {"messages": ASK, "stream": True, "stream_options": {"include_usage": True}}
    expected, reason = greedy, None
    if stop:
        body["stop"] = [greedy[2:4]]  # a stop sequence inside the greedy answer
        expected, _ = cut_at_stop(greedy, (greedy[2:4],))
        reason = "stop"
    events = sse(server.client.post("/v1/chat/completions", json=body))
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert text == expected
    plain = server.client.post("/v1/chat/completions", json={**body, "stream": False}).json()
    assert plain["choices"][0]["message"]["content"] == expected
    finals = [e["choices"][0]["finish_reason"] for e in events if e["choices"]]
    assert finals[-1] in ("stop", "length") and finals[-1] == (reason or finals[-1])
    assert events[-1]["choices"] == [] and events[-1]["usage"] == plain["usage"]


def concurrent_streams(server, body: dict, n: int = 3) -> tuple[list[list[dict]], str, str]:
    from concurrent.futures import ThreadPoolExecutor

    before = server.client.get("/metrics").text
    with ThreadPoolExecutor(n) as pool:
        answers = list(
            pool.map(lambda _: server.client.post("/v1/chat/completions", json=body), range(n))
        )
    return [sse(a) for a in answers], before, server.client.get("/metrics").text


def delta(before: str, after: str, name: str) -> float:
    from serve_helpers import metric

    return metric(after, name) - metric(before, name)


def test_concurrent_streams_join_the_continuous_batch_each_with_its_own_text(server, greedy):
    streams, before, after = concurrent_streams(server, {"messages": ASK, "stream": True})
    for events in streams:
        assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events) == greedy
    assert len({events[0]["id"] for events in streams}) == 3
    assert delta(before, after, "tunewise_continuous_requests_total") == 3
    assert delta(before, after, "tunewise_batch_requests_count") == 0  # no batched generate


def test_sampled_streams_join_the_sampling_continuous_batch(server):
    body = {"messages": ASK, "stream": True, "temperature": 0.7, "max_tokens": 4}
    streams, before, after = concurrent_streams(server, body)
    assert all(events[-1]["choices"][0]["finish_reason"] for events in streams)
    assert delta(before, after, "tunewise_continuous_requests_total") == 3
    assert delta(before, after, "tunewise_batch_requests_count") == 0  # no batched generate


def test_without_a_kv_cache_greedy_streams_share_a_batched_generate(run, greedy):
    live = LiveServer(api.create_app(run, ServeSettings(kv_cache_tokens=0, max_wait_ms=100)))
    live.client = httpx.Client(base_url=live.url, timeout=60)
    try:
        streams, before, after = concurrent_streams(live, {"messages": ASK, "stream": True})
        plain = live.client.post("/v1/chat/completions", json={"messages": ASK}).json()
    finally:
        live.stop()
    for events in streams:
        assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events) == greedy
    assert plain["choices"][0]["message"]["content"] == greedy
    passes = delta(before, after, "tunewise_batch_requests_count")
    assert delta(before, after, "tunewise_batch_requests_sum") == 3 and 1 <= passes < 3


def test_the_openai_client_works_unchanged(server, greedy):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    model = client.models.list().data[0].id
    done = client.chat.completions.create(model=model, messages=ASK, temperature=0)
    assert done.choices[0].message.content == greedy and done.usage.completion_tokens > 0
    stream = client.chat.completions.create(model=model, messages=ASK, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == greedy
    completion = client.completions.create(model=model, prompt="the opposite of hot")
    assert completion.choices[0].text == greedy  # a chat run: the prompt is one user turn
    sampled = client.chat.completions.create(
        model=model, messages=ASK, temperature=1.5, top_p=0.9, max_tokens=3
    )
    assert sampled.usage.completion_tokens <= 3


BAD = [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ({"messages": ASK, "max_tokens": 0}, "max_tokens"),
    ({"messages": ASK, "max_tokens": 65}, "max_tokens"),
    ({"messages": ASK, "temperature": 5}, "temperature"),
    ({"messages": ASK, "top_p": 0}, "top_p"),
    ({"messages": ASK, "n": 2}, "n"),
    ({"messages": ASK, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"messages": [{"role": "user", "content": "x" * 20_001}]}, "messages[0].content"),
    (
        {"messages": [{"role": "assistant", "content": "hi"}, {"role": "system", "content": "x"}]},
        "messages",
    ),
]


@pytest.mark.parametrize(("body", "param"), BAD)
def test_bad_completion_requests_get_422_naming_the_field(server, body, param):
    r = server.client.post("/v1/chat/completions", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == param


def test_bad_completions(server):
    c = server.client
    r = c.post("/v1/completions", json={"prompt": ["a", "b"], "stream": True})
    assert r.status_code == 422 and r.json()["error"]["param"] == "prompt"
    assert c.post("/v1/completions", json={"prompt": ""}).json()["error"]["param"] == "prompt[0]"
    assert c.post("/v1/completions", json={}).json()["error"]["param"] == "prompt"


def test_chat_requests_are_logged_and_take_feedback(server):
    body = server.client.post("/v1/chat/completions", json={"messages": ASK}).json()
    rid = body["id"].removeprefix("chatcmpl-")
    logs = server.settings.log_requests
    lines = [
        json.loads(x) for f in logs.glob("requests-*.jsonl") for x in f.read_text().split("\n") if x
    ]
    entry = next(x for x in lines if x["id"] == rid)
    assert entry["route"] == "/v1/chat/completions" and entry["task"] == "chat"
    assert entry["input"] == {"messages": ASK} and entry["score"] is None
    assert entry["prediction"] == {"generated_text": body["choices"][0]["message"]["content"]}
    r = server.client.post("/v1/feedback", json={"id": body["id"], "answer": "cold"})
    assert r.status_code == 200
    stored = json.loads((logs / "feedback.jsonl").read_text().splitlines()[-1])
    assert stored["id"] == rid and stored["label"] == "cold"


def test_reload_under_streams_finishes_them_and_stops_the_old_batcher(run, greedy):
    from concurrent.futures import ThreadPoolExecutor

    live = LiveServer(api.create_app(run, ServeSettings()))
    client = httpx.Client(base_url=live.url, timeout=60)
    body = {"messages": ASK, "stream": True}
    try:
        old = live.app.state.tw.engine.continuous
        with ThreadPoolExecutor(8) as pool:
            streams = [
                pool.submit(client.post, "/v1/chat/completions", json=body) for _ in range(12)
            ]
            assert client.post("/admin/reload").status_code == 200  # the same run again
            answers = [sse(s.result()) for s in streams]
        new = live.app.state.tw.engine.continuous
        after = client.post("/v1/chat/completions", json={"messages": ASK}).json()
    finally:
        live.stop()
    for events in answers:  # none lost, none cut short
        assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events) == greedy
    assert after["choices"][0]["message"]["content"] == greedy
    assert new is not old and new is not None
    old.manager._generation_thread and old.manager._generation_thread.join(10)
    assert not old.manager.is_running()  # retired once its streams were done
