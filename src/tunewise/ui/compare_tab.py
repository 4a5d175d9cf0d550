"""Compare tab: every run in the workspace (the UI's and the CLI's) in one sortable, filterable
table, and the sweeps (`sweep.json` + plots) with a form to start one from the Train form's
config (`tunewise sweep` in the job queue)."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from tunewise.ui import form
from tunewise.ui.context import UIContext, error_text
from tunewise.ui.workspace import find_runs, find_sweeps, label, run_row, sweep_summary

SORTABLE = [
    "created",
    "value",
    "accuracy",
    "macro_f1",
    "trainable_%",
    "train_s",
    "peak_rss_mb",
    "artifact_kb",
    "run",
]


def runs_table(
    ctx: UIContext,
    query: str = "",
    task: str = "all",
    sort: str = "created",
    descending: bool = True,
) -> pd.DataFrame:
    """All finished runs; `query` keeps rows where any cell contains it (case-insensitive)."""
    rows = [run_row(p, ctx.workspace) for p in find_runs(ctx.workspace)]
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=["run", "task", "strategy", "metric", "value"])
    if task and task != "all":
        table = table[table["task"] == task]
    if query and query.strip():
        needle = query.strip().lower()
        hit = table.astype(str).apply(lambda col: col.str.lower().str.contains(needle, regex=False))
        table = table[hit.any(axis=1)]
    table = table.dropna(axis=1, how="all")  # e.g. no loss for classification runs
    if sort in table.columns:
        table = table.sort_values(sort, ascending=not descending, na_position="last")
    return table.reset_index(drop=True)


def sweep_choices(ctx: UIContext) -> list[str]:
    return [label(p, ctx.workspace) for p in find_sweeps(ctx.workspace)]


def show_sweep(ctx: UIContext, selected: str | None) -> tuple[pd.DataFrame, list[str]]:
    if not selected:
        return pd.DataFrame(), []
    rows, plots = sweep_summary(ctx.resolve(selected))
    return pd.DataFrame(rows), [str(p) for p in plots]


def start_sweep(ctx: UIContext, strategies: list[str], output_dir: str, *values: Any) -> str:
    """Queue `tunewise sweep` over the Train form's config."""
    if not strategies:
        return "error: A sweep needs at least one strategy (--strategies full,lora,...)."
    try:
        raw = form.form_to_raw(dict(zip(form.FIELDS, values, strict=True)), ctx.workspace)
        form.check(raw)
        job = ctx.queue.submit_sweep(raw, list(strategies), ctx.resolve(output_dir or "sweeps/x"))
    except Exception as exc:
        return error_text(exc)
    return f"queued sweep job {job.id} → {label(job.run_dir, ctx.workspace)} (watch it in Train)"


def build(ctx: UIContext, tasks: list[str], strategies: list[str]) -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Row():
        c["query"] = gr.Textbox("", label="Filter (any column contains)", elem_id="compare-query")
        c["task"] = gr.Dropdown(["all", *tasks], value="all", label="Task")
        c["sort"] = gr.Dropdown(SORTABLE, value="created", label="Sort by")
        c["descending"] = gr.Checkbox(True, label="Descending")
        c["refresh"] = gr.Button("Refresh", elem_id="compare-refresh")
    c["table"] = gr.Dataframe(
        runs_table(ctx),
        label="Runs",
        interactive=False,
        show_search="filter",
        wrap=True,
        elem_id="compare-table",
    )
    gr.Markdown("### Sweeps")
    with gr.Row():
        c["sweep"] = gr.Dropdown(
            sweep_choices(ctx), value=None, label="Sweep", elem_id="compare-sweep"
        )
        c["sweep_refresh"] = gr.Button("Refresh sweeps")
    c["sweep_table"] = gr.Dataframe(
        pd.DataFrame(columns=["strategy", "status"]),
        label="Sweep entries",
        interactive=False,
        elem_id="compare-sweep-table",
    )
    c["plots"] = gr.Gallery(label="Sweep plots", columns=3, height=360, object_fit="contain")
    with gr.Accordion("Start a sweep (the Train form's config, one run per strategy)", open=False):
        with gr.Row():
            c["sweep_strategies"] = gr.CheckboxGroup(
                strategies, value=["lora", "bitfit"], label="Strategies"
            )
            c["sweep_output"] = gr.Textbox("sweeps/sweep-1", label="Output directory")
        c["sweep_start"] = gr.Button("Start sweep", variant="primary")
        c["sweep_message"] = gr.Markdown()

    inputs = [c["query"], c["task"], c["sort"], c["descending"]]
    table = lambda q, t, s, d: runs_table(ctx, q, t, s, d)  # noqa: E731
    for trigger in (
        c["refresh"].click,
        c["query"].change,
        c["task"].change,
        c["sort"].change,
        c["descending"].change,
    ):
        trigger(table, inputs, c["table"])
    c["sweep_refresh"].click(lambda: gr.update(choices=sweep_choices(ctx)), None, c["sweep"])
    c["sweep"].change(lambda s: show_sweep(ctx, s), c["sweep"], [c["sweep_table"], c["plots"]])
    c["inputs"] = inputs
    return c
