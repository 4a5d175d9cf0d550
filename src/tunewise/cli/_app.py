"""The typer application every command module registers on, and the one way commands fail."""

from __future__ import annotations

from typing import NoReturn

import typer

from tunewise.errors import TunewiseError

app = typer.Typer(
    help="Fine-tune pretrained language models, and pick the strategy that fits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(exc: TunewiseError) -> NoReturn:
    """Print one paragraph (no traceback) and exit with the error's status (2 for bad input)."""
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(exc.exit_code)
