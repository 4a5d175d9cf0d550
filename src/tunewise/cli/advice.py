"""`tunewise strategies` and `recommend`: which strategy fits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tunewise.cli._app import fail
from tunewise.errors import TunewiseError


def strategies(
    as_json: Annotated[bool, typer.Option("--json", help="Print the matrix as JSON.")] = False,
) -> None:
    """The fine-tuning strategies, what each trains, and which tasks each can train."""
    from tunewise import api
    from tunewise.strategies.compat import render

    data = api.strategy_matrix()
    typer.echo(json.dumps(data, indent=2) if as_json else render(data), nl=as_json)


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
        fail(exc)
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
