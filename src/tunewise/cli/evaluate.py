"""`tunewise eval`: a run's (or a base model's) metrics on a labelled file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tunewise.cli._app import fail
from tunewise.errors import TunewiseError


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
        str | None,
        typer.Option(help="Task type for --model (e.g. instruction); with RUN: a multi-task head."),
    ] = None,
    perturb: Annotated[
        str | None,
        typer.Option(help="Also score seeded perturbations: typos,synonyms,case,punctuation."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the --perturb perturbations.")] = 42,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Config override for --model, e.g. model.max_length=512."),
    ] = None,
    trust_remote_code: Annotated[
        bool,
        typer.Option(help="Allow the run's model to execute its own code (only if you trust it)."),
    ] = False,
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
            metrics = api.evaluate(
                run,
                data,
                output,
                trust_remote_code=trust_remote_code,
                perturb=perturb,
                seed=seed,
                task=task,
            )
    except TunewiseError as exc:
        fail(exc)
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    for kind, values in metrics.get("perturbed", {}).items():
        shown[kind] = {k: v for k, v in values.items() if isinstance(v, (int, float))}
    typer.echo(json.dumps(shown, indent=2))
