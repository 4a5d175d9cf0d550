"""The workbench's callbacks against the real API on tiny models (no browser): data inspection
and preparation, the advisor, the Train form's validation and YAML, the job queue, progress
and reports, the Compare table and the Try tab's predictions and streamed chat."""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

import gradio as gr
import pytest

from conftest import toy_config, write_jsonl
from tunewise import api
from tunewise.errors import ConfigError, DataError
from tunewise.ui import compare_tab, data_tab, form, train_tab, try_tab
from tunewise.ui.advice_tab import ranking
from tunewise.ui.context import UIContext
from tunewise.ui.runs import Job
from tunewise.ui.watch import progress_view, report_view


@pytest.fixture
def ctx(tmp_path):
    context = UIContext.create(tmp_path / "ws")
    yield context
    context.queue.shutdown()


@pytest.fixture(scope="module")
def finished_run(tiny_bert, tmp_path_factory):
    """One tiny LoRA classification run made by the API (as the CLI would), in a workspace."""
    from conftest import sentiment_records

    ws = tmp_path_factory.mktemp("ws")
    data = {
        "train": write_jsonl(ws / "train.jsonl", sentiment_records(48, seed=1)),
        "validation": write_jsonl(ws / "dev.jsonl", sentiment_records(16, seed=2)),
    }
    api.finetune(toy_config(tiny_bert, data, ws / "runs" / "cli-run"))
    return ws, ws / "runs" / "cli-run"


def test_progress_file_records_steps_loss_and_evaluations(finished_run):
    _, run = finished_run
    progress = json.loads((run / "progress.json").read_text())
    assert progress["step"] == progress["max_steps"] > 0
    assert progress["status"] == "evaluating"  # training ended; tunewise.json marks "done"
    assert [p["step"] for p in progress["loss"]] == sorted(p["step"] for p in progress["loss"])
    assert len(progress["eval"]) == 2 and "accuracy" in progress["eval"][-1]  # one per epoch
    assert progress["eta_s"] == 0 and progress["peak_rss_mb"] > 0
    status, loss, evals = progress_view(run)
    assert status.startswith("**finished**") and "step 12/12" in status
    assert len(loss) == len(progress["loss"]) and "accuracy" in evals.columns


def test_report_view_shows_metrics_confusion_matrix_and_per_class(finished_run):
    _, run = finished_run
    markdown, cm, per_class, curve = report_view(run)
    assert "| validation | accuracy |" in markdown and "strategy `lora`" in markdown
    assert cm and Path(cm).name == "confusion_matrix.png" and Path(curve).is_file()
    assert sorted(per_class["class"]) == ["neg", "pos"] and "f1-score" in per_class.columns


def test_compare_table_lists_cli_runs_and_filters_and_sorts(finished_run):
    ws, run = finished_run
    ctx = UIContext(ws, queue=None)  # type: ignore[arg-type]  # the table needs no queue
    table = compare_tab.runs_table(ctx)
    row = table.iloc[0]
    manifest = json.loads((run / "tunewise.json").read_text())
    assert row["run"] == "runs/cli-run" and row["strategy"] == "lora"
    assert row["accuracy"] == round(manifest["metrics"]["validation"]["accuracy"], 4)
    assert row["trainable_%"] == round(manifest["strategy"]["parameters"]["percent"], 4)
    assert row["artifact_kb"] > 0 and row["data"] == "train.jsonl" and row["peak_rss_mb"] > 0
    assert compare_tab.runs_table(ctx, query="no-such-thing").empty
    assert len(compare_tab.runs_table(ctx, task="classification", sort="accuracy")) == 1


def test_try_tab_classification_gives_label_scores(finished_run):
    ws, run = finished_run
    ctx = UIContext(ws, queue=None)  # type: ignore[arg-type]
    assert try_tab.run_choices(ctx) == ["runs/cli-run"]
    message, text_group, *_ = try_tab.load_run(ctx, "runs/cli-run")
    assert message == "loaded runs/cli-run (classification)" and text_group["visible"] is True
    scores, entities, raw = try_tab.predict_text(ctx, "runs/cli-run", "great good film")
    expected = api.predict(run, ["great good film"])[0]
    assert set(scores) == {"pos", "neg"} and entities is None
    assert max(scores, key=scores.get) == expected["label"]
    assert json.loads(raw)["label"] == expected["label"]


