"""`tunewise data ...`: prepare, stats, select, export, import (thin wrappers over tunewise.api)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tunewise.cli._app import fail
from tunewise.errors import TunewiseError

app = typer.Typer(
    help="Prepare, inspect and annotate data.", no_args_is_help=True, add_completion=False
)


def _columns(text_column: list[str] | None, label_column: str | None) -> dict[str, str]:
    out = {}
    if text_column:
        out["text"] = text_column[0]
    if label_column:
        out["label"] = label_column
    return out


@app.command()
def prepare(
    input: Annotated[Path, typer.Option("--input", help="Data file (JSONL, JSON, CSV, ...).")],
    output_dir: Annotated[Path, typer.Option("--output-dir", help="Where the splits go.")],
    task: Annotated[str, typer.Option(help="Task whose schema records must follow.")] = (
        "classification"
    ),
    clean: Annotated[
        str | None, typer.Option(help="'all' or steps: html,unicode,emoji,control,mask,whitespace")
    ] = None,
    dedup: Annotated[str, typer.Option(help="exact, near (exact + MinHash LSH) or none.")] = (
        "exact"
    ),
    threshold: Annotated[float, typer.Option(help="Jaccard threshold for near dups.")] = 0.8,
    split: Annotated[str, typer.Option(help="train,validation[,test] ratios.")] = "0.8,0.1,0.1",
    on_error: Annotated[str, typer.Option(help="fail, or skip to rejected.jsonl.")] = "fail",
    seed: Annotated[int, typer.Option(help="Seed for splits and augmentation.")] = 42,
    format: Annotated[str, typer.Option(help="File format; auto: from the extension.")] = "auto",
    text_column: Annotated[
        list[str] | None, typer.Option(help="Text column (default: text, sentence or content).")
    ] = None,
    label_column: Annotated[str | None, typer.Option(help="Label column (default: label).")] = (
        None
    ),
    config: Annotated[
        Path | None, typer.Option(help="YAML file with a full `prepare` section (overrides).")
    ] = None,
) -> None:
    """Validate, clean, deduplicate and split INPUT into OUTPUT_DIR (see data_report.md)."""
    from tunewise import api

    if dedup not in ("exact", "near", "none"):
        fail(TunewiseError(f"--dedup must be exact, near or none, not '{dedup}'."))
    options: dict = {
        "on_error": on_error,
        "split": split,
        "seed": seed,
        "columns": _columns(text_column, label_column),
        "dedup": {"exact": dedup != "none", "near": dedup == "near", "threshold": threshold},
    }
    if clean:
        options["clean"] = "all" if clean == "all" else [s.strip() for s in clean.split(",")]
    try:
        if config:
            from tunewise.config_source import read_yaml

            extra = read_yaml(config)
            section = extra.get("prepare", extra)
            if not isinstance(section, dict):
                raise TunewiseError(
                    f"Config file '{config}': 'prepare' must be a mapping of options, not "
                    f"{section!r}."
                )
            options.update(section)
        result = api.prepare_data(input, output_dir, task=task, options=options, fmt=format)
    except TunewiseError as exc:
        fail(exc)
    c = result.counts
    typer.echo(
        f"{c['n_input']} records in, {c['n_rejected']} rejected, {c['n_exact_duplicates']} exact "
        f"and {c['n_near_duplicates']} near duplicates, {c['n_output']} out: "
        + ", ".join(f"{k} {v}" for k, v in c["splits"].items())
    )
    typer.echo(f"report: {result.output_dir / 'data_report.md'}")


@app.command()
def stats(
    file: Annotated[Path, typer.Argument(help="Data file.")],
    task: Annotated[str, typer.Option(help="Task schema.")] = "classification",
    format: Annotated[str, typer.Option(help="File format; auto: from the extension.")] = "auto",
    text_column: Annotated[list[str] | None, typer.Option(help="Text column.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Label column.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Sizes, label distribution, length statistics and duplicate counts of FILE."""
    from tunewise import api

    try:
        s = api.data_stats(file, task, format, _columns(text_column, label_column))
    except TunewiseError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(s, indent=2, ensure_ascii=False))
        return
    typer.echo(f"{s['path']}: {s['n_records']} records ({s['n_invalid']} invalid)")
    typer.echo(f"  exact duplicates: {s['n_exact_duplicates']}")
    for label, n in s["labels"].items():
        typer.echo(f"  label {label}: {n} ({n / max(s['n_examples'], 1):.1%})")
    for unit in ("chars", "tokens"):
        typer.echo(f"  {unit}: " + ", ".join(f"{k} {v}" for k, v in s[unit].items()))


