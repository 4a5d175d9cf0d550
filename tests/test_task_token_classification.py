"""Token classification: reading CoNLL/JSONL (label set, BIO, errors naming file/line/value),
sub-word alignment and character offsets (hypothesis properties on two tokenizer families),
seqeval metrics against hand-computed values, training with several strategies on tiny BERT and
LLaMA, and the run → eval → predict round trip."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities
from typer.testing import CliRunner

from conftest import FILLER, NEGATIVE, POSITIVE, write_jsonl
from tunewise import api
from tunewise.assemble import assemble
from tunewise.cli import app
from tunewise.config import SplitFile, load_config
from tunewise.errors import DataError
from tunewise.evaluation.ner import entity_metrics
from tunewise.registry import TASKS
from tunewise.tasks.token_classification.align import (
    IGNORE,
    align_labels,
    entity_spans,
    first_tokens,
    join_words,
    split_words,
    token_words,
)
from tunewise.tasks.token_classification.encode import encode_words, word_windows

LABELS = ["O", "B-NEG", "I-NEG", "B-POS", "I-POS"]


def word_values(
    word_ids: list[int | None], token_values: list[int], n_words: int, missing: int
) -> list[int]:
    """Per-token values (e.g. predicted label ids) back to words, read at each word's first
    token; words with no token get `missing`. The inverse of `align_labels` (a test helper)."""
    return [
        missing if position is None else int(token_values[position])
        for position in first_tokens(word_ids, n_words)
    ]


def ner_sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """Toy NER: runs of 1-2 positive words are POS entities, of negative words NEG, fillers O.
    First and continuation words come from different halves of each pool, so a word alone tells
    its tag (a tiny random model learns that in a few steps; B/I from context takes longer)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words, tags = [], []
        for _ in range(rng.randint(2, 5)):
            kind = rng.choice(["O", "O", "POS", "NEG"])
            if kind == "O":
                words.append(rng.choice(FILLER))
                tags.append("O")
                continue
            pool = POSITIVE if kind == "POS" else NEGATIVE
            for i in range(rng.randint(1, 2)):
                words.append(rng.choice(pool[5:] if i else pool[:5]))
                tags.append(("B-" if i == 0 else "I-") + kind)
            words.append(rng.choice(FILLER))  # entities never touch, so BIO is unambiguous
            tags.append("O")
        out.append((words, tags))
    return out


