"""Text cleaning: each step switchable, each counting the records it changed.

Libraries where they exist: `html.parser` for tags and entities, `ftfy` for mojibake plus NFKC,
`emoji` for emoji sequences (skin tones and ZWJ families included). The control-character set and
the URL / e-mail / phone patterns are written here; no library covers them without pulling in
much more (e.g. `phonenumbers` needs a region per number).
Fast paths skip steps that cannot apply (ASCII text has no mojibake and no emoji), which keeps a
million short texts within seconds per step.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from tunewise.prepare_options import CleanOptions

# C0/C1 controls except tab/newline/CR (whitespace handles those), soft hyphen, zero-width
# space/non-joiner/joiner, LRM/RLM, bidi embeddings and isolates, word joiner, invisible
# operators, BOM.
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
_URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
# Optional country code, optional area code in brackets, then 2-4 digit groups; only sequences
# with 7+ digits count, so years, scores and prices stay.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){1,4}(?![\w])"
)
_BLOCK_TAGS = {
    "br",
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "tr",
    "td",
    "th",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "blockquote",
    "section",
    "article",
}


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment: entities decoded, script/style dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def strip_html(text: str) -> str:
    if "<" not in text and "&" not in text:
        return text
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def fix_unicode(text: str) -> str:
    if text.isascii():
        return text
    import ftfy

    # Control characters are the `control` step's job, so each step counts only its own changes.
    return ftfy.fix_text(
        text, unescape_html=False, remove_control_chars=False, normalization="NFKC"
    )


def remove_control(text: str) -> str:
    return _CONTROL.sub("", text)


def handle_emoji(text: str, mode: str) -> str:
    if text.isascii() or mode == "keep":
        return text
    import emoji

    if mode == "remove":
        return emoji.replace_emoji(text, replace="")
    return emoji.demojize(text, delimiters=(" :", ": "))


def mask(text: str, kinds: list[str]) -> str:
    if "email" in kinds and "@" in text:
        text = _EMAIL.sub("<EMAIL>", text)
    if "url" in kinds and ("://" in text or "www." in text):
        text = _URL.sub("<URL>", text)
    if "phone" in kinds and _digits(text) >= 7:
        text = _PHONE.sub(lambda m: "<PHONE>" if _digits(m.group()) >= 7 else m.group(), text)
    return text


_DIGIT = re.compile(r"\d")


def _digits(text: str) -> int:
    return len(_DIGIT.findall(text))


def collapse_whitespace(text: str) -> str:
    return " ".join(text.split())


class Cleaner:
    """The enabled steps of `CleanOptions`, applied in order; remembers which changed a text."""

    def __init__(self, options: CleanOptions) -> None:
        self.options = options
        self.steps = options.enabled()
        self.changed: set[str] = set()

    def step(self, name: str, text: str) -> str:
        o = self.options
        if name == "html":
            return strip_html(text)
        if name == "unicode":
            return fix_unicode(text)
        if name == "control":
            return remove_control(text)
        if name == "emoji":
            return handle_emoji(text, o.emoji)
        if name == "mask":
            return mask(text, list(o.mask))
        return collapse_whitespace(text)

    def __call__(self, text: str) -> str:
        for name in self.steps:
            new = self.step(name, text)
            if new != text:
                self.changed.add(name)
                text = new
        return text
