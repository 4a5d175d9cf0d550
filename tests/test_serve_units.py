"""Pieces of the server without HTTP: the micro-batcher, streamed text against stop sequences,
request-log rotation."""

from __future__ import annotations

import itertools
import json
import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from tunewise.serving.batcher import MicroBatcher
from tunewise.serving.request_log import RequestLog
from tunewise.serving.stop_text import StreamText, cut_at_stop


def test_batcher_groups_same_key_jobs_and_isolates_failures():
    calls: list[tuple[str, list]] = []
    gate = threading.Event()

    def run(key, items):
        gate.wait(5)
        calls.append((key, list(items)))
        if "bad" in items:
            raise ValueError("bad item")
        return [x.upper() for x in items]

    batcher = MicroBatcher(run, max_batch=4, max_wait_s=0.2)
    futures = [batcher.submit("k", [x]) for x in ("a", "b", "bad")]
    futures += [batcher.submit("other", ["c"]), batcher.submit("k", ["d", "e", "f", "g", "h"])]
    order = batcher.call(lambda: "ran after the jobs before it")
    gate.set()
    assert [f.result(5) for f in futures[:2]] == [["A"], ["B"]]
    assert isinstance(futures[2].exception(5), ValueError)  # only the bad job fails
    assert futures[3].result(5) == ["C"] and futures[4].result(5) == list("DEFGH")
    assert order.result(5) == "ran after the jobs before it"
    assert calls[0] == ("k", ["a", "b", "bad"])  # one pass for the three 'k' jobs, then retries
    assert ("other", ["c"]) in calls and ("k", list("defgh")) in calls  # > max_batch: alone
    batcher.close(5)


def test_batcher_waits_at_most_max_wait_and_drains_on_close():
    batcher = MicroBatcher(lambda k, items: items, max_batch=8, max_wait_s=0.05)
    start = time.monotonic()
    assert batcher.submit("k", [1]).result(5) == [1]
    assert time.monotonic() - start < 1.0
    slow = MicroBatcher(lambda k, items: (time.sleep(0.05), items)[1], max_batch=1, max_wait_s=0)
    pending = [slow.submit("k", [i]) for i in range(5)]
    slow.close(10)  # queued work is finished, not dropped
    assert [f.result(0) for f in pending] == [[i] for i in range(5)]


@settings(max_examples=200, deadline=None)
@given(
    raw=st.text(alphabet=" ab\nc", max_size=30),
    stops=st.lists(st.text(alphabet="abc\n", min_size=1, max_size=3), max_size=2),
    cuts=st.lists(st.integers(0, 30), max_size=6),
)
def test_streamed_text_equals_the_whole_text_cut_at_the_stop(raw, stops, cuts):
    """Whatever the chunking, the streamed pieces add up to what the non-streamed call returns
    (stripped, cut before the first stop sequence), and nothing sent is taken back."""
    stream = StreamText(tuple(stops))
    bounds = sorted({0, len(raw), *(c for c in cuts if c <= len(raw))})
    sent = "".join(stream.feed(raw[a:b]) for a, b in itertools.pairwise(bounds))
    sent += stream.finish()
    assert sent == cut_at_stop(raw.strip(), tuple(stops))[0] == stream.text


def test_request_log_rotates_and_remembers_ids(tmp_path):
    log = RequestLog(tmp_path, max_bytes=300)
    ids = [f"{i:032x}" for i in range(6)]
    for rid in ids:
        log.write(
            [rid],
            "/v1/predict",
            "runs/x",
            "classification",
            [{"text": "good film"}],
            [{"label": "pos", "score": 0.9}],
            1.5,
        )
        time.sleep(0.01)
    log.close()
    files = sorted(tmp_path.glob("requests-*.jsonl"))
    assert len(files) >= 2  # rotated past 300 bytes
    lines = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    assert [x["id"] for x in sorted(lines, key=lambda x: x["id"])] == ids
    assert set(lines[0]) == {
        "id",
        "time",
        "route",
        "run",
        "task",
        "input",
        "prediction",
        "score",
        "latency_ms",
    }
    assert lines[0]["score"] == 0.9
    again = RequestLog(tmp_path)  # a restarted server accepts feedback on earlier requests
    assert again.knows(ids[0]) and not again.knows("f" * 32)
