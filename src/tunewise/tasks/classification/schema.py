"""`data prepare` schema of classification records: `text` (+ `text_pair`) and a label (or a
list of labels)."""

from __future__ import annotations

from tunewise.data.schemas import Problem, Schema, SchemaSpec, label_str, text_problem


def check_record(record: dict, schema: Schema) -> Problem | None:
    problem = text_problem(record, "text") or text_problem(record, "text_pair", required=False)
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


SCHEMA = SchemaSpec(
    name="classification",
    aliases={"text": ("text", "sentence", "content"), "text_pair": (), "label": ()},
    check=check_record,
    text_fields=("text", "text_pair"),
    key_fields=("text", "text_pair"),
    label_field="label",
)
