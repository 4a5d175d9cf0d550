"""A run's data as plain records: the data pipeline's validation, canonical field names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunewise.config import SplitFile
from tunewise.errors import DataError


def canonical_records(path: str, task: str, spec: SplitFile | None) -> list[dict[str, Any]]:
    """Valid records of `path` with the pipeline's canonical field names (fails on a bad one)."""
    from tunewise.data.arrow import column
    from tunewise.data.schemas import has_schema, schema_for
    from tunewise.data.steps import process
    from tunewise.prepare_options import DedupOptions, PrepareConfig

    if not Path(path).is_file():
        raise DataError(f"data file '{path}' does not exist.")
    if not has_schema(task):  # no pipeline schema: the task's reader checks them later
        from tunewise.data.readers import read_records

        return [r for _, r in read_records(path, spec.format if spec else "auto")]
    columns: dict[str, str] = {}
    if spec is not None and task == "classification":
        for field, given in (("text", spec.text_column), ("text_pair", spec.text_pair_column)):
            if isinstance(given, str) and given != field:
                columns[field] = given
        if spec.label_column and spec.label_column != "label":
            columns["label"] = spec.label_column
    options = PrepareConfig(columns=columns, dedup=DedupOptions(exact=False, remove=False))
    fmt = spec.format if spec else "auto"
    p = process(path, schema_for(task, columns), options, fmt)
    return [json.loads(r) for r in column(p.rows, "record")]


def record_text(record: dict[str, Any], task: str) -> str:
    """A record's input text as one string (the schema's key fields; tab-separated)."""
    from tunewise.data.schemas import has_schema, schema_for

    if has_schema(task):
        schema = schema_for(task)
        keys = [k for k in schema.key_fields if k != schema.label_field]
        fields = {**record}
        schema.rename(fields)
        parts = [
            fields.get(k) for k in keys if k not in ("output", "response", "target", "summary")
        ]
        return "\t".join(
            " ".join(map(str, p)) if isinstance(p, list) else str(p) for p in parts if p
        )
    return "\t".join(str(v) for k, v in record.items() if isinstance(v, str) and k != "label")
