"""`tunewise predict`: predictions for texts or a file of inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tunewise.cli._app import fail
from tunewise.errors import TunewiseError


def predict(
    run: Annotated[Path, typer.Argument(help="Run directory from `tunewise train`.")],
    text: Annotated[list[str] | None, typer.Option(help="Text to classify (repeatable).")] = None,
    input: Annotated[
        Path | None,
        typer.Option(help="JSONL/CSV/TSV file of inputs (QA: 'question' and 'context' fields)."),
    ] = None,
    output: Annotated[Path | None, typer.Option(help="JSONL file for the predictions.")] = None,
    batch_size: Annotated[int, typer.Option(help="Examples per forward pass.")] = 64,
    text_column: Annotated[
        str | None, typer.Option(help="Field of --input that holds the text (default: text).")
    ] = None,
    trust_remote_code: Annotated[
        bool,
        typer.Option(help="Allow the run's model to execute its own code (only if you trust it)."),
    ] = False,
) -> None:
    """Predict for --text values or every record of --input (order kept)."""
    from tunewise import api

    if not text and not input:
        fail(TunewiseError("Give --text TEXT (repeatable) or --input FILE."))
    if text and any(not t.strip() for t in text):
        fail(TunewiseError("--text is empty; give the text to predict for."))
    if batch_size < 1:
        fail(TunewiseError(f"--batch-size must be a positive number, not {batch_size}."))
    try:
        if output:
            from tunewise.artifacts import check_writable_file

            check_writable_file(output, "--output")
        predictor = api.load(run, trust_remote_code=trust_remote_code)
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
            dataset = predictor.read(input, labelled=False, text_column=text_column)
            fields = predictor.task.predict_fields  # what the task's `predict` reads
            records: list[Any] = [
                {k: dataset[i][k] for k in fields if k in dataset.column_names}
                for i in range(len(dataset))
            ]
        else:
            records = [{"text": t} for t in text or []]
        preds = predictor.predict(records, batch_size=batch_size, progress=bool(input))
    except TunewiseError as exc:
        fail(exc)
    lines = [json.dumps(p, ensure_ascii=False) for p in preds]
    if output:
        from tunewise.artifacts import atomic_write_text

        try:
            atomic_write_text(output, "\n".join(lines) + "\n")
        except (TunewiseError, OSError) as exc:
            fail(TunewiseError(f"Cannot write --output '{output}': {exc}"))
        typer.echo(f"{len(lines)} predictions written to {output}")
    else:
        for record, line in zip(records, lines, strict=True):
            typer.echo(line if input else f"{record['text']!r} -> {line}")
