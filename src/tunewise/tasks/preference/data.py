"""Preference records → rows {messages (the prompt turns), chosen, rejected, line}.

Accepted shapes (field names can be remapped with `task.fields`, {canonical: name in file}):
- `{prompt: str, chosen: str, rejected: str}`;
- chat: `{chosen: [messages], rejected: [messages]}` with the same turns up to a final assistant
  turn each (the two candidates), or `{prompt: [messages], chosen: [assistant turn(s)],
  rejected: [...]}` (TRL's conversational format); turns are {role, content} or ShareGPT.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunewise.errors import DataError
from tunewise.tasks.generation.readers import Row, _loc, _turn, read_rows, text_field


def _turns(value: Any, key: str, path: Any, line: int) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user" if key == "prompt" else "assistant", "content": value}]
    if not isinstance(value, list) or not value:
        raise DataError(
            f"{_loc(path, line)}: field '{key}' must be text or a non-empty list of turns "
            f"(got {value!r:.60})."
        )
    return [_turn(t, i, key, path, line) for i, t in enumerate(value)]


def preference_row(
    rec: Mapping[str, Any], path: Any, line: int, fields: Mapping[str, str], labelled: bool
) -> Row:
    f = {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected", **fields}
    if not labelled:
        if f["prompt"] not in rec:
            text_field(rec, f["prompt"], path, line)  # raises: names the missing field
        return {
            "messages": _turns(rec[f["prompt"]], "prompt", path, line),
            "chosen": "",
            "rejected": "",
        }
    for key in ("chosen", "rejected"):
        if f[key] not in rec:
            have = ", ".join(f"'{k}'" for k in rec) or "no fields"
            raise DataError(
                f"{_loc(path, line)}: field '{f[key]}' is missing (record has {have}); preference "
                "records hold prompt/chosen/rejected."
            )
    chosen = _turns(rec[f["chosen"]], "chosen", path, line)
    rejected = _turns(rec[f["rejected"]], "rejected", path, line)
    if f["prompt"] in rec:
        prompt = _turns(rec[f["prompt"]], "prompt", path, line)
    else:  # full conversations: the shared turns are the prompt
        if chosen[:-1] != rejected[:-1]:
            raise DataError(
                f"{_loc(path, line)}: 'chosen' and 'rejected' must share every turn but the last "
                "(the two candidate answers), or give the shared turns as 'prompt'."
            )
        prompt, chosen, rejected = chosen[:-1], chosen[-1:], rejected[-1:]
    for key, turns in (("chosen", chosen), ("rejected", rejected)):
        if len(turns) != 1 or turns[0]["role"] != "assistant" or not turns[0]["content"].strip():
            raise DataError(
                f"{_loc(path, line)}: '{key}' must end in exactly one non-empty assistant answer."
            )
    if not prompt or prompt[-1]["role"] != "user":
        raise DataError(f"{_loc(path, line)}: the prompt must end with a user turn.")
    return {"messages": prompt, "chosen": chosen[0]["content"], "rejected": rejected[0]["content"]}


def read_preferences(path: Any, fmt: str | None = "auto", **kw: Any) -> list[Row]:
    return read_rows(path, preference_row, fmt, **kw)
