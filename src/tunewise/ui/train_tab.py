"""Train tab: a form over the config (validated by the CLI's own code), its YAML (shown,
downloadable, loadable), a queue of `tunewise train` subprocesses, and each run's progress,
loss curve, evaluations and final report, polled from the run's files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from tunewise.ui import form
from tunewise.ui.context import UIContext, error_text
from tunewise.ui.watch import EVALS, PER_CLASS, progress_view, report_view
from tunewise.ui.workspace import UI_DIR, find_runs, label

JOB_COLUMNS = ["job", "kind", "run_dir", "status", "seconds", "error"]


def next_run_name(ctx: UIContext, prefix: str = "runs/run-") -> str:
    taken = {p.name for p in (ctx.workspace / "runs").glob("*")} if ctx.workspace else set()
    taken |= {j.run_dir.name for j in ctx.queue.jobs.values()}
    n = 1
    while f"run-{n}" in taken:
        n += 1
    return f"{prefix}{n}"


def _values(args: tuple) -> dict[str, Any]:
    return dict(zip(form.FIELDS, args, strict=True))


def _download(ctx: UIContext, raw: dict[str, Any], text: str) -> str:
    name = re.sub(r"[^\w.-]", "_", Path(raw["output_dir"]).name) or "config"
    path = ctx.workspace / UI_DIR / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def validate(ctx: UIContext, *args: Any) -> tuple[str, str, Any]:
    """(message, YAML, download file) for the form's config."""
    try:
        raw = form.form_to_raw(_values(args), ctx.workspace)
        text = form.check(raw)
    except Exception as exc:
        return error_text(exc), "", gr.update(value=None, interactive=False)
    return "valid config", text, gr.update(value=_download(ctx, raw, text), interactive=True)


def start(ctx: UIContext, *args: Any) -> tuple:
    """Validate, then queue the run; (message, YAML, download, jobs, run picker, next name)."""
    message, text, download = validate(ctx, *args)
    if not text:
        return message, text, download, jobs_frame(ctx), gr.skip(), gr.skip()
    raw = form.form_to_raw(_values(args), ctx.workspace)
    try:
        job = ctx.queue.submit_train(raw)
    except Exception as exc:
        return error_text(exc), text, download, jobs_frame(ctx), gr.skip(), gr.skip()
    run = label(job.run_dir, ctx.workspace)
    return (
        f"queued job {job.id}: {run} ({job.status})",
        text,
        download,
        jobs_frame(ctx),
        gr.update(choices=run_choices(ctx), value=run),
        next_run_name(ctx),
    )


def load_yaml(ctx: UIContext, upload: str | None, pasted: str | None) -> list[Any]:
    """Fill the form from a YAML file or pasted YAML, after the CLI's validation; on an error
    the form is left as it was and the message is the CLI's."""
    keep = [gr.skip()] * len(form.FIELDS)
    try:
        if upload:
            path = Path(upload)
        elif pasted and pasted.strip():
            path = ctx.workspace / UI_DIR / "configs" / "pasted.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(pasted, encoding="utf-8")
        else:
            return ["Upload a YAML file or paste one.", *keep]
        raw = form.load_yaml_file(path)
        values = form.raw_to_form(raw, ctx.workspace)
    except Exception as exc:
        return [error_text(exc), *keep]
    return [f"loaded {path.name} into the form", *[values[k] for k in form.FIELDS]]


def jobs_frame(ctx: UIContext) -> pd.DataFrame:
    rows = ctx.queue.rows()
    for r in rows:
        r["run_dir"] = label(Path(r["run_dir"]), ctx.workspace)
    return pd.DataFrame(rows, columns=JOB_COLUMNS)


def run_choices(ctx: UIContext) -> list[str]:
    runs = [label(p, ctx.workspace) for p in find_runs(ctx.workspace, finished_only=False)]
    queued = [label(j.run_dir, ctx.workspace) for j in ctx.queue.jobs.values()]
    return list(dict.fromkeys([*reversed(queued), *runs]))


def watch(ctx: UIContext, selected: str | None) -> tuple:
    """Progress, loss, evaluations and (when done) the report of the selected run."""
    if not selected:
        return "", pd.DataFrame(columns=["step", "loss"]), EVALS, "", None, PER_CLASS, None
    run_dir = ctx.resolve(selected)
    status, loss, evals = progress_view(run_dir, ctx.queue.by_run_dir(run_dir))
    report, cm, per_class, curve = report_view(run_dir)
    return status, loss, evals, report, cm, per_class, curve


def refresh(ctx: UIContext, selected: str | None, known: list[str] | None) -> tuple:
    """The timer's tick: job table, run picker (only when runs appeared) and the watched run."""
    choices = run_choices(ctx)
    picker = gr.skip() if choices == (known or []) else gr.update(choices=choices)
    if not selected and choices and choices != (known or []):
        picker, selected = gr.update(choices=choices, value=choices[0]), choices[0]
    return (jobs_frame(ctx), picker, choices, *watch(ctx, selected))


def stop(ctx: UIContext, selected: str | None) -> str:
    if not selected:
        return "Pick a run to stop."
    job = ctx.queue.by_run_dir(ctx.resolve(selected))
    if job is None:
        return f"{selected} was not started from this UI session; nothing to stop."
    try:
        job = ctx.queue.stop(job.id)
    except Exception as exc:
        return error_text(exc)
    return f"job {job.id} ({selected}): {job.status}"


