"""The workbench: five tabs (Data, Advice, Train, Compare, Try) in one Gradio Blocks app, and
the links between them (the data's size feeds the advisor, the advisor's pick fills the Train
form, prepared data becomes the run's data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from tunewise.ui import advice_tab, compare_tab, data_tab, train_tab, try_tab
from tunewise.ui.context import UIContext


def _names() -> tuple[list[str], list[str]]:
    from tunewise import api

    matrix = api.strategy_matrix()
    return matrix["tasks"], [*matrix["strategies"], "auto"]


def quickstart_files() -> tuple[str, str]:
    from tunewise.quickstart import DATA

    return str(DATA / "train.jsonl"), str(DATA / "validation.jsonl")


def build_app(ctx: UIContext) -> gr.Blocks:
    tasks, strategies = _names()
    with gr.Blocks(title="tunewise workbench") as demo:
        gr.Markdown(f"## tunewise workbench · workspace `{ctx.workspace}`")
        with gr.Tabs() as tabs:
            with gr.Tab("Data", id="data"):
                quick = gr.Button(
                    "Use the bundled quickstart data", size="sm", elem_id="data-quickstart"
                )
                data = data_tab.build(ctx, tasks)
            with gr.Tab("Advice", id="advice"):
                advice = advice_tab.build(tasks)
            with gr.Tab("Train", id="train"):
                train = train_tab.build(ctx, tasks, strategies)
            with gr.Tab("Compare", id="compare"):
                compare = compare_tab.build(ctx, tasks, strategies)
            with gr.Tab("Try", id="try"):
                trial = try_tab.build(ctx)
        _link(ctx, tabs, quick, data, advice, train, compare, trial)
    return demo


def _link(
    ctx: UIContext,
    tabs: gr.Tabs,
    quick: gr.Button,
    data: dict,
    advice: dict,
    train: dict,
    compare: dict,
    trial: dict,
) -> None:
    # the quickstart set: inspect its train file, and put both files into the Train form
    quick.click(lambda: quickstart_files()[0], None, data["path"]).then(
        lambda p, t: data_tab.inspect(ctx, None, p, t),
        [data["path"], data["task"]],
        [
            data["message"],
            data["source"],
            data["preview"],
            data["problems"],
            data["stats"],
            data["histogram"],
            data["n_examples"],
        ],
    ).then(lambda: quickstart_files()[1], None, train["validation_path"])
    data["upload"].upload(
        lambda u, t: data_tab.inspect(ctx, u, None, t),
        [data["upload"], data["task"]],
        [
            data["message"],
            data["source"],
            data["preview"],
            data["problems"],
            data["stats"],
            data["histogram"],
            data["n_examples"],
        ],
    )
    # an inspected file feeds the advisor (size, tokens) and the Train form
    data["source"].change(lambda s: (s, s), data["source"], [advice["data"], train["train_path"]])
    data["n_examples"].change(lambda n: n, data["n_examples"], advice["train_size"])
    data["task"].change(lambda t: (t, t), data["task"], [advice["task"], train["task_type"]])
    # prepared splits become the run's data
    data["prepare"].click(
        lambda o: data_tab.prepared_train(o, ctx),
        data["output_dir"],
        [train["train_path"], train["validation_path"]],
    )
    # the advisor's pick fills the Train form and opens it
    advice["use"].click(
        lambda s, t, m: (s, t, m, gr.Tabs(selected="train")),
        [advice["choice"], advice["task"], advice["model"]],
        [train["strategy_name"], train["task_type"], train["model_name"], tabs],
    )
    # a sweep over the Train form's config
    compare["sweep_start"].click(
        lambda s, o, *v: compare_tab.start_sweep(ctx, s, o, *v),
        [compare["sweep_strategies"], compare["sweep_output"], *train["fields"]],
        compare["sweep_message"],
    )


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def launch(
    workspace: Path, host: str = "127.0.0.1", port: int = 7860, max_running: int = 1, **kwargs: Any
) -> None:
    """Serve the workbench until interrupted; running jobs are stopped on the way out."""
    import signal

    ctx = UIContext.create(workspace, max_running)
    demo = build_app(ctx)
    # SIGTERM (e.g. from a service manager) closes the server like Ctrl-C does; `finally` then
    # stops the running jobs
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        demo.queue(default_concurrency_limit=4).launch(
            server_name=host,
            server_port=port,
            allowed_paths=[str(ctx.workspace)],
            show_error=True,
            **kwargs,
        )
    finally:
        ctx.queue.shutdown()
