"""Conversations → token ids with labels only on the assistant's tokens.

Prompts go through the model's own chat template (`tokenizer.apply_chat_template`); a model
without one gets `FALLBACK_TEMPLATE`. transformers can return an assistant-token mask only for
templates that mark `{% generation %}` blocks, which few models ship (SmolLM2 does not), so the
mask is found here, template-agnostically: render the conversation up to each assistant turn with
the generation prompt, then through that turn; the characters in between are the turn's answer
(its text and end-of-turn marker). Tokens whose characters start inside an answer get labels,
every other token -100. Works for any template whose renderings extend each other as prefixes,
which holds for ChatML, Llama, Mistral, Gemma and the fallback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunewise.errors import ConfigError
from tunewise.inference.batches import IGNORE

# Used when the tokenizer has no chat template. Assistant turns end with the EOS token (when the
# tokenizer has one) so the model learns to stop.
FALLBACK_TEMPLATE = (
    "{% if bos_token %}{{ bos_token }}{% endif %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] + '\n\n' }}"
    "{% elif m['role'] == 'user' %}{{ '### User:\n' + m['content'] + '\n\n' }}"
    "{% else %}{{ '### Assistant:\n' + m['content'] }}"
    "{% if eos_token %}{{ eos_token }}{% endif %}{{ '\n\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Assistant:\n' }}{% endif %}"
)


def template_of(tokenizer: Any) -> str:
    return getattr(tokenizer, "chat_template", None) or FALLBACK_TEMPLATE


def render(tokenizer: Any, messages: Sequence[dict[str, str]], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        list(messages),
        chat_template=template_of(tokenizer),
        tokenize=False,
        add_generation_prompt=generation_prompt,
    )


def answer_spans(tokenizer: Any, messages: Sequence[dict[str, str]]) -> tuple[str, list[range]]:
    """The rendered conversation and the character range of every assistant answer in it."""
    text = render(tokenizer, messages, generation_prompt=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        through = render(tokenizer, messages[: i + 1], generation_prompt=False)
        before = render(tokenizer, messages[:i], generation_prompt=True) if i else ""
        if not through.startswith(before):  # e.g. a template that adds no generation prompt
            before = render(tokenizer, messages[:i], generation_prompt=False) if i else ""
        if not (through.startswith(before) and text.startswith(through)):
            raise ConfigError(
                "The model's chat template renders a conversation differently from its own "
                "prefixes, so the assistant tokens cannot be located; set a standard template "
                "(tokenizer.chat_template) for this model."
            )
        end = len(through.rstrip())  # the newline after an end-of-turn marker is not the answer's
        spans.append(range(len(before), max(end, len(before))))
    return text, spans


def encode_conversation(
    tokenizer: Any, messages: Sequence[dict[str, str]], max_length: int
) -> dict[str, list[int]]:
    """input_ids, attention_mask and labels (-100 except on assistant answers), cut at the end to
    `max_length` tokens."""
    text, spans = answer_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])[:max_length]
    labels = [
        tok if any(start in span for span in spans) else IGNORE
        for tok, (start, _end) in zip(ids, enc["offset_mapping"], strict=False)
    ]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def encode_prompt(tokenizer: Any, messages: Sequence[dict[str, str]], max_length: int) -> list[int]:
    """Token ids of a generation prompt (the conversation so far + the assistant header); when
    too long the oldest tokens go, so the question stays next to where the answer starts."""
    text = render(tokenizer, messages, generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return list(ids[-max_length:])


def fit(row: dict[str, Any], field: str | None, tokenizer: Any, encode: Any, limit: int) -> Any:
    """`encode(row)` (ids, or a dict with input_ids); when longer than `limit` tokens, the row's
    long `field` (document, context...) is shortened until it fits, so the answer stays whole."""
    out = encode(row)
    for _ in range(3):  # token counts shift by a token or two when text is cut: re-check
        n = len(out) if isinstance(out, list) else len(out["input_ids"])
        if n <= limit or not field or not row.get(field):
            break
        keep = token_count(tokenizer, row[field]) - (n - limit) - 2
        row = {**row, field: shorten(tokenizer, row[field], keep)}
        out = encode(row)
    return out


def shorten(tokenizer: Any, text: str, n_tokens: int) -> str:
    """`text` cut to its first `n_tokens` tokens (at a token's character boundary)."""
    if n_tokens <= 0:
        return ""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if len(offsets) <= n_tokens:
        return text
    return text[: offsets[n_tokens][0]].rstrip()


def token_count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])