def write_conll(path: Path, sentences, docstart: bool = True) -> Path:
    lines = ["-DOCSTART- -X- O", ""] if docstart else []
    for words, tags in sentences:
        lines += [f"{w} X {t}" for w, t in zip(words, tags, strict=True)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def ner_data(tmp_path) -> dict[str, Path]:
    return {
        "train": write_conll(tmp_path / "train.txt", ner_sentences(96, seed=1)),
        "validation": write_conll(tmp_path / "dev.txt", ner_sentences(32, seed=2)),
    }


def ner_config(model_dir: Path, data: dict[str, Path], out: Path, strategy: str = "full", **kw):
    cfg = {
        "model": {"name": str(model_dir), "max_length": 32},
        "task": {"type": "token_classification"},
        "data": {"train": str(data["train"]), "validation": str(data["validation"])},
        "strategy": {"name": strategy},
        "training": {"epochs": 6, "batch_size": 8, "learning_rate": 2e-3, "logging_steps": 4},
        "output_dir": str(out),
        "seed": 0,
    }
    cfg.update(kw)
    return cfg


def make_task(**options):
    cfg = load_config(
        {
            "model": {"name": "unused", "max_length": 32},
            "task": {"type": "token_classification", **options},
            "data": {"train": "unused"},
        }
    )
    return TASKS.get("token_classification")(cfg.task, cfg.data, cfg.model)


# ------------------------------------------------------------------------------------ reading


def test_conll_and_jsonl_read_alike_and_labels_are_learned(ner_data, tmp_path):
    sentences = ner_sentences(96, seed=1)
    jsonl = write_jsonl(
        tmp_path / "train.jsonl", [{"tokens": w, "ner_tags": t} for w, t in sentences]
    )
    conll_task, json_task = make_task(), make_task()
    from_conll = conll_task.read(SplitFile(path=str(ner_data["train"])), fit=True)
    from_json = json_task.read(SplitFile(path=str(jsonl)), fit=True)
    assert conll_task.labels == json_task.labels == LABELS
    assert from_conll["words"] == from_json["words"] == [w for w, _ in sentences]
    assert from_conll["tags"] == from_json["tags"]
    assert [LABELS[i] for i in from_conll["tags"][0]] == sentences[0][1]
    assert from_conll["line"][0] == 3  # after -DOCSTART- and its blank line
    assert from_conll["text"][0] == " ".join(sentences[0][0])
    counts = conll_task.label_counts(from_conll)
    assert counts == {k: sum(t.count(f"B-{k}") for _, t in sentences) for k in ("NEG", "POS")}


def test_iob1_files_are_converted_and_strict_bio_rejects_them(tmp_path):
    path = tmp_path / "iob1.txt"
    path.write_text("good I-POS\nbad I-NEG\nawful B-NEG\nthe O\n", encoding="utf-8")
    task = make_task()
    ds = task.read(SplitFile(path=str(path)), fit=True)
    assert [task.labels[i] for i in ds["tags"][0]] == ["B-POS", "B-NEG", "B-NEG", "O"]
    with pytest.raises(DataError, match=r"iob1\.txt, sentence at line 1: an entity starts"):
        make_task(tag_scheme="bio").read(SplitFile(path=str(path)), fit=True)


def test_unknown_entity_type_in_evaluation_names_file_line_and_value(ner_data, tmp_path):
    task = make_task()
    task.read(SplitFile(path=str(ner_data["train"])), fit=True)
    bad = tmp_path / "test.txt"
    bad.write_text("good B-POS\n\nthe O\nParis B-LOC\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test\.txt, line 4: tag 'B-LOC'.*known types: NEG, POS"):
        task.read(SplitFile(path=str(bad)))
    # a type seen only as single words in training still accepts I- in evaluation
    ok = tmp_path / "ok.txt"
    ok.write_text("good B-POS\ngreat I-POS\n", encoding="utf-8")
    assert task.read(SplitFile(path=str(ok)))["tags"] == [[3, 4]]


def test_malformed_tags_and_records_name_their_place(tmp_path):
    conll = tmp_path / "pos.txt"
    conll.write_text("good X B-POS\nbad X NNP\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pos\.txt, line 2: tag 'NNP' is not 'O'"):
        make_task().read(SplitFile(path=str(conll)), fit=True)
    cases = [
        ({"tokens": ["a", "b"], "tags": ["O"]}, r"line 2: needs a list of 2 tags"),
        ({"tokens": "a b", "tags": ["O"]}, r"line 2: field 'tokens' must be a non-empty list"),
        ({"tokens": ["a", " "], "tags": ["O", "O"]}, r"line 2: tokens\[1\] is ' '"),
        ({"tokens": ["a", "b"], "tags": ["O", "X-1"]}, r"line 2, tags\[1\]: tag 'X-1'"),
    ]
    for record, message in cases:
        path = write_jsonl(tmp_path / "bad.jsonl", [{"tokens": ["ok"], "tags": ["B-A"]}, record])
        with pytest.raises(DataError, match=message):
            make_task().read(SplitFile(path=str(path)), fit=True)
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(Exception, match="not CSV"):
        make_task().read(SplitFile(path=str(csv), format="csv"), fit=True)


def test_training_data_without_entities_is_an_error(tmp_path):
    path = tmp_path / "o.txt"
    path.write_text("the O\nfilm O\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"o\.txt: the training data has no entities"):
        make_task().read(SplitFile(path=str(path)), fit=True)


def test_label_map_maps_integer_tags(tmp_path):
    path = write_jsonl(tmp_path / "ids.jsonl", [{"tokens": ["good", "the"], "tags": [1, 0]}])
    cfg = load_config(
        {
            "model": {"name": "unused"},
            "task": {"type": "token_classification"},
            "data": {"train": str(path), "label_map": {0: "O", 1: "B-POS"}},
        }
    )
    task = TASKS.get("token_classification")(cfg.task, cfg.data, cfg.model)
    ds = task.read(cfg.data.split("train"), fit=True)
    assert task.labels == ["O", "B-POS", "I-POS"] and ds["tags"] == [[1, 0]]


# ------------------------------------------------------------------ alignment and offsets


ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,'-!?éü"


def char_wordpiece():
    """A WordPiece tokenizer that splits every word into characters: many sub-words per word."""
    from transformers import BertTokenizerFast

    chars = sorted(set(ALPHABET.lower()))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *[f"##{c}" for c in chars]]
    return BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)