def build(ctx: UIContext, tasks: list[str], strategies: list[str]) -> dict[str, Any]:
    c: dict[str, Any] = {}
    d = form.DEFAULTS
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                c["model_name"] = gr.Textbox(
                    d["model_name"], label="Model (alias, hub id or dir)", elem_id="train-model"
                )
                c["max_length"] = gr.Number(d["max_length"], label="Max tokens", precision=0)
                c["output_dir"] = gr.Textbox(
                    next_run_name(ctx), label="Run directory", elem_id="train-output"
                )
            with gr.Row():
                c["task_type"] = gr.Dropdown(
                    tasks, value=d["task_type"], label="Task", elem_id="train-task"
                )
                c["task_options"] = gr.Textbox("", label="Task options (YAML)", lines=2)
            c["task_help"] = gr.Markdown(form.options_help("task", d["task_type"]))
            with gr.Row():
                c["train_path"] = gr.Textbox("", label="Train file", elem_id="train-data")
                c["validation_path"] = gr.Textbox(
                    "", label="Validation file (optional)", elem_id="train-validation"
                )
                c["text_column"] = gr.Textbox(d["text_column"], label="Text column")
                c["label_column"] = gr.Textbox(d["label_column"], label="Label column")
            with gr.Row():
                c["strategy_name"] = gr.Dropdown(
                    strategies, value=d["strategy_name"], label="Strategy", elem_id="train-strategy"
                )
                c["strategy_options"] = gr.Textbox("", label="Strategy options (YAML)", lines=2)
            c["strategy_help"] = gr.Markdown(form.options_help("strategy", d["strategy_name"]))
            with gr.Row():
                c["epochs"] = gr.Number(d["epochs"], label="Epochs", elem_id="train-epochs")
                c["batch_size"] = gr.Number(d["batch_size"], label="Batch size", precision=0)
                c["learning_rate"] = gr.Number(None, label="Learning rate (0: default)")
                c["max_steps"] = gr.Number(None, label="Max steps", precision=0)
                c["max_train_samples"] = gr.Number(None, label="Max train samples", precision=0)
                c["logging_steps"] = gr.Number(d["logging_steps"], label="Log every", precision=0)
                c["seed"] = gr.Number(d["seed"], label="Seed", precision=0)
            with gr.Row():
                c["validate"] = gr.Button("Validate", elem_id="train-validate")
                c["start"] = gr.Button("Start run", variant="primary", elem_id="train-start")
                c["download"] = gr.DownloadButton("Download YAML", interactive=False)
            c["message"] = gr.Markdown(elem_id="train-message")
        with gr.Column(scale=2):
            c["yaml"] = gr.Code("", language="yaml", label="Config YAML", lines=12)
            c["yaml_upload"] = gr.File(label="Load a YAML file", type="filepath")
            c["yaml_paste"] = gr.Textbox(
                "", label="…or paste YAML", lines=4, elem_id="train-yaml-paste"
            )
            c["load"] = gr.Button("Load into form", elem_id="train-load")
    gr.Markdown("### Runs")
    c["jobs"] = gr.Dataframe(pd.DataFrame(columns=JOB_COLUMNS), label="Queue", interactive=False)
    with gr.Row():
        c["picker"] = gr.Dropdown(run_choices(ctx), label="Watch run", elem_id="train-picker")
        c["stop"] = gr.Button("Stop / cancel", variant="stop", elem_id="train-stop")
    c["known"] = gr.State([])
    c["status"] = gr.Markdown(elem_id="train-status")
    with gr.Row():
        c["loss"] = gr.LinePlot(
            pd.DataFrame(columns=["step", "loss"]),
            x="step",
            y="loss",
            title="Training loss",
            label="Loss",
        )
        c["evals"] = gr.Dataframe(EVALS, label="Evaluations", interactive=False)
    c["report"] = gr.Markdown(elem_id="train-report")
    with gr.Row():
        c["cm"] = gr.Image(label="Confusion matrix", type="filepath")
        c["curve"] = gr.Image(label="Loss curve (report)", type="filepath")
    c["per_class"] = gr.Dataframe(PER_CLASS, label="Per class", interactive=False)
    c["timer"] = gr.Timer(1.0)

    fields = [c[k] for k in form.FIELDS]
    c["fields"] = fields
    c["task_type"].change(lambda t: form.options_help("task", t), c["task_type"], c["task_help"])
    c["strategy_name"].change(
        lambda s: form.options_help("strategy", s), c["strategy_name"], c["strategy_help"]
    )
    c["validate"].click(
        lambda *a: validate(ctx, *a), fields, [c["message"], c["yaml"], c["download"]]
    )
    c["start"].click(
        lambda *a: start(ctx, *a),
        fields,
        [c["message"], c["yaml"], c["download"], c["jobs"], c["picker"], c["output_dir"]],
    )
    c["load"].click(
        lambda u, p: load_yaml(ctx, u, p),
        [c["yaml_upload"], c["yaml_paste"]],
        [c["message"], *fields],
    )
    watched = [c["status"], c["loss"], c["evals"], c["report"], c["cm"], c["per_class"], c["curve"]]
    c["timer"].tick(
        lambda s, k: refresh(ctx, s, k),
        [c["picker"], c["known"]],
        [c["jobs"], c["picker"], c["known"], *watched],
        show_progress="hidden",
    )
    c["picker"].change(lambda s: watch(ctx, s), c["picker"], watched, show_progress="hidden")
    c["stop"].click(lambda s: stop(ctx, s), c["picker"], c["message"])
    return c
