"""Data tab: look at a file (preview, validation problems, `data stats`, length histogram) and
run `data prepare` into a chosen output directory, then read its report. Everything comes from
`tunewise.api.data_stats` / `prepare_data`; nothing is written outside the output directory."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from tunewise.ui.context import UIContext, error_text
from tunewise.ui.workspace import read_json

CLEAN_STEPS = ["html", "unicode", "emoji", "control", "mask", "whitespace"]
PREVIEW_ROWS = 20
EMPTY = pd.DataFrame()
REMOVED = pd.DataFrame(columns=["line", "step", "reason", "text"])
REJECTED = pd.DataFrame(columns=["line", "reason", "record"])


def pick_path(ctx: UIContext, upload: str | None, typed: str | None) -> Path | None:
    """The uploaded file if there is one, else the typed path (relative to the workspace)."""
    if upload:
        return Path(upload)
    return ctx.resolve(typed.strip()) if typed and typed.strip() else None


def preview(path: Path, n: int = PREVIEW_ROWS) -> pd.DataFrame:
    """The file's first records: a table for JSON lines, else its first lines as text."""
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for i, line in enumerate(fh, 1):
            if len(rows) >= n:
                break
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                cells = {
                    k: v if isinstance(v, (str, int, float)) else json.dumps(v)
                    for k, v in record.items()
                }
                rows.append({"line": i, **cells})
            else:
                rows.append({"line": i, "text": line.rstrip("\n")})
    return pd.DataFrame(rows)


def problems_table(path: Path, stats: dict[str, Any]) -> pd.DataFrame:
    """The pipeline's own validation problems: file, line, field, reason."""
    rows = []
    for item in stats.get("invalid_examples", []):
        field = re.search(r"field '([^']+)'", item.get("reason", ""))
        rows.append(
            {
                "file": path.name,
                "line": item.get("line"),
                "field": field.group(1) if field else "",
                "reason": item.get("reason"),
                "record": json.dumps(item.get("record"), ensure_ascii=False)[:200],
            }
        )
    return pd.DataFrame(rows, columns=["file", "line", "field", "reason", "record"])


def stats_markdown(stats: dict[str, Any]) -> str:
    lines = [
        f"**{stats['n_records']} records**, {stats['n_invalid']} invalid, "
        f"{stats['n_exact_duplicates']} exact duplicates, "
        f"{stats['n_conflicting_groups']} groups with conflicting labels.",
        "",
    ]
    if stats.get("labels"):
        total = max(stats["n_examples"], 1)
        lines += ["| label | examples | share |", "|---|---|---|"]
        lines += [f"| {k} | {v} | {v / total:.1%} |" for k, v in stats["labels"].items()]
        lines.append("")
    for unit in ("chars", "tokens"):
        if stats.get(unit):
            lines.append(f"{unit}: " + ", ".join(f"{k} {v}" for k, v in stats[unit].items()))
            lines.append("")
    return "\n".join(lines)


def histogram_frame(stats: dict[str, Any], unit: str = "tokens") -> pd.DataFrame:
    """Records per length bin, labelled by the bin's lower edge (in order)."""
    hist = stats.get("length_histogram", {}).get(unit)
    if not hist:
        return pd.DataFrame({"length": [], "records": []})
    edges = hist["edges"]
    # zero-padded lower edges: the plot orders its bars as strings, so "007" before "012"
    width = len(f"{edges[-1]:.0f}")
    labels = [f"{edges[i]:0{width}.0f}" for i in range(len(hist["counts"]))]
    labels = [f"{x} ({i})" if labels.count(x) > 1 else x for i, x in enumerate(labels)]
    return pd.DataFrame({"length": labels, "records": hist["counts"]})


def inspect(ctx: UIContext, upload: str | None, typed: str | None, task: str) -> tuple:
    """(message, path, preview, problems, stats markdown, histogram, n examples)."""
    from tunewise import api

    path = pick_path(ctx, upload, typed)
    if path is None:
        return ("Upload a file or type its path.", "", EMPTY, EMPTY, "", histogram_frame({}), None)
    try:
        stats = api.data_stats(path, task)
        table = preview(path)
    except Exception as exc:  # the API's DataError text, shown as the CLI prints it
        return (error_text(exc), "", EMPTY, EMPTY, "", histogram_frame({}), None)
    message = f"{path}: {stats['n_examples']} valid examples"
    return (
        message,
        str(path),
        table,
        problems_table(path, stats),
        stats_markdown(stats),
        histogram_frame(stats),
        stats["n_examples"],
    )


def prepare_options(
    clean: list[str], dedup: str, threshold: float, split: str, on_error: str, seed: float
) -> dict[str, Any]:
    """The `data.prepare` section the form describes (as `tunewise data prepare` builds it)."""
    options: dict[str, Any] = {
        "on_error": on_error,
        "split": split,
        "seed": int(seed),
        "dedup": {"exact": dedup != "none", "near": dedup == "near", "threshold": threshold},
    }
    if clean:
        options["clean"] = list(clean)
    return options


def _jsonl(path: Path, empty: pd.DataFrame, limit: int = 200) -> pd.DataFrame:
    rows = []
    if path.is_file():
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if len(rows) >= limit:
                    break
                record = json.loads(line)
                rows.append(
                    {
                        k: v if isinstance(v, (str, int, float)) else json.dumps(v)
                        for k, v in record.items()
                    }
                )
    return pd.DataFrame(rows) if rows else empty


