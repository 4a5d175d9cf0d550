"""Label-preserving augmentation of the training split: EDA, masked-LM substitution and
back-translation.

EDA (Wei & Zou 2019: synonym replacement, random insertion, swap, deletion) is written here:
its published code is a script, and nlpaug's WordNet path needs `nltk.download`. Synonyms come
from WordNet (`tunewise.data.wordnet`). Masked-LM substitution uses transformers' fill-mask
pipeline with any masked LM; back-translation runs two user-supplied seq2seq models (e.g.
Marian en→de and de→en) with greedy decoding, so it is deterministic.

Every new example is derived from one original with one operation. The random generator of each
original is seeded from (seed, its index), so results do not depend on batching or order.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from tunewise.data.schemas import Schema
from tunewise.errors import ConfigError
from tunewise.prepare_options import AugmentOptions

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "at",
        "by",
        "for",
        "with",
        "about",
        "to",
        "from",
        "in",
        "on",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "they",
        "them",
        "his",
        "her",
        "their",
        "not",
        "no",
        "do",
        "does",
        "did",
        "so",
        "than",
        "too",
        "very",
        "can",
        "will",
        "just",
    ]
)


# -- EDA operations on a list of words -----------------------------------------------------------
def synonym_replace(words: list[str], n: int, rng: random.Random, wn_dir: str | None) -> list[str]:
    from tunewise.data.wordnet import synonyms

    out = list(words)
    positions = [i for i, w in enumerate(words) if w.isalpha() and w.lower() not in STOPWORDS]
    rng.shuffle(positions)
    replaced = 0
    for i in positions:
        options = synonyms(out[i], wn_dir)
        if options:
            out[i] = rng.choice(options)
            replaced += 1
        if replaced >= n:
            break
    return out


def random_insert(words: list[str], n: int, rng: random.Random, wn_dir: str | None) -> list[str]:
    """Insert a synonym of a random word at a random position, n times."""
    from tunewise.data.wordnet import synonyms

    out = list(words)
    candidates = [w for w in words if w.isalpha() and w.lower() not in STOPWORDS]
    for _ in range(n):
        rng.shuffle(candidates)
        found = next((s for w in candidates for s in synonyms(w, wn_dir)[:5]), None)
        if found is None:
            break
        out.insert(rng.randrange(len(out) + 1), found)
    return out


def random_swap(words: list[str], n: int, rng: random.Random) -> list[str]:
    out = list(words)
    if len(out) < 2:
        return out
    for _ in range(n):
        i, j = rng.sample(range(len(out)), 2)
        out[i], out[j] = out[j], out[i]
    return out


def random_delete(words: list[str], p: float, rng: random.Random) -> list[str]:
    """Drop each word with probability p; never return an empty text."""
    if len(words) <= 1:
        return list(words)
    kept = [w for w in words if rng.random() > p]
    return kept or [rng.choice(words)]


def eda(text: str, op: str, alpha: float, rng: random.Random, wn_dir: str | None = None) -> str:
    words = text.split()
    n = max(1, int(alpha * len(words)))
    if op == "synonym":
        words = synonym_replace(words, n, rng, wn_dir)
    elif op == "insert":
        words = random_insert(words, n, rng, wn_dir)
    elif op == "swap":
        words = random_swap(words, n, rng)
    else:
        words = random_delete(words, alpha, rng)
    return " ".join(words)


# -- model-based operations ----------------------------------------------------------------------
class FillMask:
    """Replace one random word with one of the masked LM's top predictions for it."""

    def __init__(self, model: str) -> None:
        from transformers import pipeline

        from tunewise.models import resolve

        path = resolve(model).path
        self.pipe = pipeline("fill-mask", model=path, tokenizer=path, device="cpu")
        self.mask = self.pipe.tokenizer.mask_token

    def __call__(self, text: str, rng: random.Random) -> str:
        words = text.split()
        if not words:
            return text
        i = rng.randrange(len(words))
        masked = " ".join([*words[:i], self.mask, *words[i + 1 :]])
        preds = self.pipe(masked, top_k=5)
        options = [p["token_str"].strip() for p in preds]
        options = [o for o in options if o and o.lower() != words[i].lower()]
        if not options:
            return text
        words[i] = rng.choice(options)
        return " ".join(words)


