"""The search space: parse `tune.space` (or the strategy's default), check every key path against
the config schema before any trial runs, sample a trial's values through Optuna's `suggest_*`,
and write them into a copy of the config."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from tunewise.config import Config, load_config
from tunewise.config_errors import format_validation_error
from tunewise.errors import ConfigError
from tunewise.tune.options import Distribution


def search_space(cfg: Config) -> dict[str, Distribution]:
    """`tune.space`, or the strategy's `default_search_space()` (batch size dropped when a token
    budget decides the batches)."""
    if cfg.tune is not None and cfg.tune.space:
        return dict(cfg.tune.space)
    from tunewise.registry import STRATEGIES

    raw = STRATEGIES.get(cfg.strategy.name).default_search_space()
    if cfg.training.max_tokens_per_batch:
        raw.pop("training.batch_size", None)
    try:
        return {key: Distribution.model_validate(value) for key, value in raw.items()}
    except ValidationError as exc:  # a strategy's own table is wrong: a bug, said plainly
        raise ConfigError(format_validation_error(exc, cfg.strategy.name, Distribution)) from None


def set_path(raw: dict[str, Any], path: str, value: Any) -> None:
    """raw["a"]["b"]["c"] = value for "a.b.c", creating sections on the way."""
    parts = path.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, str) and part in ("train", "validation", "test", "strategy"):
            child = node[part] = {"path" if part != "strategy" else "name": child}
        elif not isinstance(child, dict):
            raise ConfigError(f"tune.space: '{path}': '{part}' holds a value, not a section.")
        node = child
    node[parts[-1]] = value


def with_params(raw: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    for key, value in params.items():
        set_path(out, key, value)
    return out


def _samples(dist: Distribution) -> list[Any]:
    if dist.type == "categorical":
        return list(dist.choices or [])
    if dist.type == "int":
        return [int(dist.low or 0), int(dist.high or 0)]
    return [dist.low, dist.high]


def check_space(raw: dict[str, Any], space: dict[str, Distribution], where: str) -> None:
    """Every key path must exist in the config schema and accept every end of its range, so a
    typo fails now, naming `tune.space.<key>`, instead of in every trial."""
    if not space:
        raise ConfigError(f"{where}: tune.space is empty; name at least one key to search.")
    for key, dist in space.items():
        for value in _samples(dist):
            try:
                load_config(with_params(raw, {key: value}))
            except ConfigError as exc:
                raise ConfigError(
                    f"{where}: tune.space.{key} = {value!r} gives an invalid config: {exc}"
                ) from None


def suggest(trial: Any, space: dict[str, Distribution]) -> dict[str, Any]:
    """One trial's values, sampled by Optuna (its name for each is the key path)."""
    params: dict[str, Any] = {}
    for key, d in space.items():
        if d.type == "categorical":
            params[key] = trial.suggest_categorical(key, d.choices)
        elif d.type == "int":
            step = int(d.step) if d.step else 1
            params[key] = trial.suggest_int(key, int(d.low), int(d.high), step=step, log=d.log)
        else:
            log = d.type == "loguniform"
            params[key] = trial.suggest_float(key, d.low, d.high, log=log, step=d.step)
    return params