def test_try_tab_export_writes_an_onnx_directory_in_the_workspace(finished_run):
    ws, _ = finished_run
    ctx = UIContext(ws, queue=None)  # type: ignore[arg-type]
    message = try_tab.export(ctx, "runs/cli-run", "onnx", "exports/x")
    assert message.startswith("exported runs/cli-run as onnx") and "parity" in message
    report = json.loads((ws / "exports" / "x" / "export.json").read_text())
    assert report["max_abs_diff"] < 1e-4
    # a second export into the same (now non-empty) directory is refused with the CLI's words
    assert "not empty" in try_tab.export(ctx, "runs/cli-run", "onnx", "exports/x")


def test_highlight_cuts_text_at_entity_offsets():
    text = "Ada Lovelace lives in London"
    spans = [{"start": 22, "end": 28, "type": "LOC"}, {"start": 0, "end": 12, "type": "PER"}]
    assert try_tab.highlight(text, spans, "type") == [
        ("Ada Lovelace", "PER"),
        (" lives in ", None),
        ("London", "LOC"),
    ]


def test_chat_streams_growing_text_from_a_generation_model(tmp_path):
    from generation_fixtures import build_llama
    from tunewise.serving.predictor import Predictor

    model = build_llama(tmp_path / "llama", init_std=0.5)
    predictor = Predictor.from_base(str(model), "instruction", ["task.max_new_tokens=8"])
    chunks = list(api.stream(predictor, "the opposite of good"))
    assert len(chunks) > 1 and all(b.startswith(a) for a, b in itertools.pairwise(chunks))
    assert chunks[-1] == predictor.predict(["the opposite of good"])[0]["generated_text"]


def test_data_inspect_shows_stats_histogram_and_problems(ctx):
    bad = ctx.workspace / "bad.jsonl"
    bad.write_text('{"text": "good film", "label": "pos"}\n{"text": "", "label": "neg"}\n')
    _message, source, preview, problems, stats, histogram, n = data_tab.inspect(
        ctx, None, "bad.jsonl", "classification"
    )
    assert source == str(bad) and n == 1 and list(preview["line"]) == [1, 2]
    assert problems.iloc[0][["file", "line", "field"]].tolist() == ["bad.jsonl", 2, "text"]
    assert "1 invalid" in stats and histogram["records"].sum() == 1


def test_data_inspect_unknown_file_shows_the_cli_error(ctx):
    message, *_ = data_tab.inspect(ctx, None, "missing.jsonl", "classification")
    with pytest.raises(DataError) as err:
        api.data_stats(ctx.workspace / "missing.jsonl")
    assert message == f"error: {err.value}"


def test_prepare_writes_only_into_the_output_dir(ctx, toy_data):
    source = toy_data["train"]
    before = {p for p in ctx.workspace.rglob("*")}
    message, report, removed, rejected, png = data_tab.run_prepare(
        ctx, str(source), "classification", "prepared", [], "exact", 0.8, "0.8,0.2", "skip", 1
    )
    assert message.startswith("64 records in") and "## Steps" in report
    assert Path(png).is_file() and "![" not in report and removed.empty and rejected.empty
    new = {p for p in ctx.workspace.rglob("*")} - before
    assert new and all(ctx.workspace / "prepared" in [p, *p.parents] for p in new)
    assert data_tab.prepared_train("prepared", ctx)[0].endswith("prepared/train.jsonl")


def test_advice_ranking_and_choice():
    message, table, choice = ranking(
        "classification", "minilm", 320, None, 4.0, None, "cpu", 128, 1.0
    )
    expected = api.recommend("classification", "minilm", train_size=320, memory_gb=4.0)
    assert list(table["strategy"]) == [r["strategy"] for r in expected]
    assert choice["value"] == expected[0]["strategy"] and "Best for classification" in message
    message, table, _ = ranking("no_task", "minilm", 320, None, None, None, "cpu", 128, 1)
    assert message.startswith("error: Unknown task 'no_task'") and table.empty


def _values(**kw):
    return tuple({**form.DEFAULTS, **kw}[k] for k in form.FIELDS)


