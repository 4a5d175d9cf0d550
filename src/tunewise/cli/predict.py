"""`tunewise predict`: predictions for texts or a file of inputs (streamed, resumable)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

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
    output: Annotated[
        Path | None,
        typer.Option(help="JSONL file for the predictions (bad records: OUTPUT.rejects.jsonl)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Examples per forward pass.")] = 64,
    text_column: Annotated[
        str | None, typer.Option(help="Field of --input that holds the text (default: text).")
    ] = None,
    trust_remote_code: Annotated[
        bool,
        typer.Option(help="Allow the run's model to execute its own code (only if you trust it)."),
    ] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted --output after its last complete line.")
    ] = False,
    window: Annotated[
        int, typer.Option(help="Records read at a time and sorted by length into batches.")
    ] = 4096,
    task: Annotated[str | None, typer.Option(help="The head to use, for a multi-task run.")] = None,
) -> None:
    """Predict for --text values or every record of --input: one output line per good input
    record, in input order, with its input line number as "line"."""
    from tunewise import api

    if not text and not input:
        fail(TunewiseError("Give --text TEXT (repeatable) or --input FILE."))
    if text and any(not t.strip() for t in text):
        fail(TunewiseError("--text is empty; give the text to predict for."))
    if batch_size < 1:
        fail(TunewiseError(f"--batch-size must be a positive number, not {batch_size}."))
    if resume and not output:
        fail(TunewiseError("--resume continues an --output file; give --output FILE."))
    try:
        if output:
            from tunewise.artifacts import check_writable_file

            check_writable_file(output, "--output")
        if input:
            report = api.predict_file(
                run,
                input,
                output,
                resume=resume,
                batch_size=batch_size,
                window=window,
                text_column=text_column,
                trust_remote_code=trust_remote_code,
                task=task,
            )
            if output:
                done = f"{report['written']} predictions written to {output}"
                if report["rejected"]:
                    done += f"; {report['rejected']} rejected records in {report['rejects']}"
                if report["resumed_after"] is not None:
                    done += f" (resumed after input line {report['resumed_after']})"
                typer.echo(done)
            return
        predictor = api.load(run, trust_remote_code=trust_remote_code, task=task)
        if text and len(text) == 1 and not output and hasattr(predictor.task, "generate"):
            predictor.stream(text[0])  # tokens are printed as they are generated
            typer.echo("")
            return
        preds = predictor.predict([{"text": t} for t in text or []], batch_size=batch_size)
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
        for t, line in zip(text or [], lines, strict=True):
            typer.echo(f"{t!r} -> {line}")