class BackTranslate:
    """Source → pivot → source through two seq2seq models (greedy, so deterministic)."""

    def __init__(self, forward: str, backward: str) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        from tunewise.models import resolve

        self.models = []
        for name in (forward, backward):
            path = resolve(name).path
            tok = AutoTokenizer.from_pretrained(path)
            model = AutoModelForSeq2SeqLM.from_pretrained(path).eval()
            self.models.append((tok, model))

    def translate(self, texts: list[str], which: int) -> list[str]:
        import torch

        tok, model = self.models[which]
        batch = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=256)
        batch = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        with torch.no_grad():
            # a translation is rarely much longer than its source; never past the positions
            limit = getattr(model.config, "max_position_embeddings", 512) - 2
            longest = int(batch["input_ids"].shape[1] * 1.5) + 8
            out = model.generate(
                **batch, num_beams=1, do_sample=False, max_new_tokens=min(longest, limit)
            )
        return tok.batch_decode(out, skip_special_tokens=True)

    def __call__(self, text: str, rng: random.Random) -> str:
        back = self.translate(self.translate([text], 0), 1)[0].strip()
        return back or text


# -- the step ------------------------------------------------------------------------------------
def copies_per_record(
    labels: list[str], multiplier: float | dict[str, float] | str, rng: random.Random
) -> list[int]:
    """New examples to make from each record (fractional multipliers decided at random)."""
    counts = Counter(labels)
    if multiplier == "balance":
        top = max(counts.values())
        per_class = {c: top / n for c, n in counts.items()}
    elif isinstance(multiplier, dict):
        per_class = {c: float(multiplier.get(c, 1.0)) for c in counts}
    else:
        per_class = {c: float(multiplier) for c in counts}
    out = []
    for label in labels:
        extra = max(per_class[label] - 1.0, 0.0)
        whole = int(extra)
        out.append(whole + (1 if rng.random() < extra - whole else 0))
    return out


def augment_records(
    records: list[dict[str, Any]], schema: Schema, options: AugmentOptions, seed: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """New records (originals not included) and how many each operation made."""
    if schema.name != "classification":
        raise ConfigError(
            f"data.prepare.augment: only classification data can be augmented; {schema.name} "
            "labels are tied to token or character positions that word edits would break."
        )
    ops = options.operations()
    if not ops:
        raise ConfigError("data.prepare.augment: no operation chosen (eda, fill_mask_model, ...).")
    if "synonym" in ops or "insert" in ops:
        from tunewise.data.wordnet import load_wordnet

        load_wordnet(options.wordnet_dir)  # a missing WordNet fails here, before any work
    models: dict[str, Any] = {}
    if options.fill_mask_model:
        models["fill_mask"] = FillMask(options.fill_mask_model)
    if options.back_translation:
        models["back_translation"] = BackTranslate(*options.back_translation)
    labels = [schema.label_key(r) for r in records]
    copies = copies_per_record(labels, options.multiplier, random.Random(f"{seed}:copies"))
    made: Counter[str] = Counter()
    out = []
    for index, (record, n) in enumerate(zip(records, copies, strict=True)):
        rng = random.Random(f"{seed}:{index}")
        for _ in range(n):
            op = rng.choice(ops)

            def edit(text: str, op: str = op, rng: random.Random = rng) -> str:
                if op in models:
                    return models[op](text, rng)
                return eda(text, op, options.alpha, rng, options.wordnet_dir)

            new = schema.map_texts(dict(record), edit)
            if schema.text_of(new) != schema.text_of(record):  # an unchanged copy adds nothing
                out.append(new)
                made[op] += 1
    return out, dict(made)
