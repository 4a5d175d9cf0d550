"""What a valid record looks like for a task, and which of its fields are text.

Each task declares its own schema (`Task.prepare_schema`, a `SchemaSpec` kept next to the task in
`tasks/<task>/schema.py`); `schema_for` finds it through the task registry. A schema checks one
record (after column mapping) and answers with the first problem as (field, what is wrong,
value) — the caller adds file and line. It also tells the pipeline which fields are free text
(cleaned, measured, deduplicated) and which field is the label (stratified splits, conflicting
duplicates). Fields tied to character or token positions (QA contexts, NER tokens) are never
rewritten, or their offsets would stop matching.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tunewise.errors import ConfigError, did_you_mean

Problem = tuple[str, str, Any]  # (field, what is wrong, value)


@dataclass(frozen=True)
class SchemaSpec:
    """What a task declares: field aliases, the record check and which fields are text."""

    name: str
    aliases: dict[str, tuple[str, ...]]  # canonical field → column names tried in order
    check: Callable[[dict[str, Any], Schema], Problem | None]
    text_fields: tuple[str, ...]  # free-text fields that cleaning may rewrite
    key_fields: tuple[str, ...]  # fields whose text identifies a record (dedup, lengths)
    label_field: str | None = None


@dataclass
class Schema:
    name: str
    aliases: dict[str, tuple[str, ...]]  # canonical field → column names tried in order
    check: Callable[[dict[str, Any], Schema], Problem | None]
    text_fields: tuple[str, ...]  # free-text fields that cleaning may rewrite
    key_fields: tuple[str, ...]  # fields whose text identifies a record (dedup, lengths)
    label_field: str | None = None
    labels: set[str] | None = field(default=None)  # allowed labels (None: any)
    columns: dict[str, str] = field(default_factory=dict)  # canonical → source column

    def rename(self, record: dict[str, Any]) -> dict[str, Any]:
        """Apply the column mapping (or the first alias present) to canonical field names."""
        for canonical, names in self.aliases.items():
            if canonical in record and canonical not in self.columns:
                continue
            candidates = [self.columns[canonical]] if canonical in self.columns else list(names)
            source = next((n for n in candidates if n in record), None)
            if source is not None and source != canonical:
                record[canonical] = record.pop(source)
        return record

    def text_of(self, record: dict[str, Any]) -> str:
        """The record's text as one string (tab-separated fields)."""
        parts = []
        for name in self.key_fields:
            value = record.get(name)
            if isinstance(value, list):
                value = " ".join(
                    str(v.get("content", "")) if isinstance(v, dict) else str(v) for v in value
                )
            if value is not None:
                parts.append(str(value))
        return "\t".join(parts)

    def map_texts(self, record: dict[str, Any], fn: Callable[[str], str]) -> dict[str, Any]:
        """`fn` applied to every free-text field (and message contents) of the record."""
        for name in self.text_fields:
            value = record.get(name)
            if isinstance(value, str):
                record[name] = fn(value)
            elif name == "messages" and isinstance(value, list):
                for message in value:
                    if isinstance(message, dict) and isinstance(message.get("content"), str):
                        message["content"] = fn(message["content"])
        return record

    def label_key(self, record: dict[str, Any]) -> str:
        """The label as one comparable string ('' when the task has none)."""
        if not self.label_field:
            return ""
        value = record.get(self.label_field)
        if isinstance(value, list):
            return json.dumps(sorted(label_str(v) for v in value))
        return label_str(value) if value is not None else ""


def label_str(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def text_problem(record: dict, name: str, required: bool = True) -> Problem | None:
    """A free-text field's problem (missing, not text, empty); numbers become text."""
    value = record.get(name)
    if value is None:
        return (name, "is missing", None) if required else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        record[name] = value = str(value)
    if not isinstance(value, str):
        return (name, f"should be text, not {type(value).__name__}", value)
    if not value.strip():
        return (name, "is empty", value)
    return None


# `data prepare --task` shorthands kept from before tasks declared their schemas.
TASK_ALIASES = {
    "ner": "token_classification",
    "qa": "extractive_qa",
    "question_answering": "extractive_qa",
    "seq2seq": "summarization",
    "causal_lm": "instruction",
    "sft": "instruction",
    "generation": "instruction",
}


def has_schema(task: str) -> bool:
    """True when the task (registry name or alias) declares a `data prepare` schema."""
    from tunewise.registry import TASKS

    name = TASK_ALIASES.get(task, task)
    return name in TASKS and getattr(TASKS.get(name), "prepare_schema", None) is not None


def schema_for(
    task: str, columns: dict[str, str] | None = None, labels: list[str] | None = None
) -> Schema:
    """The `data prepare` schema the task (a registry name, alias or dotted path) declares."""
    from tunewise.registry import TASKS

    name = TASK_ALIASES.get(task, task)
    if name not in TASKS and ":" not in name:
        known = [*TASKS.names(), *TASK_ALIASES]
        raise ConfigError(
            f"No data schema for task '{task}'{did_you_mean(task, known)}; known: "
            f"{', '.join(known)}."
        )
    spec: SchemaSpec | None = getattr(TASKS.get(name), "prepare_schema", None)
    if spec is None:
        raise ConfigError(
            f"Task '{task}' declares no data schema (its class sets no `prepare_schema`), so "
            "`data prepare` cannot check its records; prepare its files yourself."
        )
    unknown = [c for c in columns or {} if c not in spec.aliases]
    if unknown:
        raise ConfigError(
            f"data.prepare.columns: '{unknown[0]}' is not a field of {spec.name} records "
            f"(fields: {', '.join(spec.aliases)})."
        )
    return Schema(
        name=spec.name,
        aliases=spec.aliases,
        check=spec.check,
        text_fields=spec.text_fields,
        key_fields=spec.key_fields,
        label_field=spec.label_field,
        columns=dict(columns or {}),
        labels={label_str(x) for x in labels} if labels is not None else None,
    )
