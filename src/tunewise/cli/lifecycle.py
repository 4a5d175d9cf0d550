"""`tunewise retrain` and `tunewise drift`: the model's life after training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunewise.cli._app import fail
from tunewise.errors import TunewiseError


def retrain(
    run: Annotated[Path, typer.Argument(help="Run directory to continue.")],
    data: Annotated[Path, typer.Option(help="New training data (e.g. from `data collect`).")],
    output_dir: Annotated[Path, typer.Option("--output-dir", help="The new run's directory.")],
    replay: Annotated[
        float, typer.Option(help="Share of the training mix drawn from RUN's own training data.")
    ] = 0.2,
    eval: Annotated[
        Path | None, typer.Option("--eval", help="Fixed evaluation file both runs are scored on.")
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Promote unless the metric is worse by more than this.")
    ] = 0.0,
    metric: Annotated[str | None, typer.Option(help="Metric compared (default: task's).")] = None,
    registry: Annotated[
        Path | None, typer.Option(help="Directory whose promoted.json names the promoted run.")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key.path=value overrides, e.g. training.epochs=1")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --output-dir.")] = False,
) -> None:
    """Continue RUN on new data with replay, compare old and new, promote if not worse."""
    from tunewise import api

    try:
        r = api.retrain(
            run,
            data,
            output_dir,
            replay,
            eval,
            threshold,
            metric,
            registry,
            overrides or [],
            overwrite,
        )
    except TunewiseError as exc:
        fail(exc)
    for name, row in r["sets"].items():
        typer.echo(
            f"{name}: {r['metric']} {row['old']:.4f} -> {row['new']:.4f} ({row['gain']:+.4f})"
        )
    verdict = "promoted" if r["promoted"] else f"not promoted (threshold {r['threshold']})"
    typer.echo(f"{output_dir}: {verdict}; comparison: {output_dir / 'comparison.md'}")


def drift(
    run: Annotated[Path, typer.Argument(help="Run directory that served the traffic.")],
    requests: Annotated[Path, typer.Option(help="Directory of `serve --log-requests`.")],
    output: Annotated[
        Path | None, typer.Option(help="Markdown report (a .json is written beside it).")
    ] = None,
) -> None:
    """Compare served traffic with the training data; recommend whether to retrain."""
    from tunewise import api

    try:
        report = api.drift(run, requests, output)
    except TunewiseError as exc:
        fail(exc)
    for line in report["findings"]:
        typer.echo(line)
    typer.echo(f"recommendation: {report['recommendation']}")
    if output:
        typer.echo(f"report: {output}")
