"""`data prepare` schema of extractive-QA records: `question`, `context` and `answers` whose
texts sit at their `answer_start`. The context is never rewritten (answer offsets point into it)."""

from __future__ import annotations

from tunewise.data.schemas import Problem, Schema, SchemaSpec, text_problem


def check_record(record: dict, schema: Schema) -> Problem | None:
    problem = text_problem(record, "question") or text_problem(record, "context")
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


SCHEMA = SchemaSpec(
    name="extractive_qa",
    aliases={"context": (), "question": (), "answers": ()},
    check=check_record,
    text_fields=("question",),
    key_fields=("question", "context"),
)
