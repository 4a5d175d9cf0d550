"""Question + long context → overlapping token windows, with offsets back to the context.

The windowing itself is the fast tokenizer's (`return_overflowing_tokens` with a `stride`, as
in HF's run_qa example). What is ours: questions are cut to a token budget first so every window
keeps room for context (otherwise the tokenizer refuses the stride), offsets of non-context
tokens are blanked to (-1, -1) so decoding can never leave the context, and the character span
of an answer is mapped onto each window's token span (or onto the [CLS] token when the window
does not hold the whole answer, or the question has none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunewise.errors import ConfigError

NO_OFFSET = (-1, -1)


@dataclass(frozen=True)
class WindowSpec:
    """How contexts are cut: `stride` is the number of tokens consecutive windows share."""

    max_length: int
    stride: int
    max_question_tokens: int

    @classmethod
    def build(
        cls, tokenizer: Any, max_length: int, doc_stride: int | None, max_question_tokens: int
    ) -> WindowSpec:
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError(
                f"Extractive QA needs a fast (Rust) tokenizer for character offsets; "
                f"{type(tokenizer).__name__} is not one."
            )
        special = tokenizer.num_special_tokens_to_add(pair=True)
        stride = doc_stride if doc_stride is not None else max_length // 4
        room = max_length - special - stride - 1  # tokens left for the question
        if room < 1:
            raise ConfigError(
                f"task.doc_stride ({stride}) leaves no room in model.max_length ({max_length}) "
                f"for the question and new context; lower doc_stride or raise max_length."
            )
        return cls(max_length, stride, min(max_question_tokens, room))


def cut_questions(tokenizer: Any, questions: list[str], max_tokens: int) -> list[str]:
    """Questions shortened at a token boundary to at most `max_tokens` tokens."""
    questions = [q.lstrip() for q in questions]  # some SQuAD questions start with many spaces
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    return [
        q if len(offsets) <= max_tokens else q[: offsets[max_tokens - 1][1]]
        for q, offsets in zip(questions, enc["offset_mapping"], strict=True)
    ]


def encode_windows(
    tokenizer: Any,
    questions: list[str],
    contexts: list[str],
    spec: WindowSpec,
    answers: list[dict[str, list]] | None = None,
) -> dict[str, list]:
    """Model inputs, one row per window, plus `example_index` (row of the question it came
    from), `offsets` (char span in the context per token; (-1, -1) outside the context),
    `length`, and with `answers` the `start_positions` / `end_positions` labels."""
    questions = cut_questions(tokenizer, questions, spec.max_question_tokens)
    enc = tokenizer(
        questions,
        contexts,
        truncation="only_second",
        max_length=spec.max_length,
        stride=spec.stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    sample_of = enc.pop("overflow_to_sample_mapping")
    offsets_all = enc.pop("offset_mapping")
    out: dict[str, list] = {k: list(v) for k, v in enc.items()}
    out["example_index"] = list(sample_of)
    out["length"] = [len(ids) for ids in enc["input_ids"]]
    out["offsets"] = []
    if answers is not None:
        out["start_positions"], out["end_positions"] = [], []
    for w, offsets in enumerate(offsets_all):
        seq_ids = enc.sequence_ids(w)
        ctx = [tuple(o) if s == 1 else NO_OFFSET for o, s in zip(offsets, seq_ids, strict=True)]
        out["offsets"].append(ctx)
        if answers is not None:
            gold = answers[sample_of[w]]
            span = None
            if gold["text"]:
                start_char = gold["answer_start"][0]
                span = char_span_to_tokens(ctx, start_char, start_char + len(gold["text"][0]))
            null = null_index(enc["input_ids"][w], tokenizer)
            out["start_positions"].append(span[0] if span else null)
            out["end_positions"].append(span[1] if span else null)
    return out


def null_index(input_ids: list[int], tokenizer: Any) -> int:
    """Where "no answer in this window" points: the [CLS] token, else the first token."""
    cls_id = tokenizer.cls_token_id
    return input_ids.index(cls_id) if cls_id is not None and cls_id in input_ids else 0


def char_span_to_tokens(
    offsets: list[tuple[int, int]], start: int, end: int
) -> tuple[int, int] | None:
    """First and last token of the window covering characters [start, end) of the context, or
    None when the window does not hold the whole span."""
    inside = [i for i, (a, b) in enumerate(offsets) if a >= 0 and b > a]
    if not inside or offsets[inside[0]][0] > start or offsets[inside[-1]][1] < end:
        return None
    first = next(i for i in inside if offsets[i][1] > start)
    last = next(i for i in reversed(inside) if offsets[i][0] < end)
    return (first, last) if first <= last else None
