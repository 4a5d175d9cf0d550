"""The Train form and the config it stands for: form values → config dict → YAML, and back.
Validation is the CLI's own (`tunewise.api.check_config`: the config loader plus the strategy ×
task check), so the page shows exactly the messages `tunewise train` prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tunewise.errors import ConfigError

# The form's fields, in the order the Train tab lays them out and its callbacks receive them.
FIELDS = (
    "model_name",
    "max_length",
    "task_type",
    "task_options",
    "train_path",
    "validation_path",
    "text_column",
    "label_column",
    "strategy_name",
    "strategy_options",
    "epochs",
    "batch_size",
    "learning_rate",
    "max_steps",
    "max_train_samples",
    "logging_steps",
    "seed",
    "output_dir",
)

DEFAULTS: dict[str, Any] = {
    "model_name": "minilm",
    "max_length": 128,
    "task_type": "classification",
    "task_options": "",
    "train_path": "",
    "validation_path": "",
    "text_column": "text",
    "label_column": "label",
    "strategy_name": "lora",
    "strategy_options": "",
    "epochs": 3.0,
    "batch_size": 32,
    "learning_rate": None,
    "max_steps": None,
    "max_train_samples": None,
    "logging_steps": 10,
    "seed": 42,
    "output_dir": "runs/run-1",
}


def _mapping(text: str | None, what: str) -> dict[str, Any]:
    """A `key: value` block typed into the form (task or strategy options)."""
    if not text or not text.strip():
        return {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} is not valid YAML: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a mapping of key: value lines, not {value!r}.")
    return value


def _number(value: Any) -> Any:
    """Gradio numbers come as floats (or None when empty); whole ones become ints."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def form_to_raw(values: dict[str, Any], workspace: Path) -> dict[str, Any]:
    """The config dict the form describes; relative paths are taken from the workspace."""
    v = {**DEFAULTS, **values}
    data: dict[str, Any] = {"train": _path(v["train_path"], workspace)}
    if v["validation_path"]:
        data["validation"] = _path(v["validation_path"], workspace)
    if v["text_column"] and v["text_column"] != "text":
        data["text_column"] = v["text_column"]
    if v["label_column"] and v["label_column"] != "label":
        data["label_column"] = v["label_column"]
    training = {
        "epochs": _number(v["epochs"]),
        "batch_size": _number(v["batch_size"]),
        # an empty number box comes back as 0, which none of these accepts: 0 means "unset"
        "learning_rate": _number(v["learning_rate"]) or None,
        "max_steps": _number(v["max_steps"]) or None,
        "max_train_samples": _number(v["max_train_samples"]) or None,
        "logging_steps": _number(v["logging_steps"]),
    }
    return {
        "model": {"name": v["model_name"], "max_length": _number(v["max_length"])},
        "task": {"type": v["task_type"], **_mapping(v["task_options"], "Task options")},
        "data": data,
        "strategy": {
            "name": v["strategy_name"],
            **_mapping(v["strategy_options"], "Strategy options"),
        },
        "training": {k: x for k, x in training.items() if x is not None},
        "output_dir": _path(v["output_dir"], workspace),
        "seed": _number(v["seed"]),
    }


def _path(value: str | None, workspace: Path) -> str:
    if not value:
        return ""
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else Path(workspace) / p)


def _short(value: str, workspace: Path) -> str:
    try:
        return str(Path(value).relative_to(workspace))
    except ValueError:
        return value


def raw_to_form(raw: dict[str, Any], workspace: Path) -> dict[str, Any]:
    """Form values for a config dict (e.g. a loaded YAML); unset fields keep the defaults."""
    cfg = dict(raw)
    for key, sub in (("strategy", "name"), ("task", "type")):  # `strategy: lora` shorthand
        if isinstance(cfg.get(key), str):
            cfg[key] = {sub: cfg[key]}
    model, task = cfg.get("model") or {}, dict(cfg.get("task") or {})
    strategy, data = dict(cfg.get("strategy") or {}), cfg.get("data") or {}
    training = cfg.get("training") or {}

    def split(name: str) -> str:
        spec = data.get(name)
        return str(spec.get("path", "")) if isinstance(spec, dict) else str(spec or "")

    task_type, strategy_name = task.pop("type", "classification"), strategy.pop("name", "lora")
    text_column = data.get("text_column", "text")
    values = {
        "model_name": model.get("name", DEFAULTS["model_name"]),
        "max_length": model.get("max_length", DEFAULTS["max_length"]),
        "task_type": task_type,
        "task_options": yaml.safe_dump(task, sort_keys=False).strip() if task else "",
        "train_path": split("train"),
        "validation_path": split("validation"),
        "text_column": text_column if isinstance(text_column, str) else text_column[0],
        "label_column": data.get("label_column", "label"),
        "strategy_name": strategy_name,
        "strategy_options": yaml.safe_dump(strategy, sort_keys=False).strip() if strategy else "",
        **{
            k: training.get(k, DEFAULTS[k])
            for k in (
                "epochs",
                "batch_size",
                "learning_rate",
                "max_steps",
                "max_train_samples",
                "logging_steps",
            )
        },
        "seed": cfg.get("seed", DEFAULTS["seed"]),
        "output_dir": _short(str(cfg.get("output_dir", DEFAULTS["output_dir"])), workspace),
    }
    return values


def check(raw: dict[str, Any]) -> str:
    """The config as YAML once it passes the CLI's validation; ConfigError otherwise."""
    from tunewise import api

    if not raw["data"]["train"]:
        raise ConfigError("Invalid config (form): missing required key 'data.train'.")
    api.check_config(raw)
    return to_yaml(raw)


def to_yaml(raw: dict[str, Any]) -> str:
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


def load_yaml_file(path: Path) -> dict[str, Any]:
    """A YAML config file read and validated like `tunewise train FILE` reads it; returns the
    file's own mapping (not the resolved defaults), for filling the form."""
    from tunewise.config import load_config

    load_config(path)  # same errors as the CLI: missing file, bad YAML, unknown keys, types
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def options_help(kind: str, name: str) -> str:
    """The options the chosen task or strategy accepts, with their defaults (Markdown)."""
    from tunewise.registry import STRATEGIES, TASKS

    registry = TASKS if kind == "task" else STRATEGIES
    try:
        fields = registry.get(name).Options.model_fields
    except ConfigError as exc:
        return str(exc)
    skip = {"type", "name"}
    items = [f"`{k}: {f.default!r}`" for k, f in fields.items() if k not in skip]
    return f"{kind} `{name}` options: " + (", ".join(items) if items else "none")
