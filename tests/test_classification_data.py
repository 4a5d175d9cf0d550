"""ClassificationTask data handling: reading, label discovery, validation errors, tokenizing,
decoding and metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import sentiment_records, write_jsonl
from tunewise.config import load_config
from tunewise.errors import DataError
from tunewise.registry import TASKS


def make_task(tmp_path: Path, data: dict, task: dict | None = None, model: dict | None = None):
    raw = {
        "model": {"name": "unused-model", **(model or {})},
        "data": data,
        "task": {"type": "classification", **(task or {})},
    }
    cfg = load_config(raw)
    return cfg, TASKS.get("classification")(cfg.task, cfg.data, cfg.model)


def read_train(tmp_path: Path, records: list[dict], **data):
    path = write_jsonl(tmp_path / "train.jsonl", records)
    cfg, task = make_task(tmp_path, {"train": str(path), **data})
    return task, task.read(cfg.data.split("train"), fit=True), cfg


def data_error(fn, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    return str(info.value)


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert)


# ------------------------------------------------------------------------- label discovery


def test_labels_are_discovered_from_train_and_sorted(tmp_path):
    records = [
        {"text": f"t{i}", "label": lab} for i, lab in enumerate(["pos", "neg", "mid", "neg"])
    ]
    task, ds, _ = read_train(tmp_path, records)
    assert task.labels == ["mid", "neg", "pos"]
    assert ds["label"] == [2, 1, 0, 1]
    assert ds["text"] == ["t0", "t1", "t2", "t3"]
    assert ds["line"] == [1, 2, 3, 4]
    assert task.multi_label is False


def test_numeric_labels_sort_numerically(tmp_path):
    records = [{"text": "a", "label": 10}, {"text": "b", "label": 2}, {"text": "c", "label": 1}]
    task, ds, _ = read_train(tmp_path, records)
    assert task.labels == ["1", "2", "10"]
    assert ds["label"] == [2, 1, 0]


def test_numeric_string_labels_sort_numerically_before_words(tmp_path):
    records = [{"text": str(i), "label": lab} for i, lab in enumerate(["10", "b", "9", "a", "-1"])]
    task, _, _ = read_train(tmp_path, records)
    assert task.labels == ["-1", "9", "10", "a", "b"]


def test_int_and_string_forms_of_a_label_are_the_same_label(tmp_path):
    # CSV gives "1", JSON gives 1 or 1.0: all one label
    records = [
        {"text": "a", "label": 1},
        {"text": "b", "label": "1"},
        {"text": "c", "label": 1.0},
        {"text": "d", "label": 0},
    ]
    task, ds, _ = read_train(tmp_path, records)
    assert task.labels == ["0", "1"]
    assert ds["label"] == [1, 1, 1, 0]


def test_labels_from_a_csv_file(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\nfirst,1\nsecond,0\nthird,1\n", encoding="utf-8")
    cfg, task = make_task(tmp_path, {"train": str(path)})
    ds = task.read(cfg.data.split("train"), fit=True)
    assert task.labels == ["0", "1"]
    assert ds["label"] == [1, 0, 1]
    assert ds["line"] == [2, 3, 4]


def test_label_map_renames_labels(tmp_path):
    records = [{"text": "a", "label": 0}, {"text": "b", "label": 1}, {"text": "c", "label": 1}]
    task, ds, _ = read_train(tmp_path, records, label_map={0: "negative", 1: "positive"})
    assert task.labels == ["negative", "positive"]
    assert ds["label"] == [0, 1, 1]


def test_label_map_applies_to_string_labels_and_leaves_others(tmp_path):
    records = [{"text": "a", "label": "0"}, {"text": "b", "label": "x"}]
    task, ds, _ = read_train(tmp_path, records, label_map={0: "zero"})
    assert task.labels == ["x", "zero"]
    assert ds["label"] == [1, 0]


def test_state_round_trips(tmp_path):
    task, _, cfg = read_train(tmp_path, sentiment_records(6))
    _, fresh = make_task(tmp_path, cfg.data.model_dump())
    fresh.load_state(json.loads(json.dumps(task.state())))
    assert fresh.labels == task.labels == ["neg", "pos"]
    assert fresh.multi_label is False


def test_single_class_training_data_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": "x"}] * 3)
    cfg, task = make_task(tmp_path, {"train": str(path)})
    msg = data_error(task.read, cfg.data.split("train"), fit=True)
    assert "single label" in msg
    assert "'x'" in msg


# ------------------------------------------------------------------------ validation errors


def test_validation_label_unseen_in_training(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", sentiment_records(8))
    dev = write_jsonl(
        tmp_path / "dev.jsonl",
        [{"text": "good film", "label": "pos"}, {"text": "meh film", "label": "neutral"}],
    )
    cfg, task = make_task(tmp_path, {"train": str(train), "validation": str(dev)})
    task.read(cfg.data.split("train"), fit=True)
    msg = data_error(task.read, cfg.data.split("validation"))
    assert str(dev) in msg
    assert "line 2" in msg
    assert "'neutral'" in msg
    assert "neg, pos" in msg  # the known labels
    assert "label_map" in msg


def test_reading_validation_does_not_refit_labels(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", sentiment_records(8))
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"text": "good", "label": "pos"}] * 2)
    cfg, task = make_task(tmp_path, {"train": str(train), "validation": str(dev)})
    task.read(cfg.data.split("train"), fit=True)
    ds = task.read(cfg.data.split("validation"))
    assert task.labels == ["neg", "pos"]
    assert ds["label"] == [1, 1]


def test_missing_label_value_names_file_and_line(tmp_path):
    records = [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}, {"text": "c", "label": ""}]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    cfg, task = make_task(tmp_path, {"train": str(path)})
    msg = data_error(task.read, cfg.data.split("train"), fit=True)
    assert str(path) in msg
    assert "line 3" in msg
    assert "'label'" in msg


def test_missing_label_column_lists_the_columns(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "sentiment": "x"}])
    cfg, task = make_task(tmp_path, {"train": str(path)})
    msg = data_error(task.read, cfg.data.split("train"), fit=True)
    assert "'label'" in msg
    assert "'text', 'sentiment'" in msg
    assert "data.label_column" in msg


def test_unlabelled_read_needs_no_label_column(tmp_path):
    path = write_jsonl(tmp_path / "inputs.jsonl", [{"text": "a"}, {"text": "b"}])
    cfg, task = make_task(tmp_path, {"train": str(path)})
    ds = task.read(cfg.data.split("train"), labelled=False)
    assert ds["text"] == ["a", "b"]
    assert "label" not in ds.column_names


# --------------------------------------------------------------------------------- columns


def test_text_column_list_picks_the_first_present_per_file(tmp_path):
    # SST-2 style: train has `sentence`, the dev file `content`
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [{"sentence": "good", "label": 1}, {"sentence": "bad", "label": 0}],
    )
    dev = write_jsonl(
        tmp_path / "dev.jsonl",
        [{"content": "fine", "sentence_id": 7, "label": 1}],
    )
    cfg, task = make_task(
        tmp_path,
        {"train": str(train), "validation": str(dev), "text_column": ["sentence", "content"]},
    )
    assert task.read(cfg.data.split("train"), fit=True)["text"] == ["good", "bad"]
    assert task.read(cfg.data.split("validation"))["text"] == ["fine"]


def test_per_file_column_override(tmp_path):
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [{"review": "good", "stars": "5"}, {"review": "bad", "stars": "1"}],
    )
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"text": "fine", "gold": "5"}])
    cfg, task = make_task(
        tmp_path,
        {
            "train": {"path": str(train), "text_column": "review"},
            "validation": {"path": str(dev), "label_column": "gold"},
            "label_column": "stars",
        },
    )
    train_ds = task.read(cfg.data.split("train"), fit=True)
    assert train_ds["text"] == ["good", "bad"]
    assert task.labels == ["1", "5"]
    dev_ds = task.read(cfg.data.split("validation"))
    assert dev_ds["text"] == ["fine"]
    assert dev_ds["label"] == [1]


def test_missing_text_column_lists_available_columns(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"sentence": "a", "label": 0, "idx": 3}])
    cfg, task = make_task(tmp_path, {"train": str(path), "text_column": ["text", "content"]})
    msg = data_error(task.read, cfg.data.split("train"), fit=True)
    assert str(path) in msg
    assert "'text' or 'content'" in msg
    assert "'sentence', 'label', 'idx'" in msg
    assert "data.text_column" in msg


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_empty_text_names_file_and_line(tmp_path, bad):
    records = [
        {"text": "ok", "label": "a"},
        {"text": "ok", "label": "b"},
        {"text": bad, "label": "a"},
    ]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    cfg, task = make_task(tmp_path, {"train": str(path)})
    msg = data_error(task.read, cfg.data.split("train"), fit=True)
    assert str(path) in msg
    assert "line 3" in msg
    assert "'text'" in msg


def test_text_missing_from_a_later_record(tmp_path):
    records = [{"text": "ok", "label": "a"}, {"title": "no text", "label": "b"}]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    cfg, task = make_task(tmp_path, {"train": str(path)})
    msg = data_error(task.read, cfg.data.split("train"), fit=True)
    assert "line 2" in msg


def test_numeric_text_is_accepted_as_text(tmp_path):
    _, ds, _ = read_train(tmp_path, [{"text": 42, "label": "a"}, {"text": 1.5, "label": "b"}])
    assert ds["text"] == ["42", "1.5"]


def test_errors_in_json_list_files_name_the_record_not_line_0(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps([{"text": "", "label": "a"}, {"text": "b", "label": "b"}]))
    cfg, task = make_task(tmp_path, {"train": str(path)})
    msg = data_error(task.read, cfg.data.split("train"), fit=True)
    # JSON list entries are numbered by index (the reader says "record 0"); "line 0" is no line
    assert "line 0" not in msg
    assert "record 0" in msg


# ------------------------------------------------------------------------------ text pairs


def test_text_pairs_are_read_and_tokenized_as_pairs(tmp_path, tokenizer):
    records = [
        {"premise": "the film was good", "hypothesis": "it is great", "label": "entail"},
        {"premise": "the plot was dull", "hypothesis": "it is great", "label": "contra"},
    ]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    cfg, task = make_task(
        tmp_path,
        {"train": str(path), "text_column": "premise", "text_pair_column": "hypothesis"},
    )
    ds = task.read(cfg.data.split("train"), fit=True)
    assert ds["text_pair"] == ["it is great", "it is great"]
    encoded = task.tokenize(ds, tokenizer)
    for row in encoded:
        types = row["token_type_ids"]
        assert 1 in types and 0 in types
        assert types == sorted(types)  # first segment 0s, then the pair's 1s
        assert row["input_ids"].count(tokenizer.sep_token_id) == 2
    single = task.tokenize(ds.remove_columns("text_pair"), tokenizer)
    assert all(1 not in row["token_type_ids"] for row in single)


def test_missing_pair_column_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": "x"}])
    cfg, task = make_task(tmp_path, {"train": str(path), "text_pair_column": "question"})
    msg = data_error(task.read, cfg.data.split("train"), fit=True)
    assert "'question'" in msg
    assert "data.text_pair_column" in msg


# ----------------------------------------------------------------------------- multi-label


def test_multi_label_from_json_lists(tmp_path):
    records = [
        {"text": "a", "label": ["sports", "politics"]},
        {"text": "b", "label": ["tech"]},
        {"text": "c", "label": []},
    ]
    task, ds, _ = read_train(tmp_path, records)
    assert task.multi_label is True
    assert task.labels == ["politics", "sports", "tech"]
    assert ds["label"] == [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def test_multi_label_from_a_separator(tmp_path):
    records = [
        {"text": "a", "label": "sports, politics"},
        {"text": "b", "label": "tech"},
        {"text": "c", "label": "tech,sports,"},
    ]
    task, ds, _ = read_train(tmp_path, records, label_separator=",")
    assert task.multi_label is True
    assert task.labels == ["politics", "sports", "tech"]
    assert ds["label"] == [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0]]


def test_multi_label_from_a_csv_separator_with_label_map(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\na,1|2\nb,2\n", encoding="utf-8")
    cfg, task = make_task(
        tmp_path, {"train": str(path), "label_separator": "|", "label_map": {1: "one", 2: "two"}}
    )
    ds = task.read(cfg.data.split("train"), fit=True)
    assert task.labels == ["one", "two"]
    assert ds["label"] == [[1.0, 1.0], [0.0, 1.0]]


def test_multi_label_can_be_forced_off(tmp_path):
    records = [{"text": "a", "label": ["x", "y"]}, {"text": "b", "label": ["y"]}]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    cfg, task = make_task(tmp_path, {"train": str(path)}, task={"multi_label": False})
    msg = data_error(task.read, cfg.data.split("train"), fit=True)
    assert "line 1" in msg
    assert "single-label" in msg


# ------------------------------------------------------------------------------- tokenize


def test_tokenize_adds_length_and_does_not_pad(tmp_path, tokenizer):
    records = [
        {"text": "good", "label": "pos"},
        {"text": "the film was really very bad and boring", "label": "neg"},
        {"text": "nice plot", "label": "pos"},
    ]
    task, ds, _ = read_train(tmp_path, records)
    encoded = task.tokenize(ds, tokenizer)
    assert set(encoded.column_names) >= {"input_ids", "attention_mask", "length", "labels"}
    assert "text" not in encoded.column_names and "line" not in encoded.column_names
    assert encoded["labels"] == [1, 0, 1]
    lengths = [len(ids) for ids in encoded["input_ids"]]
    assert encoded["length"] == lengths
    assert lengths == [3, 10, 4]  # [CLS] + words + [SEP]: no padding to a common length
    assert all(tokenizer.pad_token_id not in ids for ids in encoded["input_ids"])
    assert all(all(m == 1 for m in mask) for mask in encoded["attention_mask"])


def test_tokenize_truncates_to_max_length(tmp_path, tokenizer):
    records = [{"text": " ".join(["good"] * 50), "label": "a"}, {"text": "bad", "label": "b"}]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    cfg, task = make_task(tmp_path, {"train": str(path)}, model={"max_length": 8})
    encoded = task.tokenize(task.read(cfg.data.split("train"), fit=True), tokenizer)
    assert encoded["length"] == [8, 3]


def test_tokenize_unlabelled_has_no_labels_column(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": "good film"}])
    cfg, task = make_task(tmp_path, {"train": str(path)})
    encoded = task.tokenize(task.read(cfg.data.split("train"), labelled=False), tokenizer)
    assert "labels" not in encoded.column_names
    assert encoded["length"] == [4]


# ------------------------------------------------------------------------ decode and metrics


def fitted(labels: list[str], multi_label: bool = False, threshold: float = 0.5):
    cfg = load_config(
        {
            "model": {"name": "m"},
            "data": {"train": "unused.jsonl"},
            "task": {"type": "classification", "threshold": threshold},
        }
    )
    task = TASKS.get("classification")(cfg.task, cfg.data, cfg.model)
    task.load_state({"labels": labels, "multi_label": multi_label})
    return task


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_decode_single_label():
    task = fitted(["neg", "pos"])
    out = task.decode(np.array([[2.0, 0.0], [0.0, 3.0]]))
    assert [o["label"] for o in out] == ["neg", "pos"]
    assert out[0]["score"] == pytest.approx(math.exp(2) / (math.exp(2) + 1), abs=1e-6)
    assert out[1]["score"] == pytest.approx(math.exp(3) / (math.exp(3) + 1), abs=1e-6)
    assert set(out[0]["scores"]) == {"neg", "pos"}
    assert sum(out[0]["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    assert out[0]["scores"]["neg"] == out[0]["score"]
    json.dumps(out)  # plain Python types: JSON-serialisable


def test_decode_multi_label_gives_lists():
    task = fitted(["a", "b", "c"], multi_label=True)
    out = task.decode(np.array([[2.0, -2.0, 1.0], [-1.0, -1.0, -3.0]]))
    assert out[0]["label"] == ["a", "c"]
    assert out[0]["score"] == pytest.approx([sigmoid(2.0), sigmoid(1.0)], abs=1e-6)
    assert out[0]["scores"]["b"] == pytest.approx(sigmoid(-2.0), abs=1e-6)
    assert out[1]["label"] == []
    assert out[1]["score"] == []
    json.dumps(out)


def test_decode_multi_label_uses_the_threshold():
    task = fitted(["a", "b"], multi_label=True, threshold=0.9)
    out = task.decode(np.array([[2.0, 3.0]]))  # sigmoid: 0.881, 0.953
    assert out[0]["label"] == ["b"]


def test_compute_metrics_single_label_matches_hand_computed():
    task = fitted(["a", "b", "c"])
    truth = np.array([0, 0, 1, 1, 2, 2])
    predicted = [0, 1, 1, 1, 2, 0]
    logits = np.full((6, 3), -1.0)
    logits[np.arange(6), predicted] = 1.0
    m = task.compute_metrics(logits, truth)
    # per class: a P=1/2 R=1/2 F1=1/2; b P=2/3 R=1 F1=4/5; c P=1 R=1/2 F1=2/3
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert m["macro_precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["micro_f1"] == pytest.approx(4 / 6)
    assert m["n_examples"] == 6
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["per_class"]["b"]["recall"] == pytest.approx(1.0)
    assert m["labels"] == ["a", "b", "c"]


def test_compute_metrics_multi_label_is_exact_match_accuracy():
    task = fitted(["x", "y"], multi_label=True)
    truth = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    logits = np.array([[3.0, -3.0], [3.0, -3.0], [-3.0, 3.0]])  # second row misses `y`
    m = task.compute_metrics(logits, truth)
    assert m["accuracy"] == pytest.approx(2 / 3)
    # x: P=1 R=1 F1=1; y: P=1 R=1/2 F1=2/3
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["n_examples"] == 3
