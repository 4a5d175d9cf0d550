"""Words ↔ sub-word tokens ↔ character offsets, for token classification.

The model sees sub-word tokens; labels and predictions belong to words; users want character
spans on their raw text. Every input is therefore a text plus word spans in it: CoNLL/JSONL
words are joined with single spaces, raw text is split into words here. A fast tokenizer's
offset mapping then says which word each token belongs to (works for WordPiece, BPE and
SentencePiece alike, unlike `is_split_into_words`, which byte-level BPE needs special set-up for).
The first token of a word carries its label; the others are ignored (-100) in the loss.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tunewise.inference.batches import IGNORE

# Raw text → words, close to CoNLL-2003 / Penn Treebank tokens so a model trained on them sees
# familiar words at prediction time. Hand-written: the library tokenizers that return character
# spans (nltk's Treebank span_tokenize) rewrite quotes and fail to align on some inputs.
_WORDS = re.compile(
    r"""(?:\w\.){2,}(?!\w)          # abbreviations: U.S. U.K. e.g.
      | (?i:'(?:s|re|ve|ll|d|m|t))(?!\w)  # clitics split off as in CoNLL: Germany 's
      | \w+(?:[-.,&/]\w+)*           # words, hyphenated words, numbers 1,000 and 3.5
      | \S                           # any other character on its own (punctuation)
    """,
    re.VERBOSE,
)


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Words of raw text and their (start, end) character spans; text[start:end] is the word."""
    words, spans = [], []
    for match in _WORDS.finditer(text):
        words.append(match.group())
        spans.append(match.span())
    return words, spans


def join_words(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Pre-split words as one text (single spaces) and each word's span in it."""
    spans, position = [], 0
    for word in words:
        spans.append((position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), spans


def token_words(
    offsets: Sequence[Sequence[int]], spans: Sequence[Sequence[int]]
) -> list[int | None]:
    """The word index of every token (None for special tokens and tokens outside all words).

    A token belongs to the first word its character range overlaps; zero-width tokens ([CLS],
    BOS, padding) belong to none. Offsets may include a leading space (byte-level BPE), which
    overlaps no word. Tokens and words are both in text order, so one forward pass suffices.
    """
    out: list[int | None] = []
    j = 0
    for start, end in offsets:
        if end <= start:
            out.append(None)
            continue
        while j < len(spans) and spans[j][1] <= start:
            j += 1
        out.append(j if j < len(spans) and spans[j][0] < end else None)
    return out


def first_tokens(word_ids: Sequence[int | None], n_words: int) -> list[int | None]:
    """For each word, the position of its first token (None: the word got no token, e.g. it
    was truncated away or held only characters the tokenizer drops)."""
    first: list[int | None] = [None] * n_words
    for position, word in enumerate(word_ids):
        if word is not None and first[word] is None:
            first[word] = position
    return first


def align_labels(word_ids: Sequence[int | None], word_labels: Sequence[int]) -> list[int]:
    """Token labels: each word's label on its first token, -100 everywhere else."""
    labels = [IGNORE] * len(word_ids)
    for word, position in enumerate(first_tokens(word_ids, len(word_labels))):
        if position is not None:
            labels[position] = word_labels[word]
    return labels


def entity_spans(
    text: str, spans: Sequence[Sequence[int]], tags: Sequence[str], scores: Sequence[float]
) -> list[dict[str, Any]]:
    """Entities of one example's word tags, as character spans on its text: type, start, end
    (exclusive), the covered text, and the mean word probability as score. Entities come from
    seqeval's `get_entities` (conlleval reading: an I- after O opens an entity)."""
    from seqeval.metrics.sequence_labeling import get_entities

    entities = []
    for kind, first, last in get_entities(list(tags)):
        start, end = spans[first][0], spans[last][1]
        score = sum(scores[first : last + 1]) / (last - first + 1)
        entities.append(
            {
                "type": kind,
                "start": start,
                "end": end,
                "text": text[start:end],
                "score": round(score, 6),
            }
        )
    return entities


def input_columns(records: Sequence[Any], tokens_field: str) -> dict[str, list[Any]]:
    """Prediction inputs as columns: each input's text, its words and their character spans.
    Raw texts (or records with `text`) are split into words; records with a list of tokens in
    `tokens_field` are used as given, joined by single spaces."""
    from tunewise.errors import DataError

    columns: dict[str, list[Any]] = {"text": [], "words": [], "starts": [], "ends": []}
    for i, record in enumerate(records):
        if isinstance(record, dict) and isinstance(record.get(tokens_field), list):
            words = [str(w) for w in record[tokens_field]]
            text, spans = join_words(words)
        elif isinstance(record, dict) and isinstance(record.get("text"), str):
            text = record["text"]
            words, spans = split_words(text)
        elif isinstance(record, str):
            text = record
            words, spans = split_words(text)
        else:
            raise DataError(
                f"input {i}: give a text, or a record with 'text' or a list of '{tokens_field}' "
                f"(got {record!r})."
            )
        columns["text"].append(text)
        columns["words"].append(words)
        columns["starts"].append([s for s, _ in spans])
        columns["ends"].append([e for _, e in spans])
    return columns
