"""Token-level data: CoNLL column files and JSON/JSONL with `tokens` / `tags`, plus tag schemes.

CoNLL files (one token per line, whitespace-separated columns, a blank line between sentences,
optional `-DOCSTART-` document markers) have no reader in `datasets` that keeps line numbers, so
this small one is hand-written: every error names the file and line. Tags are validated as BIO
(IOB2) or IOB1 and converted to BIO, the scheme `seqeval` scores by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from tunewise.data.readers import require_file
from tunewise.errors import DataError

TagScheme = Literal["auto", "bio", "iob1"]
DOCSTART = "-DOCSTART-"


def read_conll(
    path: str | Path, tag_column: int | None = -1, token_column: int = 0
) -> list[dict[str, Any]]:
    """Sentences of a CoNLL column file as `{"tokens", "tags", "line"}` dicts.

    `tag_column` indexes the whitespace-split columns (negative counts from the end; None reads
    tokens only, e.g. for unlabelled input, and `tags` is then absent). `line` is the file line of
    the sentence's first token. `-DOCSTART-` lines end the current sentence and are dropped.
    Tags are returned as written; see `to_bio` for scheme conversion.
    """
    path = Path(path)
    require_file(path)
    sentences: list[dict[str, Any]] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    n_columns: int | None = None

    def flush() -> None:
        nonlocal tokens, tags
        if tokens:
            sentence: dict[str, Any] = {"tokens": tokens, "line": start}
            if tag_column is not None:
                sentence["tags"] = tags
            sentences.append(sentence)
        tokens, tags = [], []

    try:
        with path.open(encoding="utf-8-sig") as fh:
            for line_no, raw in enumerate(fh, start=1):
                columns = raw.split()
                if not columns:
                    flush()
                    continue
                if columns[0] == DOCSTART:
                    flush()
                    continue
                if n_columns is None:
                    n_columns = len(columns)
                    _check_columns(path, line_no, raw, token_column, tag_column)
                elif tag_column is not None and len(columns) != n_columns:
                    raise DataError(
                        f"{path}, line {line_no}: {len(columns)} column(s) ({raw.strip()!r}) "
                        f"where the first token line has {n_columns}; every token line needs "
                        "the same columns (is a tag missing, or a token with a space?)."
                    )
                elif not -len(columns) <= token_column < len(columns):
                    _check_columns(path, line_no, raw, token_column, None)
                if not tokens:
                    start = line_no
                tokens.append(columns[token_column])
                if tag_column is not None:
                    tags.append(columns[tag_column])
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded); re-save it as UTF-8."
        ) from None
    flush()
    if not sentences:
        raise DataError(f"Data file '{path}' holds no sentences (only blank or -DOCSTART- lines).")
    return sentences


def read_tagged_records(
    path: str | Path,
    fmt: str,
    tokens_field: str = "tokens",
    tags_fields: list[str] | None = None,
    label_map: dict[Any, str] | None = None,
) -> list[dict[str, Any]]:
    """Records of a JSON/JSONL file as `{"tokens", "tags", "line", "where"}` dicts, like
    `read_conll`'s. `tags_fields`: names to look for, first present wins (None: tokens only).
    `label_map` renames raw tag values (e.g. integer ids); `where` locates each tag for errors."""
    from tunewise.data.readers import read_records, where

    mapping = {str(k): v for k, v in (label_map or {}).items()}
    rows = []
    for line, rec in read_records(path, fmt):
        loc = f"{path}, {where(path, line)}"
        words = rec.get(tokens_field)
        if not isinstance(words, list) or not words:
            raise DataError(
                f"{loc}: field '{tokens_field}' must be a non-empty list of words, got "
                f"{words!r}. Set task.tokens_field if the words are under another name."
            )
        for i, word in enumerate(words):
            if not isinstance(word, str) or not word.strip():
                raise DataError(f"{loc}: {tokens_field}[{i}] is {word!r}, not a non-empty word.")
        row: dict[str, Any] = {"tokens": words, "line": line}
        if tags_fields is not None:
            field = next((f for f in tags_fields if f in rec), None)
            tags = rec.get(field) if field else None
            if not isinstance(tags, list) or len(tags) != len(words):
                raise DataError(
                    f"{loc}: needs a list of {len(words)} tags (one per word) in "
                    f"{' or '.join(repr(f) for f in tags_fields)}, got {tags!r}. Set "
                    "task.tags_field if the tags are under another name."
                )
            row["tags"] = [mapping.get(str(t), str(t)) for t in tags]
            row["where"] = [f"{loc}, {field}[{i}]" for i in range(len(words))]
        rows.append(row)
    return rows


def _check_columns(
    path: Path, line_no: int, raw: str, token_column: int, tag_column: int | None
) -> None:
    """The token and tag columns exist on this line and are different columns."""
    n = len(raw.split())
    for index in [token_column] + ([tag_column] if tag_column is not None else []):
        if not -n <= index < n:
            raise DataError(
                f"{path}, line {line_no}: {n} column(s) ({raw.strip()!r}), so column {index} "
                "does not exist. Set task.tag_column / task.token_column (0-based, negative "
                "counts from the end) to where the tag and the word are."
            )
    if tag_column is not None and tag_column % n == token_column % n:
        raise DataError(
            f"{path}, line {line_no}: the tag column ({tag_column}) is the word column "
            f"({token_column}) on this {n}-column line ({raw.strip()!r}); a labelled CoNLL file "
            "needs a word and a tag column (see task.tag_column)."
        )


def split_tag(tag: str, where: str) -> tuple[str, str]:
    """('B' | 'I' | 'O', entity type) of a BIO/IOB1 tag; anything else is a DataError."""
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in ("B", "I") or not kind:
        raise DataError(
            f"{where}: tag {tag!r} is not 'O' or B-/I-<type> (BIO or IOB1). If this column is "
            "not the tag, set task.tag_column (default -1, the last column); other schemes "
            "(IOBES, BILOU) are not supported."
        )
    return prefix, kind


def is_iob1(tags: list[str], where: str) -> bool:
    """True when an I- tag opens an entity (after O, another type, or at the start): IOB1,
    where B- only separates two adjacent entities of one type. BIO never does this."""
    previous = ("O", "")
    for tag in tags:
        prefix, kind = split_tag(tag, where)
        if prefix == "I" and (previous[0] == "O" or previous[1] != kind):
            return True
        previous = (prefix, kind)
    return False


def iob1_to_bio(tags: list[str], where: str = "tags") -> list[str]:
    """Convert IOB1 to BIO: an I-X that starts an entity becomes B-X. A no-op on valid BIO."""
    out = []
    previous = ("O", "")
    for tag in tags:
        prefix, kind = split_tag(tag, where)
        if prefix == "I" and (previous[0] == "O" or previous[1] != kind):
            out.append(f"B-{kind}")
        else:
            out.append(tag)
        previous = (prefix, kind)
    return out


def to_bio(sentences: list[list[str]], scheme: TagScheme, where: list[str]) -> list[list[str]]:
    """All sentences' tags in BIO. `auto` converts only when some sentence is IOB1; `bio`
    rejects an entity opened by I- (naming the line); `iob1` always converts."""
    if scheme == "bio":
        for tags, loc in zip(sentences, where, strict=True):
            if is_iob1(tags, loc):
                raise DataError(
                    f"{loc}: an entity starts with an I- tag ({' '.join(tags[:12])}...), which "
                    "BIO does not allow. Set task.tag_scheme: iob1 (or auto) to convert IOB1."
                )
        return sentences
    if scheme == "auto" and not any(
        is_iob1(t, loc) for t, loc in zip(sentences, where, strict=True)
    ):
        return sentences
    return [iob1_to_bio(t, loc) for t, loc in zip(sentences, where, strict=True)]
