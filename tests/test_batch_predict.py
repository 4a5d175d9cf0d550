"""`tunewise predict --input/--output` streams a file: outputs in input order with their line
numbers, bad records to a rejects file, and `--resume` after a real kill continues with no
duplicates and no gaps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tunewise
from conftest import sentiment_records, toy_config, write_jsonl
from tunewise.serving.batch_predict import predict_file
from tunewise.serving.stream_io import last_done_line


@pytest.fixture(scope="module")
def run(tiny_bert, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bp")
    data = {
        "train": write_jsonl(root / "train.jsonl", sentiment_records(32, seed=1)),
        "validation": write_jsonl(root / "dev.jsonl", sentiment_records(8, seed=2)),
    }
    cfg = toy_config(tiny_bert, data, root / "run", "full", training={"epochs": 1})
    return tunewise.finetune(cfg).run_dir


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_outputs_keep_input_order_and_bad_records_go_to_rejects(run, tmp_path):
    texts = [r["text"] for r in sentiment_records(10, seed=5)]
    raw = [json.dumps({"text": t, "id": i}) for i, t in enumerate(texts)]
    raw.insert(2, "{not json")
    raw.insert(5, json.dumps({"txt": "no text field"}))
    raw.insert(7, "")  # blank lines are skipped, not rejected
    raw.insert(8, json.dumps({"text": ["a", "list"]}))
    raw.insert(11, json.dumps(["an", "array"]))
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(raw) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    predictor = tunewise.load(run)
    report = predict_file(predictor, source, out, window=3, batch_size=2, progress=False)
    assert report["written"] == 10 and report["rejected"] == 4
    rows = _lines(out)
    good_lines = [i + 1 for i, r in enumerate(raw) if r.startswith('{"text": "')]
    assert [r["line"] for r in rows] == good_lines
    alone = [predictor.predict([t])[0] for t in texts]
    assert [r["label"] for r in rows] == [a["label"] for a in alone]
    assert [r["score"] for r in rows] == pytest.approx([a["score"] for a in alone], abs=1e-5)
    rejects = _lines(Path(report["rejects"]))
    assert [r["line"] for r in rejects] == [3, 6, 9, 12]
    assert "not valid JSON" in rejects[0]["reason"]
    assert "missing field 'text'" in rejects[1]["reason"]
    assert "must be a string" in rejects[2]["reason"]
    assert "JSON object" in rejects[3]["reason"]


def test_csv_rows_are_numbered_by_file_line(run, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text('id,text\n1,good film\n2,""\n3,"awful, boring plot"\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    report = predict_file(tunewise.load(run), source, out, progress=False)
    assert [r["line"] for r in _lines(out)] == [2, 4]
    assert [r["line"] for r in _lines(Path(report["rejects"]))] == [3]


def test_resume_after_a_kill_has_no_duplicates_or_gaps(run, tmp_path):
    texts = [r["text"] for r in sentiment_records(600, seed=7)]
    records = [{"text": t} for t in texts]
    records[100] = {"text": ""}  # one reject, so both files take part in resuming
    source = write_jsonl(tmp_path / "big.jsonl", records)
    out = tmp_path / "preds.jsonl"
    args = [sys.executable, "-m", "tunewise.cli", "predict", str(run), "--input", str(source)]
    args += ["--output", str(out), "--window", "40", "--batch-size", "8"]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600  # start-up alone can take minutes on a busy machine
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_file() and out.stat().st_size > 6_000:  # some 60 lines in
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"finished before the kill: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert out.is_file(), "no output within the deadline"
    done = _lines_tolerant(out)
    assert 0 < len(done) < 599
    with out.open("a", encoding="utf-8") as fh:
        fh.write('{"label": "pos", "sco')  # a torn last line, as a kill mid-write leaves
    resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed after input line" in resumed.stdout
    rows = _lines(out)
    assert [r["line"] for r in rows] == [n for n in range(1, 601) if n != 101]
    assert [r["line"] for r in _lines(tmp_path / "preds.jsonl.rejects.jsonl")] == [101]
    predictor = tunewise.load(run)
    sample = [0, len(done) - 1, len(done), 598]
    want = predictor.predict([texts[rows[i]["line"] - 1] for i in sample])
    assert [rows[i]["label"] for i in sample] == [w["label"] for w in want]


def _lines_tolerant(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return text.split("\n")[:-1]  # the part after the last newline may be torn


def test_last_done_line_cuts_a_torn_tail(tmp_path):
    path = tmp_path / "o.jsonl"
    path.write_text('{"line": 3}\n{"line": 7}\n{"line": 9, "lab', encoding="utf-8")
    assert last_done_line(path) == 7
    assert path.read_text(encoding="utf-8") == '{"line": 3}\n{"line": 7}\n'
    path.write_text("", encoding="utf-8")
    assert last_done_line(path) is None


def test_resume_refuses_a_file_it_did_not_write(run, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": "good"}])
    out = tmp_path / "out.jsonl"
    out.write_text('{"label": "pos"}\n', encoding="utf-8")
    with pytest.raises(tunewise.errors.DataError, match="no input line number"):
        predict_file(tunewise.load(run), source, out, resume=True, progress=False)


def test_cli_without_output_streams_to_stdout(run, tmp_path):
    from typer.testing import CliRunner

    from tunewise.cli import app

    source = write_jsonl(tmp_path / "in.jsonl", [{"text": "good film"}, {"x": 1}, {"text": "bad"}])
    result = CliRunner().invoke(app, ["predict", str(run), "--input", str(source)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert [r["line"] for r in rows if "label" in r] == [1, 3]
