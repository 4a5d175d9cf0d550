"""Where a config's raw mapping comes from: a YAML file, checked for the ways a file can be wrong,
and `key.path=value` overrides from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tunewise.errors import ConfigError


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file; ConfigError naming the file for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file '{path}' does not exist (looked from {Path.cwd()}).")
    if path.is_dir():
        raise ConfigError(f"Config file '{path}' is a directory; give the YAML file inside it.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"Config file '{path}' is not UTF-8 text (line {line}); re-save it as UTF-8."
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file '{path}' is not valid YAML: {exc}") from None
    if raw is None:
        raise ConfigError(f"Config file '{path}' is empty.")
    if not isinstance(raw, dict):
        raise ConfigError(f"Config file '{path}' must hold a mapping of sections, not {raw!r}.")
    return raw


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set `a.b.c=value` in a nested dict; the value is parsed as YAML (numbers, lists, null)."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"Override '{item}' must look like key.path=value (e.g. training.epochs=2)."
        )
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, str) and part in ("train", "validation", "test"):
            child = node[part] = {"path": child}
        elif not isinstance(child, dict):
            raise ConfigError(f"Override '{item}': '{part}' holds a value, not a section.")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(value)
    except yaml.YAMLError:
        node[parts[-1]] = value
