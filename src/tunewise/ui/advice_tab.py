"""Advice tab: the advisor's ranking (`tunewise.api.recommend`) for a task, model, data size,
memory and time budget, recomputed as the inputs change; one click puts the chosen strategy
into the Train form."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from tunewise.ui.context import error_text

COLUMNS = [
    "rank",
    "strategy",
    "fits",
    "trainable params",
    "trainable %",
    "est. memory GB",
    "est. s/epoch",
    "reasons",
]


def ranking(
    task: str,
    model: str,
    train_size: float | None,
    data: str | None,
    memory_gb: float | None,
    time_budget_s: float | None,
    device: str,
    max_length: float | None,
    epochs: float | None,
) -> tuple[str, pd.DataFrame, Any]:
    """(message, ranking table, strategy choices) from the advisor."""
    from tunewise import api

    try:
        rows = api.recommend(
            task,
            model,
            train_size=int(train_size) if train_size else None,
            data=data or None,
            memory_gb=memory_gb or None,
            device=device,
            time_budget_s=time_budget_s or None,
            max_length=int(max_length or 128),
            epochs=float(epochs or 1.0),
        )
    except Exception as exc:
        return error_text(exc), pd.DataFrame(columns=COLUMNS), gr.update(choices=[], value=None)
    table = []
    for i, r in enumerate(rows, 1):
        table.append(
            {
                "rank": i,
                "strategy": r["strategy"],
                "fits": "yes" if r.get("fits") else "no",
                "trainable params": r.get("trainable_params"),
                "trainable %": r.get("trainable_percent"),
                "est. memory GB": r.get("est_peak_memory_gb"),
                "est. s/epoch": r.get("est_epoch_seconds"),
                "reasons": "; ".join(r.get("reasons", [])),
            }
        )
    names = [r["strategy"] for r in rows if r.get("trainable_params") is not None]
    best = names[0] if names else None
    message = f"Best for {task} on {model}: **{best}** ({len(rows)} strategies ranked)."
    return message, pd.DataFrame(table, columns=COLUMNS), gr.update(choices=names, value=best)


def build(tasks: list[str]) -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Row():
        c["task"] = gr.Dropdown(tasks, value="classification", label="Task")
        c["model"] = gr.Textbox(
            "minilm", label="Model (alias, hub id or directory)", elem_id="advice-model"
        )
        c["train_size"] = gr.Number(
            None, label="Training examples (from the data)", precision=0, elem_id="advice-size"
        )
        c["data"] = gr.Textbox("", label="Training file (optional: sizes, token lengths)")
    with gr.Row():
        c["memory_gb"] = gr.Number(None, label="Memory budget GB (0: none)")
        c["time_budget_s"] = gr.Number(None, label="Time budget s/epoch (0: none)")
        c["device"] = gr.Radio(["cpu", "cuda"], value="cpu", label="Device")
        c["max_length"] = gr.Number(128, label="Max tokens", precision=0)
        c["epochs"] = gr.Number(1.0, label="Epochs")
    c["message"] = gr.Markdown(elem_id="advice-message")
    c["table"] = gr.Dataframe(
        headers=COLUMNS,
        label="Ranking",
        interactive=False,
        wrap=True,
        column_widths=["5%", "11%", "5%", "10%", "8%", "8%", "8%", "45%"],
        elem_id="advice-table",
    )
    with gr.Row():
        c["choice"] = gr.Dropdown([], label="Strategy", elem_id="advice-choice")
        c["use"] = gr.Button("Use in Train form", variant="primary", elem_id="advice-use")
    inputs = [
        c[k]
        for k in (
            "task",
            "model",
            "train_size",
            "data",
            "memory_gb",
            "time_budget_s",
            "device",
            "max_length",
            "epochs",
        )
    ]
    outputs = [c["message"], c["table"], c["choice"]]
    # Every listener re-ranks; one queue for all of them (one at a time, in the order they
    # fired), so a slow earlier ranking can never land after, and overwrite, a newer one.
    live = {"trigger_mode": "always_last", "concurrency_id": "advice-ranking"}
    for component in inputs:  # live: every change re-ranks (only the latest call counts)
        if isinstance(component, gr.Textbox):  # a name or path: once typed, not per keystroke
            for event in (component.submit, component.blur):
                event(ranking, inputs, outputs, concurrency_limit=1, **live)
        else:
            component.change(ranking, inputs, outputs, concurrency_limit=1, **live)
    # filled in from the Data tab (no typing): those changes re-rank too
    c["data"].change(ranking, inputs, outputs, concurrency_limit=1, **live)
    c["inputs"], c["outputs"] = inputs, outputs
    return c
