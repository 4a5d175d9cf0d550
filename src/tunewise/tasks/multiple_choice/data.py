"""Multiple-choice records and batches: field lookup, candidate and gold-answer validation with
errors that name file, line and field, and the collator for examples with different numbers of
candidates."""

from __future__ import annotations

from typing import Any

import torch

from tunewise.data.readers import where
from tunewise.errors import DataError


class ChoiceCollator:
    """Pads a batch to (examples, most candidates, longest candidate): candidates are padded
    with the tokenizer, absent candidates are all-padding rows with an all-zero attention mask.

    Hand-written because transformers' DataCollatorForMultipleChoice assumes every example has
    the same number of candidates.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in features[0]]
        width = max(len(f["input_ids"]) for f in features)
        flat = []
        for f in features:
            n = len(f["input_ids"])
            flat += [{k: f[k][j] for k in keys} for j in range(n)]
            flat += [{k: [0] for k in keys}] * (width - n)  # placeholder, masked out below
        batch = self.tokenizer.pad(flat, return_tensors="pt")
        present = torch.tensor([j < len(f["input_ids"]) for f in features for j in range(width)])
        batch["attention_mask"][~present] = 0
        batch["input_ids"][~present] = self.tokenizer.pad_token_id
        out = {k: v.reshape(len(features), width, -1) for k, v in batch.items() if k in keys}
        if "labels" in features[0]:
            out["labels"] = torch.tensor([int(f["labels"]) for f in features])
        return out


def locate(path: str, line: int) -> str:
    return f"record {line}" if path == "input" else where(path, line)


def pick_field(names: str | list[str], first: dict, path: str, key: str) -> str:
    options = [names] if isinstance(names, str) else list(names)
    for name in options:
        if name in first:
            return name
    have = ", ".join(f"'{k}'" for k in first) or "no fields"
    raise DataError(
        f"{path}: no field {' or '.join(repr(n) for n in options)}; the records have {have}. "
        f"Set task.{key}."
    )


def text_of(rec: dict, field: str, loc: str) -> str:
    value = rec.get(field)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{loc}: field '{field}' is missing or empty (got {value!r}).")
    return value


def candidates_of(rec: dict, field: str, loc: str) -> list[str]:
    value = rec.get(field)
    if isinstance(value, dict) and isinstance(value.get("text"), list):
        value = value["text"]  # ARC / CommonsenseQA style {"label": [...], "text": [...]}
    if not isinstance(value, list) or len(value) < 2:
        raise DataError(
            f"{loc}: field '{field}' must be a list of at least two candidates (got {value!r})."
        )
    out = []
    for j, item in enumerate(value):
        text = item.get("text") if isinstance(item, dict) else item
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            text = str(text)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{loc}: candidate {j} of '{field}' is empty or not text ({item!r}).")
        out.append(text)
    return out


def gold_index(rec: dict, field: str, choices: list[str], loc: str) -> int:
    """The gold candidate's index, from an index, the candidate's text or a letter (A = 0)."""
    value = rec.get(field)
    n = len(choices)
    if isinstance(value, bool) or value is None:
        raise DataError(f"{loc}: field '{field}' (the gold answer) is missing (got {value!r}).")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        if 0 <= value < n:
            return value
        raise DataError(
            f"{loc}: field '{field}' is index {value}, but there are {n} candidates (0-{n - 1})."
        )
    if isinstance(value, str):
        stripped = [c.strip() for c in choices]
        if value.strip() in stripped:
            return stripped.index(value.strip())
        letter = value.strip().upper()
        if len(letter) == 1 and "A" <= letter < chr(ord("A") + n):
            return ord(letter) - ord("A")
    raise DataError(
        f"{loc}: the gold answer {value!r} (field '{field}') is not among the {n} candidates "
        "(give its index, its exact text, or a letter A, B, ...)."
    )
