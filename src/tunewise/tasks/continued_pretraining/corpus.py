"""Raw-text corpora for language-model pretraining: plain text files (one document per line or
per paragraph) or records with a text field, as (line, document) pairs; errors name the file,
line and field."""

from __future__ import annotations

from pathlib import Path

from tunewise.config import SplitFile
from tunewise.data.readers import read_records, require_file, where
from tunewise.errors import DataError

TEXT_SUFFIXES = (".txt", ".text", ".md")


def read_documents(spec: SplitFile, unit: str = "line") -> list[tuple[int, str]]:
    """Documents of one file: plain text by extension (with format auto), records otherwise."""
    path = Path(spec.path)
    if spec.format in (None, "auto") and path.suffix.lower() in TEXT_SUFFIXES:
        return _text_documents(path, unit)
    return _record_documents(spec)


def _text_documents(path: Path, unit: str) -> list[tuple[int, str]]:
    require_file(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded); re-save it as UTF-8."
        ) from None
    docs: list[tuple[int, str]] = []
    if unit == "line":
        docs = [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]
    else:
        start, buf = 0, []
        for n, line in enumerate([*lines, ""], start=1):
            if line.strip():
                start = start or n
                buf.append(line.strip())
            elif buf:
                docs.append((start, " ".join(buf)))
                start, buf = 0, []
    if not docs:
        raise DataError(f"Data file '{path}' holds no text.")
    return docs


def _record_documents(spec: SplitFile) -> list[tuple[int, str]]:
    records = read_records(spec.path, spec.format)
    names = [spec.text_column] if isinstance(spec.text_column, str) else spec.text_column
    names = list(dict.fromkeys([*(names or []), "text"]))
    first = records[0][1]
    field = next((n for n in names if n in first), None)
    if field is None:
        have = ", ".join(f"'{k}'" for k in first) or "no fields"
        raise DataError(
            f"{spec.path}: no text field {' or '.join(repr(n) for n in names)}; the records have "
            f"{have}. Set data.text_column."
        )
    docs = []
    for line, rec in records:
        value = rec.get(field)
        if not isinstance(value, str) or not value.strip():
            raise DataError(
                f"{spec.path}, {where(spec.path, line)}: field '{field}' is missing or empty "
                f"(got {value!r})."
            )
        docs.append((line, value))
    return docs
