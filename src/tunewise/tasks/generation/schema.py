"""`data prepare` schemas of text-generation records: source → target pairs (summarization,
translation) and chat-like records (messages, Alpaca instruction/output, prompt/response, text)."""

from __future__ import annotations

from tunewise.data.schemas import Problem, Schema, SchemaSpec, text_problem


def check_pair(record: dict, schema: Schema) -> Problem | None:
    return text_problem(record, "source") or text_problem(record, "target")


_ROLES = {"system", "user", "assistant", "tool", "human", "gpt"}


def check_chat(record: dict, schema: Schema) -> Problem | None:
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
        return text_problem(record, "instruction") or text_problem(record, "output")
    if "prompt" in record:
        return text_problem(record, "prompt") or text_problem(record, "response")
    if "text" in record:
        return text_problem(record, "text")
    return ("messages", "is missing (or instruction/output, prompt/response, text)", None)


PAIR_SCHEMA = SchemaSpec(
    name="seq2seq",
    aliases={
        "source": ("document", "article", "input", "src"),
        "target": ("summary", "highlights", "tgt"),
    },
    check=check_pair,
    text_fields=("source", "target"),
    key_fields=("source", "target"),
)
_CHAT_TEXT = ("messages", "instruction", "input", "output", "prompt", "response", "text")
CHAT_SCHEMA = SchemaSpec(
    name="chat",
    aliases={"messages": ("conversations",)},
    check=check_chat,
    text_fields=_CHAT_TEXT,
    key_fields=_CHAT_TEXT,
)
