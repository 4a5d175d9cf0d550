"""`data prepare` schema of token-classification records: `tokens` and one tag per token.
Tokens are never rewritten (tags are aligned to them)."""

from __future__ import annotations

from tunewise.data.schemas import Problem, Schema, SchemaSpec, label_str


def check_record(record: dict, schema: Schema) -> Problem | None:
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


SCHEMA = SchemaSpec(
    name="token_classification",
    aliases={"tokens": ("words",), "tags": ("ner_tags", "labels")},
    check=check_record,
    text_fields=(),
    key_fields=("tokens",),
)
