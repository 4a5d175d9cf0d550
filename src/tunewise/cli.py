"""The `tunewise` command line: thin wrappers over `tunewise.api`.

Errors the user can fix (TunewiseError) print one paragraph and exit with status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tunewise.errors import TunewiseError

app = typer.Typer(
    help="Fine-tune pretrained language models, and pick the strategy that fits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(exc: TunewiseError) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(exc.exit_code)


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="YAML config file.")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key.path=value overrides, e.g. training.epochs=2")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output_dir.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue from the run's last checkpoint.")] = False,
) -> None:
    """Fine-tune as CONFIG says; writes a run directory (model, manifest, metrics, report)."""
    from tunewise import api

    try:
        result = api.finetune(config, overrides or [], overwrite=overwrite, resume=resume)
    except TunewiseError as exc:
        _fail(exc)
    typer.echo(f"run saved to {result.run_dir} (report: {result.run_dir / 'report.md'})")


@app.command("eval")
def eval_(
    run: Annotated[Path | None, typer.Argument(help="Run directory from `tunewise train`.")] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Labelled file (JSONL, CSV, TSV, JSON).")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Write the metrics here as JSON.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Score this BASE model instead of a run (with --task).")
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="Task type for --model, e.g. instruction.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Config override for --model, e.g. model.max_length=512."),
    ] = None,
) -> None:
    """Score a finished run (or, with --model/--task, an untuned base model) on a labelled file
    with the task's metrics."""
    from tunewise import api

    try:
        if data is None:
            raise TunewiseError("Give --data FILE (a labelled file to score).")
        if (run is None) == (model is None) or (model is not None and task is None):
            raise TunewiseError("Give a RUN directory, or --model NAME with --task TYPE.")
        if model is not None:
            metrics = api.evaluate_base(model, task, data, output, set_ or [])
        else:
            metrics = api.evaluate(run, data, output)
    except TunewiseError as exc:
        _fail(exc)
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    typer.echo(json.dumps(shown, indent=2))


# Fields of an --input record that tasks predict from (classification: text / text_pair;
# extractive QA: question + context).
PREDICT_INPUT_FIELDS = ("text", "text_pair", "question", "context")
# generation tasks: instruction (+input), chat messages, summarization document, translation source
PREDICT_INPUT_FIELDS += ("instruction", "input", "messages", "document", "source")
# multiple choice: question (+ context, already joined by the reader) and its candidates
PREDICT_INPUT_FIELDS += ("choices",)


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="Run directory from `tunewise train`.")],
    text: Annotated[list[str] | None, typer.Option(help="Text to classify (repeatable).")] = None,
    input: Annotated[
        Path | None,
        typer.Option(help="JSONL/CSV/TSV file of inputs (QA: 'question' and 'context' fields)."),
    ] = None,
    output: Annotated[Path | None, typer.Option(help="JSONL file for the predictions.")] = None,
    batch_size: Annotated[int, typer.Option(help="Examples per forward pass.")] = 64,
) -> None:
    """Predict for --text values or every record of --input (order kept)."""
    from tunewise import api

    if not text and not input:
        _fail(TunewiseError("Give --text TEXT (repeatable) or --input FILE."))
    try:
        predictor = api.load(run)
        if (
            text
            and len(text) == 1
            and not input
            and not output
            and hasattr(predictor.task, "generate")
        ):
            predictor.stream(text[0])  # tokens are printed as they are generated
            typer.echo("")
            return
        if input:
            dataset = predictor.read(input, labelled=False)
            records: list[Any] = [
                {k: dataset[i][k] for k in PREDICT_INPUT_FIELDS if k in dataset.column_names}
                for i in range(len(dataset))
            ]
        else:
            records = [{"text": t} for t in text or []]
        preds = predictor.predict(records, batch_size=batch_size, progress=bool(input))
    except TunewiseError as exc:
        _fail(exc)
    lines = [json.dumps(p, ensure_ascii=False) for p in preds]
    if output:
        from tunewise.artifacts import atomic_write_text

        atomic_write_text(output, "\n".join(lines) + "\n")
        typer.echo(f"{len(lines)} predictions written to {output}")
    else:
        for record, line in zip(records, lines, strict=True):
            typer.echo(line if input else f"{record['text']!r} -> {line}")


