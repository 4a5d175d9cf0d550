"""docs/config.md, generated from the pydantic config models: every key of every section, of every
registered task's and strategy's options, with its type, default and one-line meaning.

    python -m tunewise.docs_gen            # rewrite docs/config.md
    python -m tunewise.docs_gen --check    # exit 1 when docs/config.md is stale

The meaning of a key is the comment written beside it in the source (or the comment block just
above it), so the models stay the one place a key is described. Reading those comments is
hand-written: pydantic only exposes `Field(description=...)`, which these models do not use.
"""

from __future__ import annotations

import inspect
import re
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

OUT = Path(__file__).resolve().parents[2] / "docs" / "config.md"
_FIELD = re.compile(r"^    (\w+)\s*:")


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name → its source comment, for `model` and the models it inherits from."""
    out: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            lines = inspect.getsource(cls).splitlines()[1:]
        except (OSError, TypeError):
            continue
        above: list[str] = []
        current: str | None = None
        for line in lines:
            stripped = line.strip()
            if stripped.startswith("#"):
                above.append(stripped.lstrip("#").strip())
                continue
            match = _FIELD.match(line)
            if match and match.group(1) in getattr(cls, "__annotations__", {}):
                current = match.group(1)
                beside = line.split("  # ", 1)[1].strip() if "  # " in line else ""
                text = beside or " ".join(above)
                if text or current not in out:  # an override without comment keeps the base's
                    out[current] = text
            elif current and line.startswith("        ") and "  # " in line and not out[current]:
                out[current] = line.split("  # ", 1)[1].strip()  # a wrapped definition
            elif not line.startswith("        "):
                current = None
            above = []
    return out


def _type(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "")
    text = re.sub(r"<class '([\w.]+)'>", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = re.sub(r"\b[\w.]+\.(\w+)", r"\1", text)
    return text.replace("NoneType", "None").replace("|", "\\|")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(section)"
        return f"`{value!r}`"
    if field.default is PydanticUndefined:
        return "**required**"
    return f"`{field.default!r}`"


def _doc(models: list[type[BaseModel]]) -> str:
    """First line of a section model's docstring."""
    doc = next((m.__doc__ for m in models if m.__doc__), "") or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    args = typing.get_args(annotation) or (annotation,)
    found = []
    for arg in args:
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            found.append(arg)
        elif typing.get_args(arg):
            found += _models_in(arg)
    return found


def section(model: type[BaseModel], prefix: str, skip: tuple[str, ...] = ()) -> list[str]:
    """A table of the model's keys, then a table per nested section."""
    comments = field_comments(model)
    lines = [f"### `{prefix}`" if prefix else "### top level", ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    nested = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        key = f"{prefix}.{name}" if prefix else name
        meaning = comments.get(name, "") or _doc(_models_in(field.annotation))
        meaning = meaning.replace("|", "\\|")
        lines.append(f"| `{key}` | {_type(field.annotation)} | {_default(field)} | {meaning} |")
        nested += [(key, m) for m in _models_in(field.annotation) if m.model_fields]
    lines.append("")
    seen: set[type] = set()
    for key, sub in nested:
        if sub.__name__ in ("TaskOptions", "StrategyOptions") or sub in seen:
            continue  # task / strategy options are documented per task / strategy below
        seen.add(sub)
        shared = [k for k, m in nested if m is sub]
        lines += section(sub, key if len(shared) == 1 else key.rsplit(".", 1)[0] + ".<split>")
    return lines


def render() -> str:
    from tunewise.config import Config
    from tunewise.registry import STRATEGIES, TASKS

    lines = [
        "# Configuration reference",
        "",
        "Generated by `python -m tunewise.docs_gen` from the pydantic models in `config.py`,",
        "`prepare_options.py` and every registered task's and strategy's `Options`; do not edit",
        "by hand (a test fails when this file is stale). `configs/` holds commented examples.",
        "",
        "## Sections",
        "",
        *section(Config, ""),
        "## Task options (`task:`)",
        "",
        "`task.type` picks the task; the other keys of `task:` are that task's options.",
        "",
    ]
    for name in TASKS.names():
        options = TASKS.get(name).Options
        lines += [f"#### `task.type: {name}`", ""]
        lines += section(options, "task", skip=("type",))[1:]
    lines += [
        "## Strategy options (`strategy:`)",
        "",
        "`strategy.name` picks the strategy; the other keys of `strategy:` are its options.",
        "",
    ]
    for name in STRATEGIES.names():
        options = STRATEGIES.get(name).Options
        lines += [f"#### `strategy.name: {name}`", ""]
        body = section(options, "strategy", skip=("name",))[1:]
        lines += body if len(body) > 4 else ["No options of its own.", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is stale: run `python -m tunewise.docs_gen`.")
            return 1
        return 0
    from tunewise.artifacts import atomic_write_text

    atomic_write_text(OUT, text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
