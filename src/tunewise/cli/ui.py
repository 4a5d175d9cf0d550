"""`tunewise ui`: the browser workbench."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def ui(
    workspace: Annotated[
        Path, typer.Option(help="Directory for runs, prepared data and sweeps.")
    ] = Path("."),
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 7860,
    max_running: Annotated[int, typer.Option(help="Runs that train at the same time.")] = 1,
) -> None:
    """Open the workbench: prepare data, get advice, train, watch, compare, try the model."""
    from tunewise.ui import launch

    typer.echo(f"tunewise ui: http://{host}:{port} (workspace {workspace.resolve()})")
    launch(workspace, host, port, max_running)