@app.command()
def select(
    run: Annotated[Path, typer.Option(help="Run directory from `tunewise train`.")],
    pool: Annotated[Path, typer.Option(help="Unlabelled examples (JSONL/CSV/TSV).")],
    k: Annotated[int, typer.Option(help="How many to pick.")] = 200,
    method: Annotated[str, typer.Option(help="entropy, margin, least_confidence, random.")] = (
        "entropy"
    ),
    output: Annotated[Path, typer.Option(help="JSONL for the picked examples.")] = Path(
        "to_label.jsonl"
    ),
    seed: Annotated[int, typer.Option(help="Seed for `random`.")] = 42,
) -> None:
    """Write the K pool examples the run is least sure about (most uncertain first)."""
    from tunewise import api

    try:
        picked = api.select_for_annotation(run, pool, k, method, seed, output)
    except TunewiseError as exc:
        fail(exc)
    typer.echo(f"{len(picked)} examples written to {output} ({method})")


@app.command("export")
def export_(
    input: Annotated[Path, typer.Argument(help="JSONL records (e.g. from `data select`).")],
    output: Annotated[Path, typer.Option(help="Label Studio tasks JSON.")] = Path("tasks.json"),
) -> None:
    """Convert JSONL records to Label Studio tasks (predictions become pre-annotations)."""
    from tunewise.data.select import export_label_studio

    try:
        n = export_label_studio(input, output)
    except TunewiseError as exc:
        fail(exc)
    typer.echo(f"{n} tasks written to {output}")


@app.command("import")
def import_(
    input: Annotated[Path, typer.Argument(help="Label Studio JSON export.")],
    output: Annotated[Path, typer.Option(help="Labelled JSONL.")] = Path("labelled.jsonl"),
) -> None:
    """Convert a Label Studio export to labelled JSONL ({text, label})."""
    from tunewise.data.select import import_label_studio

    try:
        n, skipped = import_label_studio(input, output)
    except TunewiseError as exc:
        fail(exc)
    typer.echo(f"{n} labelled records written to {output} ({skipped} tasks without a label)")


@app.command()
def collect(
    requests_dir: Annotated[Path, typer.Argument(help="Directory of `serve --log-requests`.")],
    output: Annotated[Path, typer.Option(help="Training file to write (JSONL).")],
    task: Annotated[str | None, typer.Option(help="Task whose format to write.")] = None,
    run: Annotated[Path | None, typer.Option(help="Run whose task to use.")] = None,
    unlabelled: Annotated[
        Path | None, typer.Option(help="Also write requests without feedback here (JSONL).")
    ] = None,
) -> None:
    """Join logged requests with their feedback into a training file (validated, deduplicated)."""
    from tunewise import api

    try:
        c = api.collect_data(requests_dir, output, task=task, run=run, unlabelled=unlabelled)
    except TunewiseError as exc:
        fail(exc)
    if c["output"] is None:
        typer.echo(
            f"{c['n_requests']} logged requests, none with feedback yet: {output} not written"
        )
    else:
        typer.echo(
            f"{c['n_requests']} logged requests, {c['n_with_feedback']} with feedback: "
            f"{c['n_rejected']} rejected, {c['n_duplicates']} duplicates, {c['n_output']} "
            f"written to {output} ({c['task']})"
        )
    for r in c["rejected"][:5]:
        typer.echo(f"  rejected request {r['id']}: {r['reason']}")
    if c["n_bad_lines"]:
        typer.echo(f"  {c['n_bad_lines']} unreadable log lines skipped, e.g. {c['bad_lines'][0]}")
    if unlabelled is not None:
        typer.echo(f"{c['n_unlabelled']} unlabelled requests written to {unlabelled}")
