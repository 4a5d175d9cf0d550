"""`tunewise predict`: predictions for texts or a file of inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tunewise.cli._app import fail
from tunewise.errors import TunewiseError

# Fields of an --input record that tasks predict from (classification: text / text_pair;
# extractive QA: question + context).
PREDICT_INPUT_FIELDS = ("text", "text_pair", "question", "context")
# generation tasks: instruction (+input), chat messages, summarization document, translation source
PREDICT_INPUT_FIELDS += ("instruction", "input", "messages", "document", "source")
# multiple choice: question (+ context, already joined by the reader) and its candidates
PREDICT_INPUT_FIELDS += ("choices",)


def predict(
    run: Annotated[Path, typer.Argument(help="Run directory from `tunewise train`.")],
    text: Annotated[list[str] | None, typer.Option(help="Text to classify (repeatable).")] = None,
    input: Annotated[
        Path | None,
        typer.Option(help="JSONL/CSV/TSV file of inputs (QA: 'question' and 'context' fields)."),
    ] = None,
    output: Annotated[Path | None, typer.Option(help="JSONL file for the predictions.")] = None,
    batch_size: Annotated[int, typer.Option(help="Examples per forward pass.")] = 64,
    task: Annotated[str | None, typer.Option(help="The head to use, for a multi-task run.")] = None,
) -> None:
    """Predict for --text values or every record of --input (order kept)."""
    from tunewise import api

    if not text and not input:
        fail(TunewiseError("Give --text TEXT (repeatable) or --input FILE."))
    try:
        predictor = api.load(run, task=task)
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
        fail(exc)
    lines = [json.dumps(p, ensure_ascii=False) for p in preds]
    if output:
        from tunewise.artifacts import atomic_write_text

        atomic_write_text(output, "\n".join(lines) + "\n")
        typer.echo(f"{len(lines)} predictions written to {output}")
    else:
        for record, line in zip(records, lines, strict=True):
            typer.echo(line if input else f"{record['text']!r} -> {line}")