def byte_level_bpe():
    """A small byte-level BPE (GPT-2 family): offsets can include the leading space."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        [" ".join(POSITIVE + NEGATIVE + FILLER)] * 3, vocab_size=300, show_progress=False
    )
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer)


TOKENIZERS = {"wordpiece": char_wordpiece(), "bpe": byte_level_bpe()}
WORDS = st.lists(st.text(ALPHABET, min_size=1, max_size=8), min_size=1, max_size=12)


@pytest.mark.parametrize("kind", list(TOKENIZERS))
@settings(max_examples=60, deadline=None)
@given(words=WORDS, data=st.data())
def test_labels_align_to_first_subwords_and_round_trip_exactly(kind, words, data):
    tokenizer = TOKENIZERS[kind]
    tags = data.draw(st.lists(st.integers(0, 4), min_size=len(words), max_size=len(words)))
    text, spans = join_words(words)
    enc = tokenizer(text, return_offsets_mapping=True)
    word_ids = token_words(enc["offset_mapping"], spans)
    labels = align_labels(word_ids, tags)
    assert len(labels) == len(enc["input_ids"])
    # every word got tokens, its first one carries its tag, all others are ignored
    firsts = first_tokens(word_ids, len(words))
    assert None not in firsts
    assert [p for p, v in enumerate(labels) if v != IGNORE] == sorted(firsts)
    assert word_values(word_ids, labels, len(words), missing=-1) == tags
    # tokens map to words in order, and each token lies inside its word's span
    mapped = [w for w in word_ids if w is not None]
    assert mapped == sorted(mapped)
    for (start, end), w in zip(enc["offset_mapping"], word_ids, strict=True):
        if w is not None:
            assert spans[w][0] < end and start < spans[w][1]


@pytest.mark.parametrize("kind", list(TOKENIZERS))
@settings(max_examples=60, deadline=None)
@given(batch=st.lists(WORDS, min_size=1, max_size=3), max_length=st.integers(3, 16))
def test_long_inputs_split_into_word_windows_that_cover_every_word_once(kind, batch, max_length):
    tokenizer = TOKENIZERS[kind]
    joined = [join_words(words) for words in batch]
    rows = encode_words(tokenizer, [t for t, _ in joined], [s for _, s in joined], max_length)
    for i, words in enumerate(batch):
        mine = [r for r in rows if r["example"] == i]
        assert mine and all(len(r["input_ids"]) <= max_length for r in mine)
        firsts = [w for r in mine for w in sorted(set(r["word_ids"]) - {None})]
        # windows are consecutive runs of whole words, each word in exactly one window
        # (a word longer than a whole window keeps its first tokens)
        assert firsts == list(range(len(words)))
        tags = list(range(len(words)))
        merged = {}
        for r in mine:
            labels = align_labels(r["word_ids"], tags)
            merged.update({w: v for w, v in zip(r["word_ids"], labels, strict=True) if v != IGNORE})
        assert [merged[w] for w in range(len(words))] == tags


def test_word_windows():
    assert word_windows([2, 2, 2, 2], 4) == [(0, 2), (2, 4)]
    assert word_windows([1, 5, 1], 3) == [(0, 1), (1, 2), (2, 3)]  # 5 > 3: alone
    assert word_windows([1, 1, 1], 10) == [(0, 3)]
    assert word_windows([], 4) == []


@settings(max_examples=40, deadline=None)
@given(words=WORDS, max_length=st.integers(3, 12))
def test_truncation_keeps_a_prefix_of_words(words, max_length):
    tokenizer = TOKENIZERS["wordpiece"]
    text, spans = join_words(words)
    enc = tokenizer(text, return_offsets_mapping=True, truncation=True, max_length=max_length)
    firsts = first_tokens(token_words(enc["offset_mapping"], spans), len(words))
    kept = [p is not None for p in firsts]
    assert kept == sorted(kept, reverse=True)  # True... then False...
    filled = word_values(token_words(enc["offset_mapping"], spans), [1] * max_length, len(words), 0)
    assert filled == [int(k) for k in kept]


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_split_words_spans_are_exact_and_cover_every_visible_character(text):
    words, spans = split_words(text)
    covered = set()
    previous_end = 0
    for word, (start, end) in zip(words, spans, strict=True):
        assert text[start:end] == word and start >= previous_end and end > start
        assert not any(c.isspace() for c in word)
        covered.update(range(start, end))
        previous_end = end
    assert covered == {i for i, c in enumerate(text) if not c.isspace()}


def test_split_words_looks_like_conll_tokens():
    words, _ = split_words("Acme hires Norway's staff, says U.S. envoy (1,000 tons).")
    assert words == [
        "Acme", "hires", "Norway", "'s", "staff", ",", "says", "U.S.", "envoy", "(", "1,000",
        "tons", ")", ".",
    ]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(st.sampled_from("ab .,'Xé\n"), max_size=40),
    data=st.data(),
)
def test_entity_spans_are_character_exact(text, data):
    words, spans = split_words(text)
    tags = data.draw(st.lists(st.sampled_from(LABELS), min_size=len(words), max_size=len(words)))
    scores = data.draw(st.lists(st.floats(0, 1), min_size=len(words), max_size=len(words)))
    entities = entity_spans(text, spans, tags, scores)
    assert len(entities) == len(get_entities(tags))
    starts, ends = {s for s, _ in spans}, {e for _, e in spans}
    previous = 0
    for entity, (kind, first, last) in zip(entities, get_entities(tags), strict=True):
        assert entity["type"] == kind
        assert entity["text"] == text[entity["start"] : entity["end"]]
        assert entity["start"] in starts and entity["end"] in ends
        assert entity["start"] >= previous and entity["start"] < entity["end"]
        assert entity["text"].startswith(words[first]) and entity["text"].endswith(words[last])
        assert min(scores[first : last + 1]) - 1e-6 <= entity["score"]
        assert entity["score"] <= max(scores[first : last + 1]) + 1e-6
        previous = entity["end"]


# ------------------------------------------------------------------------------------ metrics


def test_entity_metrics_match_hand_computed_values():
    y_true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    y_pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "B-PER"]]
    m = entity_metrics(y_true, y_pred)
    # gold: PER×2, LOC, ORG (4); predicted: PER×2, ORG×2 (4); right: PER×2, ORG (3)
    assert m["precision"] == pytest.approx(3 / 4) and m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(3 / 4)
    assert m["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert m["per_type"]["ORG"]["precision"] == pytest.approx(1 / 2)
    assert m["per_type"]["ORG"]["f1"] == pytest.approx(2 / 3)
    assert m["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert m["accuracy"] == pytest.approx(6 / 7)
    assert (m["n_examples"], m["n_entities"]) == (2, 4)
    # a partly right span is wrong at entity level
    half = entity_metrics([["B-PER", "I-PER"]], [["B-PER", "O"]])
    assert (half["precision"], half["recall"], half["f1"]) == (0.0, 0.0, 0.0)


def test_trainer_metrics_read_words_at_labelled_tokens_only():
    task = make_task()
    task.labels = LABELS
    # two examples padded to 5 tokens; -100 marks special, continuation and padding tokens
    labels = np.array([[-100, 3, -100, 0, -100], [-100, 1, 2, -100, -100]])
    logits = np.full((2, 5, 5), -1.0)
    for row, picks in enumerate([[0, 3, 1, 0, 1], [0, 1, 0, 4, 4]]):
        for pos, k in enumerate(picks):
            logits[row, pos, k] = 1.0
    m = task.compute_metrics(logits, labels)
    expected = entity_metrics(
        [["B-POS", "O"], ["B-NEG", "I-NEG"]], [["B-POS", "O"], ["B-NEG", "O"]]
    )
    assert m == expected and m["precision"] == pytest.approx(1 / 2)


# --------------------------------------------------------------------- models and strategies

CASES = [
    ("tiny_bert", "full"),
    ("tiny_bert", "lora"),
    ("tiny_bert", "frozen"),
    ("tiny_bert", "partial"),
    ("tiny_bert", "bitfit"),
    ("tiny_llama", "full"),
    ("tiny_llama", "lora"),
]


@pytest.mark.parametrize(("key", "strategy_name"), CASES)
def test_a_few_steps_lower_the_loss_and_logits_are_per_token(
    key, strategy_name, ner_data, tmp_path, request
):
    cfg = load_config(ner_config(request.getfixturevalue(key), ner_data, tmp_path, strategy_name))
    task = TASKS.get("token_classification")(cfg.task, cfg.data, cfg.model)
    train = task.read(cfg.data.split("train"), fit=True)
    built = assemble(cfg, task)
    encoded = task.tokenize(train.select(range(16)), built.tokenizer)
    keep = ["input_ids", "token_type_ids", "attention_mask", "labels"]
    rows = encoded.select_columns([c for c in keep if c in encoded.column_names])
    batch = task.collator(built.tokenizer)([rows[i] for i in range(16)])
    model = built.model

    def loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(model(**batch).loss)

    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    before = loss()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    torch.manual_seed(0)
    for _ in range(12):
        model.train()
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    assert loss() < 0.9 * before
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    model.eval()
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    assert logits.shape == (*batch["input_ids"].shape, len(LABELS))


def test_left_padding_tokenizers_still_pad_right(tiny_bert, ner_data, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    tokenizer.padding_side = "left"
    task = make_task()
    train = task.read(SplitFile(path=str(ner_data["train"])), fit=True)
    encoded = task.tokenize(train.select(range(4)), tokenizer).select_columns(
        ["input_ids", "attention_mask", "labels"]
    )
    batch = task.collator(tokenizer)([encoded[i] for i in range(4)])
    for row, example in zip(batch["labels"].tolist(), encoded, strict=True):
        n = len(example["labels"])
        assert row[:n] == example["labels"] and set(row[n:]) <= {IGNORE}
    assert tokenizer.padding_side == "left"


def test_run_eval_and_predict_round_trip(tiny_bert, ner_data, tmp_path):
    out = tmp_path / "run"
    result = api.finetune(ner_config(tiny_bert, ner_data, out, "full"))
    val = result.metrics["validation"]
    assert val["f1"] > 0.9, val  # the toy task is separable by word identity
    assert result.manifest["task"]["state"]["labels"] == LABELS
    assert set(result.manifest["data"]["train"]["label_counts"]) == {"NEG", "POS"}

    # `tunewise eval RUN --data test.txt --output m.json`, format detected from a .txt file
    metrics_file = tmp_path / "m.json"
    run = CliRunner().invoke(
        app,
        ["eval", str(out), "--data", str(ner_data["validation"]), "--output", str(metrics_file)],
    )
    assert run.exit_code == 0, run.output
    written = json.loads(metrics_file.read_text())
    for key in ("f1", "precision", "recall", "n_examples"):
        assert written[key] == val[key]
    assert written["n_examples"] == 32

    predictor = result.load()
    text = "The film was  great, but the plot awful!"
    [pred] = predictor.predict([text])
    assert pred["tokens"] == split_words(text)[0]
    assert len(pred["tags"]) == len(pred["tokens"]) and set(pred["tags"]) <= set(LABELS)
    assert [(e["type"], e["text"]) for e in pred["entities"]] == [
        ("POS", "great"),
        ("NEG", "awful"),
    ]
    for e in pred["entities"]:
        assert text[e["start"] : e["end"]] == e["text"] and 0 < e["score"] <= 1
    [given] = predictor.predict([{"tokens": ["awful", "movie"]}])
    assert given["entities"][0] == {**given["entities"][0], "start": 0, "end": 5, "type": "NEG"}

    # past max_length (32 tokens) the text is read in windows of whole words: nothing is lost
    text = " ".join(["the"] * 45 + ["great", "film"] + ["the"] * 30 + ["awful"])
    [long] = predictor.predict([text])
    assert not long["truncated"] and len(long["tags"]) == 78
    assert [(e["type"], e["start"], e["text"]) for e in long["entities"]] == [
        ("POS", text.index("great"), "great"),
        ("NEG", text.index("awful"), "awful"),
    ]


def test_task_default_batch_size_applies_only_when_the_config_sets_none(
    tiny_bert, ner_data, tmp_path
):
    cfg = ner_config(tiny_bert, ner_data, tmp_path / "a", "frozen")
    cfg["training"] = {"epochs": 1, "learning_rate": 1e-3}
    cfg["eval"] = {"each_epoch": False}
    result = api.finetune(cfg)
    assert result.manifest["config"]["training"]["batch_size"] == 16
    assert result.manifest["training"]["steps"] == 96 // 16
    cfg["training"]["batch_size"] = 32
    cfg["output_dir"] = str(tmp_path / "b")
    assert api.finetune(cfg).manifest["training"]["steps"] == 96 // 32