def test_form_yaml_round_trip_and_cli_validation(ctx, tiny_bert, toy_data):
    values = _values(
        model_name=str(tiny_bert),
        train_path=str(toy_data["train"]),
        strategy_options="r: 4",
        epochs=1.0,
    )
    message, text, download = train_tab.validate(ctx, *values)
    assert message == "valid config" and "r: 4" in text and Path(download["value"]).is_file()
    assert api.check_config(str(download["value"])).strategy.r == 4  # the CLI reads it back
    loaded = train_tab.load_yaml(ctx, download["value"], None)
    assert loaded[0].startswith("loaded") and tuple(loaded[1:]) == values

    impossible = _values(
        train_path="t.jsonl", task_type="continued_pretraining", strategy_name="frozen"
    )
    message, text, _ = train_tab.validate(ctx, *impossible)
    with pytest.raises(ConfigError) as err:
        api.check_config(
            form.form_to_raw(dict(zip(form.FIELDS, impossible, strict=False)), ctx.workspace)
        )
    assert message == f"error: {err.value}" and "cannot train task" in message and not text

    message, *rest = train_tab.load_yaml(ctx, None, "model: {name: [unclosed\n")
    assert message.startswith("error: Config file") and "is not valid YAML" in message
    assert rest == [gr.skip()] * len(form.FIELDS)  # the form keeps its values
    message, *_ = train_tab.validate(ctx, *_values(train_path="t.jsonl", strategy_options="r: 4:"))
    assert message.startswith("error: Strategy options is not valid YAML")


def _sleeper(ctx: UIContext, name: str, seconds: float) -> Job:
    log = ctx.workspace / f"{name}.log"
    cmd = [sys.executable, "-c", f"import time; print('hi'); time.sleep({seconds})"]
    return ctx.queue._add(Job(name, "train", ctx.workspace / name, cmd, log))


def _wait(predicate, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_queue_runs_one_at_a_time_and_stops(ctx):
    first, second, third = (_sleeper(ctx, n, 30) for n in ("a", "b", "c"))
    assert [first.status, second.status, third.status] == ["running", "queued", "queued"]
    ctx.queue.stop("c")
    assert third.status == "stopped" and third.proc is None  # cancelled before it started
    ctx.queue.stop("a")
    assert _wait(lambda: first.proc.poll() is not None and second.status == "running")
    assert first.status == "stopped" and first.returncode != 0
    ctx.queue.stop("b")
    assert _wait(lambda: second.proc.poll() is not None)
    assert [r["status"] for r in ctx.queue.rows()] == ["stopped", "stopped", "stopped"]


def test_failed_train_job_shows_the_cli_error(ctx, toy_data):
    raw = {
        "model": {"name": "minilm"},
        "data": {"train": str(toy_data["train"])},
        "training": {"epochs": 1},
        "output_dir": str(ctx.workspace / "runs" / "x"),
    }
    (ctx.workspace / "runs" / "x").mkdir(parents=True)
    (ctx.workspace / "runs" / "x" / "keep.txt").write_text("a user's file")
    job = ctx.queue.submit_train(raw)
    assert _wait(lambda: job.status == "failed", timeout=60)
    assert job.error.startswith("error: Output directory") and "not empty" in job.error
    assert (ctx.workspace / "runs" / "x" / "keep.txt").read_text() == "a user's file"


def test_compare_reads_a_sweep_written_by_the_sweep_report(tmp_path):
    from tunewise.sweep import write_report

    out = tmp_path / "sweeps" / "s1"
    out.mkdir(parents=True)
    rows = [
        {
            "strategy": s,
            "status": "ok",
            "metrics": {"accuracy": acc},
            "trainable_params": n,
            "trainable_percent": pct,
            "wall_seconds": 3.0,
            "peak_rss_mb": 500.0,
            "artifact_bytes": 1024,
            "learning_rate": 1e-3,
        }
        for s, acc, n, pct in (("lora", 0.9, 700, 2.4), ("bitfit", 0.8, 90, 0.3))
    ] + [{"strategy": "qlora", "status": "failed", "error": "ConfigError: needs CUDA"}]
    raw = {
        "task": {"type": "classification"},
        "model": {"name": "m"},
        "data": {"train": "t.jsonl"},
        "training": {"epochs": 1},
    }
    write_report(rows, out, "accuracy", raw)
    ctx = UIContext(tmp_path, queue=None)  # type: ignore[arg-type]
    assert compare_tab.sweep_choices(ctx) == ["sweeps/s1"]
    table, plots = compare_tab.show_sweep(ctx, "sweeps/s1")
    assert list(table["strategy"]) == ["lora", "bitfit", "qlora"]
    assert list(table["accuracy"][:2]) == [0.9, 0.8] and table["error"][2].startswith("Config")
    assert len(plots) >= 2 and all(Path(p).suffix == ".png" for p in plots)
