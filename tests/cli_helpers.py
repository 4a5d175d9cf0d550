"""Running the CLI in-process for tests of bad input: the exit status and output, checked to be
free of tracebacks; `failure` also checks the exit-2 error contract."""

from __future__ import annotations

from typer.testing import CliRunner

from tunewise.cli import app


def cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def failure(*args: object) -> str:
    code, output = cli(*args)
    assert code == 2, output
    assert "error: " in output
    return output