def run_prepare(ctx: UIContext, source: str, task: str, output_dir: str, *options: Any) -> tuple:
    """(message, report markdown, duplicates/removed table, rejected table, histogram PNG)."""
    from tunewise import api

    if not source:
        return ("error: load a data file first.", "", REMOVED, REJECTED, None)
    if not output_dir or not output_dir.strip():
        return ("error: choose an output directory.", "", REMOVED, REJECTED, None)
    out = ctx.resolve(output_dir.strip())
    try:
        result = api.prepare_data(source, out, task=task, options=prepare_options(*options))
    except Exception as exc:
        return (error_text(exc), "", REMOVED, REJECTED, None)
    c = result.counts
    message = (
        f"{c['n_input']} records in, {c['n_rejected']} rejected, {c['n_exact_duplicates']} exact "
        f"and {c['n_near_duplicates']} near duplicates, {c['n_output']} out: "
        + ", ".join(f"{k} {v}" for k, v in c["splits"].items())
        + f" → {out}"
    )
    report = (out / "data_report.md").read_text(encoding="utf-8")
    report = re.sub(r"!\[[^\]]*\]\([^)]*\)\n?", "", report)  # the PNG is shown beside it
    histogram = out / "length_histogram.png"
    return (
        message,
        report,
        _jsonl(out / "removed.jsonl", REMOVED),
        _jsonl(out / "rejected.jsonl", REJECTED),
        str(histogram) if histogram.is_file() else None,
    )


def prepared_train(output_dir: str, ctx: UIContext) -> tuple[str, str]:
    """The prepared train / validation files (for the Train form), if prepare ran."""
    out = ctx.resolve(output_dir.strip()) if output_dir else None
    if out is None or read_json(out / "prepare.json") is None:
        return "", ""
    val = out / "validation.jsonl"
    return str(out / "train.jsonl"), str(val) if val.is_file() else ""


def build(ctx: UIContext, tasks: list[str]) -> dict[str, Any]:
    """The tab's components (the app wires the cross-tab links)."""
    c: dict[str, Any] = {}
    with gr.Row():
        c["upload"] = gr.File(label="Upload a data file", type="filepath", scale=1)
        with gr.Column(scale=2):
            c["path"] = gr.Textbox(
                label="…or a path (relative to the workspace)", elem_id="data-path"
            )
            c["task"] = gr.Dropdown(tasks, value="classification", label="Task schema")
            c["inspect"] = gr.Button("Inspect", variant="primary", elem_id="data-inspect")
    c["message"] = gr.Markdown(elem_id="data-message")
    c["source"] = gr.State("")
    c["n_examples"] = gr.State(None)
    with gr.Row():
        with gr.Column():
            c["stats"] = gr.Markdown(label="Statistics")
        c["histogram"] = gr.BarPlot(
            elem_id="data-histogram",
            value=histogram_frame({}),
            x="length",
            y="records",
            title="Length (tokens)",
            sort=None,
            label="Length histogram",
        )
    c["preview"] = gr.Dataframe(label="Preview (first records)", interactive=False, max_height=300)
    c["problems"] = gr.Dataframe(
        problems_table(Path("-"), {}), label="Validation problems", interactive=False
    )
    with gr.Accordion("Prepare: clean, deduplicate, split", open=True):
        with gr.Row():
            c["clean"] = gr.CheckboxGroup(CLEAN_STEPS, label="Cleaning steps")
            c["dedup"] = gr.Radio(["exact", "near", "none"], value="exact", label="Dedup")
            c["threshold"] = gr.Slider(0.5, 1.0, value=0.8, step=0.05, label="Near-dup Jaccard")
        with gr.Row():
            c["split"] = gr.Textbox("0.8,0.1,0.1", label="Split train,validation[,test]")
            c["on_error"] = gr.Radio(["fail", "skip"], value="skip", label="On invalid records")
            c["seed"] = gr.Number(42, label="Seed", precision=0)
            c["output_dir"] = gr.Textbox(
                "data/prepared", label="Output directory", elem_id="prepare-output"
            )
        c["prepare"] = gr.Button("Prepare", variant="primary", elem_id="data-prepare")
        c["prepare_message"] = gr.Markdown(elem_id="prepare-message")
        with gr.Row():
            c["report"] = gr.Markdown()
            c["report_histogram"] = gr.Image(label="Length histograms", type="filepath")
        c["removed"] = gr.Dataframe(
            REMOVED, label="Removed (duplicates, filtered)", interactive=False, max_height=250
        )
        c["rejected"] = gr.Dataframe(
            REJECTED, label="Rejected records", interactive=False, max_height=250
        )

    c["inspect"].click(
        lambda u, p, t: inspect(ctx, u, p, t),
        [c["upload"], c["path"], c["task"]],
        [
            c["message"],
            c["source"],
            c["preview"],
            c["problems"],
            c["stats"],
            c["histogram"],
            c["n_examples"],
        ],
    )
    c["prepare"].click(
        lambda s, t, o, *opts: run_prepare(ctx, s, t, o, *opts),
        [
            c["source"],
            c["task"],
            c["output_dir"],
            c["clean"],
            c["dedup"],
            c["threshold"],
            c["split"],
            c["on_error"],
            c["seed"],
        ],
        [c["prepare_message"], c["report"], c["removed"], c["rejected"], c["report_histogram"]],
    )
    return c
