"""Augmentation: EDA operations, WordNet synonyms, masked-LM substitution and back-translation on
tiny random models, per-class multipliers, seeded reproducibility, train split only."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from conftest import WORDS, _tokenizer, sentiment_records, write_jsonl
from tunewise.data.augment import (
    augment_records,
    copies_per_record,
    eda,
    random_delete,
    random_swap,
)
from tunewise.data.prepare import prepare
from tunewise.data.schemas import schema_for
from tunewise.errors import ConfigError
from tunewise.prepare_options import AugmentOptions


def _wordnet_missing() -> str | None:
    from tunewise.data.wordnet import wordnet_dir
    from tunewise.errors import DataError

    try:
        wordnet_dir()
    except DataError as exc:
        return str(exc)
    return None


needs_wordnet = pytest.mark.skipif(_wordnet_missing() is not None, reason=_wordnet_missing() or "")


@pytest.fixture(scope="module")
def tiny_mlm(tmp_path_factory) -> Path:
    """A 1-layer random BERT with its masked-LM head saved (so reloads are identical)."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    directory = tmp_path_factory.mktemp("tiny-mlm")
    tok = _tokenizer(directory)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    BertForMaskedLM(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory) -> tuple[str, str]:
    """Two tiny random Marian models (forward and backward) sharing the toy vocabulary."""
    import torch
    from transformers import MarianConfig, MarianMTModel

    paths = []
    for name, seed in (("fwd", 0), ("bwd", 1)):
        directory = tmp_path_factory.mktemp(f"tiny-marian-{name}")
        tok = _tokenizer(directory)
        torch.manual_seed(seed)
        config = MarianConfig(
            vocab_size=len(tok),
            d_model=16,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_position_embeddings=64,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.sep_token_id,
            decoder_start_token_id=tok.cls_token_id,
            forced_eos_token_id=tok.sep_token_id,
        )
        model = MarianMTModel(config)
        model.generation_config.max_length = 12
        model.save_pretrained(directory)
        paths.append(str(directory))
    return paths[0], paths[1]


def test_swap_and_delete_keep_words_and_never_empty():
    words = ["one", "two", "three", "four", "five"]
    swapped = random_swap(words, 2, random.Random(0))
    assert sorted(swapped) == sorted(words) and swapped != words
    assert random_delete(["only"], 0.9, random.Random(0)) == ["only"]
    deleted = random_delete(words, 0.99, random.Random(1))
    assert 1 <= len(deleted) < len(words) and set(deleted) <= set(words)


@needs_wordnet
def test_synonym_replacement_and_insertion_use_wordnet():
    from tunewise.data.wordnet import synonyms

    assert "movie" in synonyms("film")
    assert synonyms("the") == []
    out = eda("the film was good", "synonym", 0.25, random.Random(0))
    assert out.startswith("the ") and " was " in out  # stopwords are never replaced
    assert out != "the film was good"
    changed = [w for w in out.split() if w not in {"the", "film", "was", "good"}]
    assert changed and all(
        w in " ".join(synonyms("film") + synonyms("good")).split() for w in changed
    )
    inserted = eda("the film was good", "insert", 0.25, random.Random(0)).split()
    assert len(inserted) > 4


def test_wordnet_missing_is_a_clear_error(tmp_path):
    from tunewise.data.wordnet import wordnet_dir
    from tunewise.errors import DataError

    with pytest.raises(DataError, match="apt-get install wordnet-base"):
        wordnet_dir(str(tmp_path))


def test_multiplier_per_class_and_balance():
    labels = ["a"] * 100 + ["b"] * 20
    copies = copies_per_record(labels, {"b": 3.0}, random.Random(0))
    assert sum(copies[:100]) == 0 and copies[100:] == [2] * 20
    balanced = copies_per_record(labels, "balance", random.Random(0))
    assert sum(balanced[:100]) == 0 and 70 <= sum(balanced[100:]) <= 90  # 20 × 4 expected
    half = copies_per_record(["a"] * 1000, 1.5, random.Random(0))
    assert set(half) == {0, 1} and 430 < sum(half) < 570


def _records(n: int = 20) -> list[dict]:
    return sentiment_records(n, seed=3)


def test_eda_augmentation_is_seeded_and_label_preserving():
    schema = schema_for("classification")
    opts = AugmentOptions(eda=["swap", "delete"], multiplier=3.0)
    one, made = augment_records(_records(), schema, opts, seed=5)
    two, _ = augment_records(_records(), schema, opts, seed=5)
    other, _ = augment_records(_records(), schema, opts, seed=6)
    assert one == two and one != other
    assert 30 <= len(one) <= 40 and set(made) <= {"swap", "delete"}
    originals = {r["text"]: r["label"] for r in _records()}
    for record in one:
        assert record["text"] not in originals
        assert set(record["text"].split()) <= set(WORDS)


def test_fill_mask_substitution_with_a_tiny_masked_lm(tiny_mlm):
    schema = schema_for("classification")
    opts = AugmentOptions(fill_mask_model=str(tiny_mlm), multiplier=2.0)
    one, made = augment_records(_records(8), schema, opts, seed=1)
    two, _ = augment_records(_records(8), schema, opts, seed=1)
    assert one == two and made == {"fill_mask": len(one)} and len(one) >= 6
    for new, old in zip(one, [r for r in _records(8)], strict=False):
        assert len(new["text"].split()) == len(old["text"].split())  # one word replaced


def test_back_translation_with_tiny_marian_models(tiny_marian):
    schema = schema_for("classification")
    opts = AugmentOptions(back_translation=list(tiny_marian), multiplier=2.0)
    records = _records(4)
    one, made = augment_records(records, schema, opts, seed=0)
    two, _ = augment_records(records, schema, opts, seed=0)
    assert one == two  # greedy decoding: deterministic
    assert made.get("back_translation", 0) == len(one) >= 1
    for record in one:
        assert record["label"] in {"pos", "neg"} and set(record["text"].split()) <= set(WORDS)


def test_augmentation_refuses_position_tied_tasks():
    with pytest.raises(ConfigError, match="only classification"):
        augment_records([], schema_for("ner"), AugmentOptions(eda=["swap"]), 0)


def test_prepare_augments_only_the_training_split(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", sentiment_records(60, seed=4))
    opts = {"augment": {"eda": ["swap"], "multiplier": {"neg": 2.0}}, "seed": 9}
    result = prepare(path, tmp_path / "out", options=opts)
    rows = {n: [json.loads(x) for x in p.read_text().splitlines()] for n, p in result.files.items()}
    n_aug = result.counts["n_augmented"]
    assert n_aug > 0 and result.counts["augmented_by"] == {"swap": n_aug}
    assert len(rows["train"]) == result.counts["n_train"]
    base = len(rows["train"]) - n_aug
    assert Counter(r["label"] for r in rows["train"][base:]) == {"neg": n_aug}
    eval_texts = {r["text"] for n in ("validation", "test") for r in rows[n]}
    originals = {r["text"] for r in sentiment_records(60, seed=4)}
    assert eval_texts <= originals  # nothing augmented outside train
    again = prepare(path, tmp_path / "again", options=opts)
    assert again.fingerprint == result.fingerprint
