"""Seeded perturbations of an evaluation set, for `tunewise eval --perturb` (robustness).

- `typos`: character noise in ~15% of the words of ≥ 3 letters (swap two neighbours, drop,
  repeat or replace one letter), at least one word per text.
- `synonyms`: WordNet synonym swaps of ~20% of the content words, with the data pipeline's EDA
  code (`tunewise.data.augment.synonym_replace`, WordNet from Debian's `wordnet-base`).
- `case`: ~30% of the words upper-, lower- or title-cased.
- `punctuation`: punctuation marks dropped (each with p = 0.5) and one added at the end.

Only the fields a model reads as free text change (`text`, `text_pair`, `question`,
`instruction`, `input`, `prompt`, `document`, `source`, and per word `words` for token
classification, whose tags stay aligned); labels, answers and contexts that answers point into
are left alone. Each example's generator is seeded from (seed, kind, row), so a perturbed set is
the same on every run and independent of batching.
"""

from __future__ import annotations

import random
import string
from typing import Any

from tunewise.errors import ConfigError

KINDS = ("typos", "synonyms", "case", "punctuation")
TEXT_FIELDS = ("text", "text_pair", "question", "instruction", "input", "prompt", "document")
TEXT_FIELDS += ("source",)
WORD_LIST_FIELDS = ("words",)  # token classification: one entry per tagged word
PUNCTUATION = ".,!?;:"


def parse_kinds(spec: str | list[str]) -> list[str]:
    kinds = [k.strip() for k in spec.split(",")] if isinstance(spec, str) else list(spec)
    kinds = [k for k in kinds if k]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ConfigError(
            f"--perturb: unknown perturbation(s) {', '.join(bad) or '(none given)'}; "
            f"choose from {', '.join(KINDS)} (comma-separated)."
        )
    return list(dict.fromkeys(kinds))


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word) - 1)
    op = rng.choice(("swap", "drop", "repeat", "replace"))
    if op == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == "drop":
        return word[:i] + word[i + 1 :]
    if op == "repeat":
        return word[: i + 1] + word[i] + word[i + 1 :]
    return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1 :]


def _words(words: list[str], kind: str, rng: random.Random, single: bool) -> list[str]:
    """Perturb a list of words; `single`: each stays one word (token classification)."""
    out = list(words)
    if kind == "typos":
        candidates = [i for i, w in enumerate(out) if len(w) >= 3 and w.isalpha()]
        rng.shuffle(candidates)
        for i in candidates[: max(1, round(0.15 * len(candidates)))]:
            out[i] = _typo(out[i], rng)
    elif kind == "synonyms":
        from tunewise.data.augment import synonym_replace

        n = max(1, round(0.2 * len(out)))
        swapped = synonym_replace(out, n, rng, None)
        out = [w if single and " " in s else s for w, s in zip(words, swapped, strict=True)]
    elif kind == "case":
        for i, w in enumerate(out):
            if rng.random() < 0.3:
                out[i] = rng.choice((str.upper, str.lower, str.title))(w)
    else:  # punctuation
        for i, w in enumerate(out):
            kept = "".join(c for c in w if c not in string.punctuation or rng.random() >= 0.5)
            out[i] = (kept or w) if single else kept
        out = [w for w in out if w] or list(words)
        if not single:
            out[-1] = out[-1] + rng.choice(PUNCTUATION)
    return out


def perturb_text(text: str, kind: str, rng: random.Random) -> str:
    words = text.split()
    return " ".join(_words(words, kind, rng, single=False)) if words else text


def perturb_dataset(dataset: Any, kind: str, seed: int) -> Any:
    """A copy of a task's dataset (as `Task.read` returns it) with its free-text fields
    perturbed; every other column unchanged."""
    if kind == "synonyms":
        from tunewise.data.wordnet import wordnet_dir

        wordnet_dir()  # a clear DataError when WordNet is not installed
    text_fields = [c for c in TEXT_FIELDS if c in dataset.column_names]
    word_fields = [c for c in WORD_LIST_FIELDS if c in dataset.column_names]
    if not text_fields and not word_fields:
        raise ConfigError(
            f"Nothing to perturb: the dataset has none of the text fields "
            f"{', '.join(TEXT_FIELDS + WORD_LIST_FIELDS)} (columns: {dataset.column_names})."
        )

    def change(row: dict[str, Any], index: int) -> dict[str, Any]:
        rng = random.Random(f"{seed}-{kind}-{index}")
        out: dict[str, Any] = {}
        for field in word_fields:
            out[field] = _words(list(row[field]), kind, rng, single=True)
            if "text" in row:  # token classification keeps text = the words joined
                out["text"] = " ".join(out[field])
        for field in text_fields:
            if field not in out and isinstance(row[field], str):
                out[field] = perturb_text(row[field], kind, rng)
        return out

    return dataset.map(change, with_indices=True, desc=f"perturbing ({kind})")


def check_kinds(spec: str | list[str]) -> list[str]:
    """Parse `--perturb` and check what the kinds need (WordNet) before any model loads."""
    kinds = parse_kinds(spec)
    if "synonyms" in kinds:
        from tunewise.data.wordnet import wordnet_dir

        wordnet_dir()
    return kinds


def evaluate_perturbed(
    predictor: Any, path: Any, kinds: list[str], seed: int = 42, progress: bool = True
) -> dict[str, Any]:
    """The clean metrics (exactly as a plain `eval` gives them) plus
    `perturbed: {kind: metrics with the same keys}`."""
    metrics = predictor.evaluate(path, progress=progress)
    dataset = predictor.read(path)
    perturbed = {}
    for kind in kinds:
        changed = perturb_dataset(dataset, kind, seed)
        perturbed[kind] = predictor.task.evaluate(
            predictor.model, predictor.tokenizer, changed, progress=progress
        )
    return {**metrics, "perturbed": perturbed}
