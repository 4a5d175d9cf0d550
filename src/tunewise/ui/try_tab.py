"""Try tab: load a finished run and use it. Classification: labels with a score bar;
token classification: highlighted entities; extractive QA: the answer highlighted in the
context; multiple choice: the ranking; generation: a chat with streamed tokens. Export calls
`tunewise.api.export`."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from tunewise.ui.context import UIContext, error_text
from tunewise.ui.workspace import MANIFEST, find_runs, label, read_json

GENERATIVE = {"instruction", "chat", "generative_qa", "summarization", "translation"}
# Which inputs each kind of task shows: text, question, context, choices, chat.
KINDS = {
    "classification": "text",
    "token_classification": "text",
    "continued_pretraining": "text",
    "extractive_qa": "qa",
    "multiple_choice": "choice",
}


def run_choices(ctx: UIContext) -> list[str]:
    return [label(p, ctx.workspace) for p in find_runs(ctx.workspace)]


def task_of(ctx: UIContext, run: str) -> str:
    return ((read_json(ctx.resolve(run) / MANIFEST) or {}).get("task") or {}).get("type", "")


def kind_of(task: str) -> str:
    return "chat" if task in GENERATIVE else KINDS.get(task, "text")


def load_run(ctx: UIContext, run: str | None) -> tuple:
    """(message, visibility of the text / QA / choice / chat groups, of the label and the
    entity views)."""
    hidden = [gr.update(visible=False)] * 6
    if not run:
        return ("Pick a finished run.", *hidden)
    try:
        ctx.predictor(ctx.resolve(run))
    except Exception as exc:
        return (error_text(exc), *hidden)
    task = task_of(ctx, run)
    kind = kind_of(task)
    shown = [gr.update(visible=kind == k) for k in ("text", "qa", "choice", "chat")]
    shown.append(gr.update(visible=task == "classification"))
    shown.append(gr.update(visible=task == "token_classification"))
    return (f"loaded {run} ({task})", *shown)


def predict_text(ctx: UIContext, run: str, text: str) -> tuple[Any, Any, str]:
    """(label scores, highlighted entities, raw JSON) for one text."""
    if not run or not text or not text.strip():
        return None, None, "Pick a run and type a text."
    try:
        pred = ctx.predictor(ctx.resolve(run)).predict([text])[0]
    except Exception as exc:
        return None, None, error_text(exc)
    if "scores" in pred:  # classification: every label with its probability
        return {str(k): float(v) for k, v in pred["scores"].items()}, None, _json(pred)
    if "entities" in pred:
        return None, highlight(text, pred["entities"], "type"), _json(pred)
    return None, None, _json(pred)


def highlight(text: str, spans: list[dict[str, Any]], key: str) -> list[tuple[str, str | None]]:
    """HighlightedText pieces: the text cut at the spans' character offsets."""
    pieces: list[tuple[str, str | None]] = []
    at = 0
    for span in sorted(spans, key=lambda s: s["start"]):
        if span["start"] < at or span["start"] < 0:
            continue
        if span["start"] > at:
            pieces.append((text[at : span["start"]], None))
        pieces.append((text[span["start"] : span["end"]], str(span.get(key) or "answer")))
        at = span["end"]
    if at < len(text):
        pieces.append((text[at:], None))
    return pieces


def predict_qa(ctx: UIContext, run: str, question: str, context: str) -> tuple[Any, str]:
    """(the context with the answer span highlighted, raw JSON)."""
    try:
        pred = ctx.predictor(ctx.resolve(run)).predict([{"question": question, "context": context}])
    except Exception as exc:
        return None, error_text(exc)
    p = pred[0]
    if p.get("start", -1) < 0:
        return [(context, None)], _json(p) + "\n(no answer in the context)"
    span = {**p, "answer": f"answer {p['score']:.2f}"}
    return highlight(context, [span], "answer"), _json(p)


def predict_choice(ctx: UIContext, run: str, question: str, choices: str) -> tuple[Any, str]:
    """(ranking table, raw JSON) for a question and one candidate per line."""
    options = [x.strip() for x in (choices or "").splitlines() if x.strip()]
    try:
        pred = ctx.predictor(ctx.resolve(run)).predict(
            [{"question": question, "choices": options}]
        )[0]
    except Exception as exc:
        return pd.DataFrame(), error_text(exc)
    table = pd.DataFrame(
        [
            {"rank": i, "choice": r["choice"], "score": round(float(r["score"]), 4)}
            for i, r in enumerate(pred["ranking"], 1)
        ]
    )
    return table, _json(pred)


def chat(ctx: UIContext, run: str, message: str, history: list, context: str = "") -> Iterator:
    """Stream the run's answer into the chat, token by token (`tunewise.api.stream`)."""
    from tunewise import api

    history = [*(history or []), {"role": "user", "content": message}]
    history.append({"role": "assistant", "content": ""})
    if not run:
        history[-1]["content"] = "Pick a run first."
        yield history, ""
        return
    task = task_of(ctx, run)
    item: Any = message
    if task == "generative_qa" and context.strip():
        item = {"question": message, "context": context}
    try:
        for text in api.stream(ctx.predictor(ctx.resolve(run)), item):
            history[-1]["content"] = text
            yield history, ""
    except Exception as exc:
        history[-1]["content"] = error_text(exc)
        yield history, ""


