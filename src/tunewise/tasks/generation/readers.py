"""Readers for text-to-text data: Alpaca instructions, chat transcripts, QA and text pairs.

Each reader returns plain rows (dicts with canonical field names plus the record's `line`), so
the generation tasks, the data-pipeline tools and tests can share them. Field names in the file
can differ from the canonical ones through `fields` ({canonical: name in the file}). Every error
names the file, the line (JSONL) or record index (JSON) and the field.

Formats:
- instruction: `instruction`, optional `input`, `output` (Alpaca; JSON list or JSONL);
- chat: `messages` [{role, content}] (OpenAI style) or ShareGPT `conversations` [{from, value}];
- qa: `question`, `context`, `answers` (list of strings or SQuAD answer dicts) or `answer`;
  SQuAD JSON ({"data": [{"paragraphs": [{"context", "qas": [...]}]}]}) is told apart and read
  by the extractive-QA reader (`qa_source`, `read_squad_json`), then flattened;
- pairs: any two text fields, e.g. `document`/`summary` or `source`/`target`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tunewise.data.readers import read_records
from tunewise.errors import DataError
from tunewise.tasks.extractive_qa.squad import qa_source, read_squad_json

Row = dict[str, Any]
ROLES = ("system", "user", "assistant")
# ShareGPT speaker names → chat roles.
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "model": "assistant",
}


def _loc(path: str | Path, line: int) -> str:
    """'file, line N' for line-based files, 'file, record N' for a JSON list or given records."""
    lined = Path(str(path)).suffix.lower() in (".jsonl", ".ndjson", ".csv", ".tsv")
    return f"{path}, line {line}" if lined else f"{path}, record {line}"


def text_field(
    rec: Mapping[str, Any],
    name: str,
    path: str | Path,
    line: int,
    *,
    required: bool = True,
    allow_empty: bool = False,
) -> str:
    """A string field of a record (numbers are turned into text); errors say where and what."""
    value = rec.get(name)
    if value is None and not required:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        have = ", ".join(f"'{k}'" for k in rec) or "no fields"
        got = "missing" if name not in rec else f"{type(value).__name__} {value!r:.60}"
        raise DataError(
            f"{_loc(path, line)}: field '{name}' must be text ({got}; record has {have})."
        )
    if not allow_empty and not value.strip():
        raise DataError(f"{_loc(path, line)}: field '{name}' is empty.")
    return value


# -- per-record normalisers (also used for records given to `predict`) ----------------------------


def instruction_row(
    rec: Mapping[str, Any], path: str | Path, line: int, fields: Mapping[str, str], labelled: bool
) -> Row:
    """Alpaca record → {instruction, input, output}; `input` may be absent or empty."""
    f = {"instruction": "instruction", "input": "input", "output": "output", **fields}
    return {
        "instruction": text_field(rec, f["instruction"], path, line),
        "input": text_field(rec, f["input"], path, line, required=False, allow_empty=True),
        "output": text_field(rec, f["output"], path, line) if labelled else "",
    }


def chat_row(
    rec: Mapping[str, Any], path: str | Path, line: int, fields: Mapping[str, str], labelled: bool
) -> Row:
    """{messages: [{role, content}]} or ShareGPT {conversations: [{from, value}]} → {messages}.

    Labelled conversations must contain an assistant turn (it is what the loss is on).
    """
    key = fields.get("messages")
    if key is None:
        key = "messages" if "messages" in rec or "conversations" not in rec else "conversations"
    turns = rec.get(key)
    if not isinstance(turns, list) or not turns:
        raise DataError(
            f"{_loc(path, line)}: field '{key}' must be a non-empty list of turns "
            f"(got {turns!r:.60}); chat records hold 'messages' [{{role, content}}] or ShareGPT "
            "'conversations' [{from, value}]."
        )
    messages = [_turn(t, i, key, path, line) for i, t in enumerate(turns)]
    if labelled and not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{_loc(path, line)}: field '{key}' has no assistant turn to learn from.")
    if messages[-1]["role"] == "system":
        raise DataError(f"{_loc(path, line)}: field '{key}' ends with a system turn.")
    return {"messages": messages}


def _turn(turn: Any, i: int, key: str, path: str | Path, line: int) -> dict[str, str]:
    at = f"{_loc(path, line)}: {key}[{i}]"
    if not isinstance(turn, dict):
        raise DataError(f"{at} must be an object with role/content, got {turn!r:.60}.")
    if "role" in turn:
        role, content = str(turn["role"]), turn.get("content")
    elif "from" in turn:
        speaker = str(turn["from"])
        role = SHAREGPT_ROLES.get(speaker.lower(), speaker)
        content = turn.get("value")
    else:
        raise DataError(f"{at} has neither 'role' (OpenAI style) nor 'from' (ShareGPT style).")
    if role not in ROLES:
        raise DataError(f"{at}: unknown role {role!r}; expected one of {', '.join(ROLES)}.")
    if not isinstance(content, str):
        raise DataError(f"{at}: the {role} turn's content must be text, got {content!r:.60}.")
    return {"role": role, "content": content}


def qa_row(
    rec: Mapping[str, Any], path: str | Path, line: int, fields: Mapping[str, str], labelled: bool
) -> Row:
    """{question, context, answers} → the same with `answers` as a list of strings.

    `answers` may be strings, SQuAD dicts ({text, answer_start}) or SQuAD's columnar form
    ({text: [...], answer_start: [...]}); a single `answer` string works too.
    """
    f = {"question": "question", "context": "context", "answers": "answers", **fields}
    row: Row = {
        "question": text_field(rec, f["question"], path, line),
        "context": text_field(rec, f["context"], path, line),
        "answers": [],
    }
    if not labelled:
        return row
    raw = rec.get(f["answers"], rec.get("answer"))
    if isinstance(raw, dict) and isinstance(raw.get("text"), list):
        raw = raw["text"]
    if isinstance(raw, (str, dict)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise DataError(
            f"{_loc(path, line)}: field '{f['answers']}' must hold one or more answers "
            f"(got {raw!r:.60})."
        )
    answers = []
    for a in raw:
        text = a.get("text") if isinstance(a, dict) else a
        if not isinstance(text, str) or not text.strip():
            raise DataError(
                f"{_loc(path, line)}: field '{f['answers']}' has a bad answer {a!r:.60}."
            )
        answers.append(text)
    row["answers"] = answers
    return row


def pair_row(
    rec: Mapping[str, Any],
    path: str | Path,
    line: int,
    fields: Mapping[str, str],
    labelled: bool,
    *,
    source: str,
    target: str,
) -> Row:
    """Two text fields, e.g. document → summary or source → target."""
    row: Row = {source: text_field(rec, fields.get(source, source), path, line)}
    row[target] = text_field(rec, fields.get(target, target), path, line) if labelled else ""
    return row


# -- whole files --------------------------------------------------------------------------------

Normaliser = Callable[[Mapping[str, Any], str | Path, int, Mapping[str, str], bool], Row]


def read_rows(
    path: str | Path,
    normalise: Normaliser,
    fmt: str | None = "auto",
    fields: Mapping[str, str] | None = None,
    labelled: bool = True,
) -> list[Row]:
    """Every record of a JSON/JSONL/CSV/TSV file through `normalise`, with its `line`."""
    rows = []
    for line, rec in read_records(path, fmt):
        row = normalise(rec, path, line, dict(fields or {}), labelled)
        row["line"] = line
        rows.append(row)
    return rows


def read_instructions(path: str | Path, fmt: str | None = "auto", **kw: Any) -> list[Row]:
    return read_rows(path, instruction_row, fmt, **kw)


def read_chats(path: str | Path, fmt: str | None = "auto", **kw: Any) -> list[Row]:
    return read_rows(path, chat_row, fmt, **kw)


def read_pairs(
    path: str | Path, source: str, target: str, fmt: str | None = "auto", **kw: Any
) -> list[Row]:
    def normalise(rec: Any, p: Any, line: int, fields: Any, labelled: bool) -> Row:
        return pair_row(rec, p, line, fields, labelled, source=source, target=target)

    return read_rows(path, normalise, fmt, **kw)


def read_qa(
    path: str | Path,
    fmt: str | None = "auto",
    fields: Mapping[str, str] | None = None,
    labelled: bool = True,
) -> list[Row]:
    """Flat QA records, or a SQuAD JSON file flattened to one row per question."""
    fmt, data = qa_source(Path(path), fmt)
    if fmt == "squad":
        return _squad_rows(Path(path), labelled, data)
    return read_rows(path, qa_row, fmt, fields, labelled)


def _squad_rows(path: Path, labelled: bool, data: Any) -> list[Row]:
    """SQuAD v1.1/v2.0 JSON through the extractive-QA reader (`tasks/extractive_qa/squad.py`), so
    both QA routes read and validate a file the same way; `line` is the question's running index."""
    rows: list[Row] = []
    for i, rec in enumerate(read_squad_json(path, labelled=labelled, data=data)):
        answers = list(rec["answers"]["text"]) if labelled else []
        rows.append(
            {
                "question": rec["question"],
                "context": rec["context"],
                "answers": answers,
                "id": str(rec.get("id", i)),
                "title": str(rec.get("title", "")),
                "line": i,
            }
        )
    return rows
