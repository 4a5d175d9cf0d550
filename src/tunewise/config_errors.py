"""pydantic's validation errors as one readable line per problem: the key path, what is wrong,
the value given, and a did-you-mean hint for unknown keys."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from tunewise.errors import did_you_mean


def format_validation_error(
    exc: ValidationError, where: str, model: type[BaseModel], prefix: str = ""
) -> str:
    """One readable line per problem: key path, what is wrong, the value given, a hint."""
    lines = []
    for err in exc.errors():
        loc = [
            str(p)
            for p in err["loc"]
            if str(p) not in ("str", "SplitFile") and not str(p).startswith("function-")
        ]
        loc = [p for p in loc if p not in ("list[str]", "dict[str,str]", "is-instance")]
        path = ".".join(([prefix] if prefix else []) + loc) or prefix or "(top level)"
        if err["type"] == "extra_forbidden":
            hint = did_you_mean(loc[-1], _fields_at(model, loc[:-1]))
            lines.append(f"unknown key '{path}'{hint}")
        elif err["type"] == "missing":
            lines.append(f"missing required key '{path}'")
        elif not loc:  # a check across keys: its message names them (the input is everything)
            lines.append(str(err["msg"]).removeprefix("Value error, "))
        else:
            lines.append(f"'{path}': {err['msg']} (got {err.get('input')!r})")
    unique = list(dict.fromkeys(lines))
    return f"Invalid config ({where}): " + "; ".join(unique) + "."


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the section at `loc`, for did-you-mean hints."""
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        current = next(
            (
                a
                for a in getattr(annotation, "__args__", (annotation,))
                if hasattr(a, "model_fields")
            ),
            annotation,
        )
    return list(getattr(current, "model_fields", {}))
