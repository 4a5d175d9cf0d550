"""The `tunewise` command line: thin wrappers over `tunewise.api`, one module per command group.

Errors the user can fix (TunewiseError) print one paragraph and exit with status 2. A new command
is one module here plus one import line below.
"""

from __future__ import annotations

import sys

import typer

from tunewise.cli import advice, evaluate, export, lifecycle, predict, serve, train, ui
from tunewise.cli import tune as tune_cli
from tunewise.cli._app import app
from tunewise.cli.data import app as data_app
from tunewise.errors import TunewiseError

# The command table, in the order `tunewise --help` lists it.
app.command()(train.train)
app.command("eval")(evaluate.eval_)
app.command()(predict.predict)
app.command()(train.quickstart)
app.command()(advice.strategies)
app.command()(advice.recommend)
app.command()(train.sweep)
app.command()(export.export)
app.command()(serve.serve)
app.command()(tune_cli.tune)
app.add_typer(data_app, name="data")
app.command()(lifecycle.retrain)
app.command()(lifecycle.drift)
app.command()(ui.ui)

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except TunewiseError as exc:  # raised outside a command (e.g. while parsing)
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)