@app.command()
def quickstart(
    output_dir: Annotated[Path, typer.Option(help="Where the demo run goes.")] = Path(
        "runs/quickstart"
    ),
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier demo run.")] = False,
) -> None:
    """Fine-tune minilm with LoRA on the bundled support-message set, evaluate, predict."""
    import yaml

    from tunewise import api
    from tunewise.quickstart import CONFIG, DATA, SAMPLES

    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    raw["data"] = {"train": str(DATA / "train.jsonl"), "validation": str(DATA / "validation.jsonl")}
    raw["output_dir"] = str(output_dir)
    try:
        result = api.finetune(raw, overwrite=overwrite)
        predictions = result.load().predict(SAMPLES)
    except TunewiseError as exc:
        _fail(exc)
    m = result.metrics["validation"]
    typer.echo("")
    typer.secho("validation metrics", bold=True)
    for key in ("accuracy", "macro_f1", "micro_f1", "n_examples"):
        typer.echo(
            f"  {key:<10} {m[key]:.4f}" if isinstance(m[key], float) else f"  {key:<10} {m[key]}"
        )
    typer.secho("predictions", bold=True)
    for text, pred in zip(SAMPLES, predictions, strict=True):
        typer.echo(f"  {pred['label']:<10} {pred['score']:.2f}  {text}")
    typer.echo(f"\nreport: {result.run_dir / 'report.md'}")


@app.command()
def strategies(
    as_json: Annotated[bool, typer.Option("--json", help="Print the matrix as JSON.")] = False,
) -> None:
    """The fine-tuning strategies, what each trains, and which tasks each can train."""
    from tunewise import api
    from tunewise.strategies.compat import render

    data = api.strategy_matrix()
    typer.echo(json.dumps(data, indent=2) if as_json else render(data), nl=as_json)


@app.command()
def recommend(
    task: Annotated[str, typer.Option(help="Task type, e.g. classification.")],
    model: Annotated[str, typer.Option(help="Base model: alias, hub id or directory.")],
    train_size: Annotated[int | None, typer.Option(help="Training examples.")] = None,
    data: Annotated[Path | None, typer.Option(help="Training file (size, tokens).")] = None,
    memory_gb: Annotated[float | None, typer.Option(help="Memory budget for training.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    time_budget: Annotated[float | None, typer.Option(help="Seconds allowed per epoch.")] = None,
    max_length: Annotated[int, typer.Option(help="Tokens kept per example.")] = 128,
    epochs: Annotated[float, typer.Option(help="Planned passes over the data.")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the ranking as JSON.")] = False,
) -> None:
    """Rank the strategies for a task, data size, model and memory budget, with reasons."""
    from tunewise import api

    try:
        ranking = api.recommend(
            task, model, train_size, data, memory_gb, device, time_budget, max_length, epochs
        )
    except TunewiseError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(ranking, indent=2))
        return
    for i, r in enumerate(ranking, 1):
        if r["trainable_params"] is None:
            typer.echo(f"{i:>2}. {r['strategy']:<14} {r['reasons'][0]}")
            continue
        fits = "" if r["fits"] else "  (does not fit)"
        typer.echo(
            f"{i:>2}. {r['strategy']:<14} {r['trainable_params']:>12,} params  "
            f"~{r['est_peak_memory_gb']:.1f} GB  ~{r['est_epoch_seconds']:.0f} s/epoch{fits}"
        )
        for reason in r["reasons"][:-1]:
            typer.echo(f"      - {reason}")


@app.command()
def sweep(
    config: Annotated[Path, typer.Argument(help="YAML config file (the strategy is replaced).")],
    strategies: Annotated[str, typer.Option(help="Comma-separated, e.g. full,lora,bitfit.")],
    output_dir: Annotated[Path, typer.Option(help="Where entries and the report go.")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key.path=value overrides, e.g. training.epochs=2")
    ] = None,
) -> None:
    """Train CONFIG once per strategy (resumable) and compare: sweep.json, sweep.md, plots."""
    from tunewise import api

    names = [s.strip() for s in strategies.split(",") if s.strip()]
    try:
        rows = api.sweep(config, names, output_dir, overrides or [])
    except TunewiseError as exc:
        _fail(exc)
    failed = [r["strategy"] for r in rows if r["status"] != "ok"]
    typer.echo(
        f"sweep report: {output_dir / 'sweep.md'}" + (f" (failed: {failed})" if failed else "")
    )


from tunewise.data.cli import app as _data_app  # noqa: E402

app.add_typer(_data_app, name="data")


def main() -> None:
    try:
        app()
    except TunewiseError as exc:  # raised outside a command (e.g. while parsing)
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
