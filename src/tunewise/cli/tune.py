"""`tunewise tune`: hyperparameter search on Optuna (see tunewise.tune.study)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunewise.cli._app import fail
from tunewise.errors import TunewiseError


def tune(
    config: Annotated[Path, typer.Argument(help="YAML config; `tune:` holds the search space.")],
    trials: Annotated[int, typer.Option(help="Trials the study should hold in total.")],
    output_dir: Annotated[Path, typer.Option(help="Trials, report, best.yaml (and study.db).")],
    storage: Annotated[
        str | None,
        typer.Option(help="Optuna storage shared by workers: RDB URL or a .log/.journal file."),
    ] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default: config name).")] = None,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key.path=value overrides, e.g. training.epochs=2")
    ] = None,
) -> None:
    """Search hyperparameters with Optuna; run it again on the same storage to add workers."""
    from tunewise import api

    try:
        result = api.tune(config, trials, output_dir, storage, study, overrides or [])
    except TunewiseError as exc:
        fail(exc)
    states = [r["state"] for r in result.trials]
    typer.echo(
        f"study '{result.study_name}': {len(states)} trials ("
        + ", ".join(f"{states.count(s)} {s}" for s in ("complete", "pruned", "fail"))
        + f"); report: {output_dir / 'report.md'}"
    )
    if result.best:
        typer.echo(
            f"best: trial {result.best['number']} {result.metric}={result.best['value']:.4f} "
            f"→ {output_dir / 'best.yaml'}"
        )
