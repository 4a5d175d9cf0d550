"""What a valid record looks like for each task, and which of its fields are text.

A schema checks one record (after column mapping) and answers with the first problem as
(field, what is wrong, value) — the caller adds file and line. It also tells the pipeline which
fields are free text (cleaned, measured, deduplicated) and which field is the label (stratified
splits, conflicting duplicates). Fields tied to character or token positions (QA contexts, NER
tokens) are never rewritten, or their offsets would stop matching.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tunewise.errors import ConfigError, did_you_mean

Problem = tuple[str, str, Any]  # (field, what is wrong, value)


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


def _text(record: dict, name: str, required: bool = True) -> Problem | None:
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


def _classification(record: dict, schema: Schema) -> Problem | None:
    problem = _text(record, "text") or _text(record, "text_pair", required=False)
    if problem:
        return problem
    value = record.get("label")
    if value is None or (isinstance(value, str) and not value.strip()):
        return ("label", "is missing" if value is None else "is empty", value)
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, (dict, list)) or item is None:
            return ("label", "should be a label (text or number) or a list of labels", value)
        if schema.labels is not None and label_str(item) not in schema.labels:
            allowed = ", ".join(sorted(schema.labels))
            return ("label", f"is an unknown label (allowed: {allowed})", item)
    return None


def _tokens(record: dict, schema: Schema) -> Problem | None:
    tokens, tags = record.get("tokens"), record.get("tags")
    for name, value in (("tokens", tokens), ("tags", tags)):
        if value is None:
            return (name, "is missing", None)
        if not isinstance(value, list) or not value:
            return (name, "should be a non-empty list", value)
    assert isinstance(tokens, list) and isinstance(tags, list)
    if not all(isinstance(t, str) and t for t in tokens):
        return ("tokens", "should hold non-empty strings", tokens)
    if len(tags) != len(tokens):
        return ("tags", f"has {len(tags)} tags for {len(tokens)} tokens", tags)
    if schema.labels is not None:
        unknown = [t for t in tags if label_str(t) not in schema.labels]
        if unknown:
            return ("tags", "holds an unknown tag", unknown[0])
    return None


def _qa(record: dict, schema: Schema) -> Problem | None:
    problem = _text(record, "question") or _text(record, "context")
    if problem:
        return problem
    answers = record.get("answers")
    if answers is None:
        return ("answers", "is missing", None)
    if isinstance(answers, list):  # [{"text", "answer_start"}, ...] → the HF squad layout
        if not all(isinstance(a, dict) for a in answers):
            return ("answers", "should be {text: [...], answer_start: [...]}", answers)
        answers = {
            "text": [a.get("text") for a in answers],
            "answer_start": [a.get("answer_start") for a in answers],
        }
        record["answers"] = answers
    if not isinstance(answers, dict) or not isinstance(answers.get("text"), list):
        return ("answers", "should be {text: [...], answer_start: [...]}", answers)
    starts = answers.get("answer_start") or []
    if len(starts) != len(answers["text"]):
        return ("answers", "has different numbers of texts and answer_starts", answers)
    context = record["context"]
    for text, start in zip(answers["text"], starts, strict=True):
        if not isinstance(text, str) or not isinstance(start, int) or isinstance(start, bool):
            return ("answers", "needs text strings and integer answer_starts", answers)
        if context[start : start + len(text)] != text:
            found = context.find(text)
            where = f"; it occurs at {found}" if found >= 0 else " and nowhere else in it"
            return ("answers", f"text is not in the context at {start}{where}", text)
    return None


def _seq2seq(record: dict, schema: Schema) -> Problem | None:
    return _text(record, "source") or _text(record, "target")


_ROLES = {"system", "user", "assistant", "tool", "human", "gpt"}


def _chat(record: dict, schema: Schema) -> Problem | None:
    messages = record.get("messages")
    if messages is not None:
        if not isinstance(messages, list) or not messages:
            return ("messages", "should be a non-empty list of {role, content}", messages)
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in _ROLES:
                return (f"messages[{i}].role", f"should be one of {sorted(_ROLES)}", m)
            if not isinstance(m.get("content"), str) or not m["content"].strip():
                return (f"messages[{i}].content", "is missing or empty", m.get("content"))
        return None
    if "instruction" in record:
        return _text(record, "instruction") or _text(record, "output")
    if "prompt" in record:
        return _text(record, "prompt") or _text(record, "response")
    if "text" in record:
        return _text(record, "text")
    return ("messages", "is missing (or instruction/output, prompt/response, text)", None)


_CHAT_TEXT = ("messages", "instruction", "input", "output", "prompt", "response", "text")
SCHEMAS: dict[str, dict[str, Any]] = {
    "classification": {
        "aliases": {"text": ("text", "sentence", "content"), "text_pair": (), "label": ()},
        "check": _classification,
        "text_fields": ("text", "text_pair"),
        "key_fields": ("text", "text_pair"),
        "label_field": "label",
    },
    "token_classification": {
        "aliases": {"tokens": ("words",), "tags": ("ner_tags", "labels")},
        "check": _tokens,
        "text_fields": (),
        "key_fields": ("tokens",),
    },
    "extractive_qa": {
        "aliases": {"context": (), "question": (), "answers": ()},
        "check": _qa,
        "text_fields": ("question",),
        "key_fields": ("question", "context"),
    },
    "seq2seq": {
        "aliases": {
            "source": ("document", "article", "input", "src"),
            "target": ("summary", "highlights", "tgt"),
        },
        "check": _seq2seq,
        "text_fields": ("source", "target"),
        "key_fields": ("source", "target"),
    },
    "chat": {
        "aliases": {"messages": ("conversations",)},
        "check": _chat,
        "text_fields": _CHAT_TEXT,
        "key_fields": _CHAT_TEXT,
    },
}
_TASK_SCHEMA = {
    "classification": "classification",
    "ner": "token_classification",
    "token_classification": "token_classification",
    "qa": "extractive_qa",
    "extractive_qa": "extractive_qa",
    "question_answering": "extractive_qa",
    "summarization": "seq2seq",
    "translation": "seq2seq",
    "seq2seq": "seq2seq",
    "chat": "chat",
    "causal_lm": "chat",
    "instruction": "chat",
    "sft": "chat",
    "generation": "chat",
}


def schema_for(
    task: str, columns: dict[str, str] | None = None, labels: list[str] | None = None
) -> Schema:
    name = _TASK_SCHEMA.get(task)
    if name is None:
        raise ConfigError(
            f"No data schema for task '{task}'{did_you_mean(task, _TASK_SCHEMA)}; known: "
            f"{', '.join(_TASK_SCHEMA)}."
        )
    spec = SCHEMAS[name]
    unknown = [c for c in columns or {} if c not in spec["aliases"]]
    if unknown:
        raise ConfigError(
            f"data.prepare.columns: '{unknown[0]}' is not a field of {name} records "
            f"(fields: {', '.join(spec['aliases'])})."
        )
    return Schema(
        name=name,
        columns=dict(columns or {}),
        labels={label_str(x) for x in labels} if labels is not None else None,
        **spec,
    )
