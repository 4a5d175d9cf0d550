"""User-facing errors.

Anything the user can fix (a config key, a data record, a missing file) raises `TunewiseError`
with one paragraph that names the file, record and field. The CLI prints it and exits with
status 2 instead of showing a stack trace; the Python API lets it propagate.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TunewiseError(Exception):
    """An error caused by input the user controls; `exit_code` is what the CLI exits with."""

    exit_code = 2


class ConfigError(TunewiseError):
    """The configuration is invalid (unknown key, bad type, bad value)."""


class DataError(TunewiseError):
    """A data file is missing, unreadable or holds a bad record."""


class ModelLoadError(TunewiseError):
    """A base model could not be loaded (unreachable hub id, bad local path)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""