def export(ctx: UIContext, run: str, fmt: str, output: str, quantize: bool = False) -> str:
    """`tunewise export` for the picked run: a directory beside nothing of the user's (refused,
    with the CLI's message, when it is not empty)."""
    from tunewise import api

    if not run:
        return "Pick a run first."
    target = ctx.resolve(output or f"exports/{Path(run).name}-{fmt}")
    try:
        report = api.export(
            ctx.resolve(run), fmt, target, quantize="int8" if quantize and fmt == "onnx" else None
        )
    except Exception as exc:
        return error_text(exc)
    parity = report.get("max_abs_diff")
    checked = f" (parity max |diff| {parity:.2g})" if isinstance(parity, float) else ""
    return f"exported {run} as {fmt} → {target}{checked}"


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def build(ctx: UIContext) -> dict[str, Any]:

    c: dict[str, Any] = {}
    with gr.Row():
        c["run"] = gr.Dropdown(run_choices(ctx), label="Finished run", elem_id="try-run")
        c["refresh"] = gr.Button("Refresh runs")
        c["load"] = gr.Button("Load", variant="primary", elem_id="try-load")
    c["message"] = gr.Markdown(elem_id="try-message")
    with gr.Group(visible=False) as c["text_group"]:
        c["text"] = gr.Textbox(label="Text", elem_id="try-text")
        c["predict"] = gr.Button("Predict", variant="primary", elem_id="try-predict")
        c["label"] = gr.Label(label="Prediction", num_top_classes=5, elem_id="try-label")
        c["entities"] = gr.HighlightedText(label="Entities", show_legend=True)
    with gr.Group(visible=False) as c["qa_group"]:
        c["question"] = gr.Textbox(label="Question")
        c["context"] = gr.Textbox(label="Context", lines=5)
        c["answer_button"] = gr.Button("Answer", variant="primary")
        c["answer"] = gr.HighlightedText(label="Answer in the context")
    with gr.Group(visible=False) as c["choice_group"]:
        c["mc_question"] = gr.Textbox(label="Question")
        c["mc_choices"] = gr.Textbox(label="Candidates (one per line)", lines=4)
        c["rank_button"] = gr.Button("Rank", variant="primary")
        c["ranking"] = gr.Dataframe(
            pd.DataFrame(columns=["rank", "choice", "score"]), label="Ranking", interactive=False
        )
    with gr.Group(visible=False) as c["chat_group"]:
        c["chatbot"] = gr.Chatbot(label="Chat (streamed)", height=320)
        c["chat_context"] = gr.Textbox(label="Context (generative QA)", lines=2)
        c["chat_input"] = gr.Textbox(label="Message", elem_id="try-chat-input")
    c["raw"] = gr.Code(label="Raw prediction (JSON)", language="json")
    with gr.Row():
        c["export_format"] = gr.Dropdown(["hf", "onnx"], value="onnx", label="Export format")
        c["export_quantize"] = gr.Checkbox(False, label="int8 (onnx)")
        c["export_output"] = gr.Textbox("", label="Export to (default exports/<run>-<format>)")
        c["export"] = gr.Button("Export")
    c["export_message"] = gr.Markdown()

    groups = [c["text_group"], c["qa_group"], c["choice_group"], c["chat_group"]]
    c["refresh"].click(lambda: gr.update(choices=run_choices(ctx)), None, c["run"])
    c["load"].click(
        lambda r: load_run(ctx, r), c["run"], [c["message"], *groups, c["label"], c["entities"]]
    )
    c["predict"].click(
        lambda r, t: predict_text(ctx, r, t),
        [c["run"], c["text"]],
        [c["label"], c["entities"], c["raw"]],
    )
    c["text"].submit(
        lambda r, t: predict_text(ctx, r, t),
        [c["run"], c["text"]],
        [c["label"], c["entities"], c["raw"]],
    )
    c["answer_button"].click(
        lambda r, q, x: predict_qa(ctx, r, q, x),
        [c["run"], c["question"], c["context"]],
        [c["answer"], c["raw"]],
    )
    c["rank_button"].click(
        lambda r, q, x: predict_choice(ctx, r, q, x),
        [c["run"], c["mc_question"], c["mc_choices"]],
        [c["ranking"], c["raw"]],
    )
    c["chat_input"].submit(
        partial(chat, ctx),
        [c["run"], c["chat_input"], c["chatbot"], c["chat_context"]],
        [c["chatbot"], c["chat_input"]],
    )
    c["export"].click(
        lambda r, f, o, q: export(ctx, r, f, o, q),
        [c["run"], c["export_format"], c["export_output"], c["export_quantize"]],
        c["export_message"],
    )
    return c
