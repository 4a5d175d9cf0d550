"""Readers for question-answering data: SQuAD-format JSON (v1.1 and v2.0) and flat JSONL.

Every reader returns plain dicts, one per question:
``{"id", "title", "question", "context", "answers": {"text": [...], "answer_start": [...]},
"is_impossible", "where"}`` — the `answers` layout of the HF `squad` dataset, so records go
straight into a `datasets.Dataset`. `where` names the record for later error messages
(file, article / paragraph / question id, or line).

Answers are checked against their context: `context[answer_start:][:len(text)]` must be the
answer text. SQuAD itself has a few answers whose start is off by some characters, so the
default policy moves such an answer to the nearest occurrence of its text; `"error"` refuses
the file and `"skip"` drops the answer. An answer whose text is nowhere in its context is
always an error (no offset could be right).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from tunewise.data.readers import detect_format, read_records, require_file
from tunewise.errors import DataError

AnswerPolicy = Literal["fix", "error", "skip"]


def read_qa(
    path: str | Path,
    fmt: str | None = "auto",
    *,
    labelled: bool = True,
    answer_policy: AnswerPolicy = "fix",
) -> list[dict[str, Any]]:
    """Questions of a SQuAD JSON file, a JSON list of flat records, or JSONL (by `fmt`)."""
    path = Path(path)
    fmt, data = qa_source(path, fmt)
    if fmt == "squad":
        return read_squad_json(path, labelled=labelled, answer_policy=answer_policy, data=data)
    if fmt not in ("json", "jsonl"):
        raise DataError(
            f"{path}: question answering reads SQuAD JSON or JSONL, not {fmt}. "
            "Set data.format to squad (or jsonl)."
        )
    return read_qa_records(path, fmt, labelled=labelled, answer_policy=answer_policy)


def qa_source(path: Path, fmt: str | None = "auto") -> tuple[str, Any]:
    """What a question-answering file holds, for both QA tasks: ("squad", its parsed JSON) for
    SQuAD JSON (articles with paragraphs), else (its record format, None) for flat question
    records, which each task reads its own way. A JSON file (format json or squad, or a .json
    file under auto) is SQuAD when `is_squad` says so, and otherwise a list of flat records."""
    require_file(path)
    fmt = "json" if fmt == "squad" else detect_format(path, fmt)
    if fmt == "json":
        data = _load_json(path)
        if is_squad(data):
            return "squad", data
    return fmt, None


def read_squad_json(
    path: str | Path,
    *,
    labelled: bool = True,
    answer_policy: AnswerPolicy = "fix",
    data: Any = None,
) -> list[dict[str, Any]]:
    """SQuAD v1.1 / v2.0 JSON: ``{"data": [{"title", "paragraphs": [{"context", "qas"}]}]}``."""
    path = Path(path)
    data = _load_json(path) if data is None else data
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise DataError(
            f"{path}: not SQuAD JSON; expected {{'data': [{{'title', 'paragraphs': [...]}}]}}."
        )
    out: list[dict[str, Any]] = []
    for a, article in enumerate(articles):
        title = article.get("title", "") if isinstance(article, dict) else ""
        at = f"{path}, article {a}" + (f" ({title!r})" if title else "")
        paragraphs = _field(article, "paragraphs", list, at)
        for p, paragraph in enumerate(paragraphs):
            pat = f"{at}, paragraph {p}"
            context = _field(paragraph, "context", str, pat)
            for q, qa in enumerate(_field(paragraph, "qas", list, pat)):
                qid = qa.get("id") if isinstance(qa, dict) else None
                qat = f"{pat}, question {q}" + (f" (id {qid!r})" if qid is not None else "")
                question = _field(qa, "question", str, qat)
                impossible = bool(qa.get("is_impossible", False))
                raw_answers = [] if impossible else qa.get("answers")
                record = _record(qid, title, question, context, qat, impossible)
                if labelled:
                    answers = _answers(raw_answers, context, qat, answer_policy, nested=True)
                    if answers is None:  # every answer skipped by the policy
                        continue
                    record["answers"] = answers
                    record["is_impossible"] = not answers["text"]
                out.append(record)
    if not out:
        raise DataError(f"{path}: holds no questions.")
    return out


def read_qa_records(
    path: str | Path,
    fmt: str | None = "auto",
    *,
    labelled: bool = True,
    answer_policy: AnswerPolicy = "fix",
) -> list[dict[str, Any]]:
    """Flat records (JSONL or a JSON list): ``question``, ``context``, ``answers`` given as
    ``{"text": [...], "answer_start": [...]}`` or a list of ``{"text", "answer_start"}``;
    optional ``id``, ``title``, ``is_impossible``."""
    out: list[dict[str, Any]] = []
    unit = "record" if detect_format(Path(path), fmt) == "json" else "line"
    for number, rec in read_records(path, fmt):
        at = f"{path}, {unit} {number}"
        question = _field(rec, "question", str, at)
        context = _field(rec, "context", str, at)
        impossible = bool(rec.get("is_impossible", False))
        qid = rec.get("id", f"{Path(path).stem}-{number}")
        record = _record(qid, str(rec.get("title", "")), question, context, at, impossible)
        if labelled:
            raw = [] if impossible else rec.get("answers")
            answers = _answers(raw, context, at, answer_policy, nested=False)
            if answers is None:
                continue
            record["answers"] = answers
            record["is_impossible"] = not answers["text"]  # HF squad_v2: empty answer lists
        out.append(record)
    if not out:
        raise DataError(f"{path}: holds no questions.")
    return out


def is_squad(data: Any) -> bool:
    """Nested SQuAD JSON (articles with paragraphs), not a flat list of question records."""
    articles = data.get("data") if isinstance(data, dict) else None
    return isinstance(articles, list) and (
        not articles or not isinstance(articles[0], dict) or "paragraphs" in articles[0]
    )


def check_answer(context: str, text: str, start: int) -> bool:
    """Is `text` exactly at character `start` of `context`?"""
    return start >= 0 and context[start : start + len(text)] == text


def nearest_occurrence(context: str, text: str, start: int) -> int | None:
    """Start of the occurrence of `text` in `context` closest to `start` (None: nowhere)."""
    best, i = None, context.find(text)
    while i != -1:
        if best is None or abs(i - start) < abs(best - start):
            best = i
        i = context.find(text, i + 1)
    return best


# -- helpers -----------------------------------------------------------------------------------


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON at line {exc.lineno} ({exc.msg}).") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded); re-save it as UTF-8."
        ) from None


def _field(obj: Any, name: str, kind: type, at: str) -> Any:
    if not isinstance(obj, dict):
        raise DataError(f"{at}: expected an object with '{name}', got {_short(obj)}.")
    value = obj.get(name)
    if not isinstance(value, kind) or (kind is str and not value.strip()):
        what = "a non-empty string" if kind is str else f"a {kind.__name__}"
        raise DataError(f"{at}: field '{name}' must be {what} (got {_short(value)}).")
    return value


def _record(
    qid: Any, title: str, question: str, context: str, at: str, impossible: bool
) -> dict[str, Any]:
    return {
        "id": str(qid) if qid is not None else at,
        "title": title,
        "question": question,
        "context": context,
        "is_impossible": impossible,
        "where": at,
    }


def _answers(
    raw: Any, context: str, at: str, policy: AnswerPolicy, nested: bool
) -> dict[str, list] | None:
    """Validated answers as {"text": [...], "answer_start": [...]}; None if all were skipped."""
    if raw is None:
        raise DataError(
            f"{at}: field 'answers' is missing; give the answers, or mark an unanswerable "
            'question with "is_impossible": true (SQuAD 2.0).'
        )
    if isinstance(raw, dict) and not nested:  # HF `squad` layout: parallel lists
        texts, starts = raw.get("text"), raw.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise DataError(
                f"{at}: field 'answers' must hold equally long lists 'text' and 'answer_start' "
                f"(got {_short(raw)})."
            )
        raw = [{"text": t, "answer_start": s} for t, s in zip(texts, starts, strict=True)]
    if not isinstance(raw, list):
        raise DataError(f"{at}: field 'answers' must be a list (got {_short(raw)}).")
    texts_out: list[str] = []
    starts_out: list[int] = []
    for k, answer in enumerate(raw):
        field = f"answers[{k}]"
        if not isinstance(answer, dict):
            raise DataError(f"{at}: field '{field}' must be an object (got {_short(answer)}).")
        text, start = answer.get("text"), answer.get("answer_start")
        if not isinstance(text, str) or not text.strip():
            raise DataError(
                f"{at}: field '{field}.text' must be a non-empty string (got {text!r})."
            )
        if isinstance(start, bool) or not isinstance(start, int):
            raise DataError(
                f"{at}: field '{field}.answer_start' must be an integer (got {start!r})."
            )
        if not check_answer(context, text, start):
            found = context[max(start, 0) : max(start, 0) + len(text)]
            if policy == "skip":
                continue
            moved = nearest_occurrence(context, text, start)
            if policy == "error" or moved is None:
                where = "is not in the context at all" if moved is None else f"occurs at {moved}"
                raise DataError(
                    f"{at}: field '{field}.answer_start' = {start} does not point at the answer "
                    f"{text!r} (the context has {found!r} there); the text {where}."
                    + ("" if moved is None else " Fix the offset or use answer_policy: fix.")
                )
            start = moved
        texts_out.append(text)
        starts_out.append(start)
    if raw and not texts_out:
        return None
    return {"text": texts_out, "answer_start": starts_out}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def split_by_article(path: str | Path, held_out: int, out_dir: str | Path) -> tuple[Path, Path]:
    """Write `<stem>-train.json` and `<stem>-heldout.json` to `out_dir`: the last `held_out`
    articles of a SQuAD file are held back whole, so no paragraph of a held-out article is
    trained on (questions about one article share facts and wording)."""
    path = Path(path)
    data = _load_json(path)
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list) or not 0 < held_out < len(articles):
        n = len(articles) if isinstance(articles, list) else 0
        raise DataError(
            f"{path}: cannot hold back {held_out} of its {n} articles (need 0 < held_out < {n})."
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    version = data.get("version", "1.1")
    parts = {"train": articles[:-held_out], "heldout": articles[-held_out:]}
    paths = {}
    for name, part in parts.items():
        paths[name] = out_dir / f"{path.stem}-{name}.json"
        paths[name].write_text(json.dumps({"version": version, "data": part}), encoding="utf-8")
    return paths["train"], paths["heldout"]
