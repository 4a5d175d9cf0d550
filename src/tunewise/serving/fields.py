"""Per-record checks of /v1/predict inputs for the tasks whose records have several fields (token
classification, extractive QA, multiple choice): a missing field, or one of the wrong type, is a
422 whose message and `param` name it (`inputs[1].context`, `inputs[0].choices[2]`).

The tasks' own `records_to_dataset` refuses the same records, but its message names only the
record ("input 1: ..."), and it lets some through that mean nothing (NER tokens that are `null`
or nested lists are turned into the words "None" and "['x']"). These checks accept what the
tasks accept otherwise (numbers as texts where the task takes them), so a valid request gets
exactly `Predictor.predict`'s answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tunewise.serving.problems import RequestError


def check_records(task_name: str, options: Any, inputs: list[Any]) -> None:
    """RequestError 422 naming `inputs[i].field` for the first input the task cannot take;
    nothing for tasks without a check here (their `records_to_dataset` still checks)."""
    check = CHECKS.get(task_name)
    if check is None:
        return
    for i, item in enumerate(inputs):
        check(options, item, f"inputs[{i}]", inputs[0])


def refuse(where: str, message: str) -> RequestError:
    return RequestError(422, f"{where} {message}", where)


def describe(value: Any) -> str:
    return f"{type(value).__name__} {str(value)[:40]!r}"


def need_text(record: dict[str, Any], field: str, where: str, numbers: bool, why: str) -> None:
    """`record[field]` is a non-empty text (or a number, where the task reads numbers as text)."""
    at = f"{where}.{field}"
    if field not in record:
        raise refuse(at, f"is missing ({why}).")
    value = record[field]
    if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        return
    if not isinstance(value, str):
        raise refuse(at, f"must be text, got {describe(value)}.")
    if not value.strip():
        raise refuse(at, "is empty.")


def need_record(item: Any, where: str, why: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise refuse(where, f"must be a record ({why}), got {describe(item)}.")
    return item


def token_classification(options: Any, item: Any, where: str, first: Any) -> None:
    """A text, or a record with 'text' or a list of words in `tokens_field`."""
    if isinstance(item, str):
        return  # check_items refused empty texts
    tok = options.tokens_field
    why = f"give a text, or a record with 'text' or a list of words in '{tok}'"
    if tok in item:
        words, at = item[tok], f"{where}.{tok}"
        if not isinstance(words, list):
            raise refuse(at, f"must be a list of words, got {describe(words)}.")
        if not words:
            raise refuse(at, "is empty: give at least one word.")
        for j, word in enumerate(words):
            if isinstance(word, bool) or not isinstance(word, (str, int, float)):
                raise refuse(f"{at}[{j}]", f"must be a word (text), got {describe(word)}.")
            if not str(word).strip():
                raise refuse(f"{at}[{j}]", "is empty.")
        return
    need_text(item, "text", where, numbers=False, why=why)


def extractive_qa(options: Any, item: Any, where: str, first: Any) -> None:
    why = "extractive QA needs 'question' and 'context' texts"
    record = need_record(item, where, why)
    for field in ("question", "context"):
        need_text(record, field, where, numbers=False, why=why)


def multiple_choice(options: Any, item: Any, where: str, first: Any) -> None:
    """A question and at least two candidates, in the fields the first input uses (as the task
    picks them); an optional context."""
    why = "multiple choice needs a question and its candidates"
    record = need_record(item, where, f"{why}, e.g. {{'question': ..., 'choices': [...]}}")
    question = pick(options.question_field, first)
    need_text(record, question, where, numbers=True, why=f"{why}; the first input uses it")
    if options.context_field and options.context_field in record:
        need_text(record, options.context_field, where, numbers=True, why=why)
    field = pick(options.choices_field, first)
    at = f"{where}.{field}"
    if field not in record:
        raise refuse(at, f"is missing ({why}; the first input uses it).")
    value = record[field]
    if isinstance(value, dict) and isinstance(value.get("text"), list):
        value = value["text"]  # ARC / CommonsenseQA style {"label": [...], "text": [...]}
    if not isinstance(value, list) or len(value) < 2:
        raise refuse(at, f"must be a list of at least two candidates, got {describe(value)}.")
    for j, candidate in enumerate(value):
        text = candidate.get("text") if isinstance(candidate, dict) else candidate
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            raise refuse(f"{at}[{j}]", f"must be a candidate text, got {describe(candidate)}.")
        if not str(text).strip():
            raise refuse(f"{at}[{j}]", "is empty.")


def pick(names: str | list[str], first: Any) -> str:
    """The first of the task's field names that the first input has (the first name if none)."""
    options = [names] if isinstance(names, str) else list(names)
    record = first if isinstance(first, dict) else {}
    return next((n for n in options if n in record), options[0])


CHECKS: dict[str, Callable[[Any, Any, str, Any], None]] = {
    "token_classification": token_classification,
    "extractive_qa": extractive_qa,
    "multiple_choice": multiple_choice,
}
