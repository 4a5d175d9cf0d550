"""Prediction skips `datasets`' fingerprint hashing of the tokenizer, and puts it back after."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve_helpers import classification_run


@pytest.fixture
def hashed(monkeypatch) -> list[str]:
    """Names of the functions `datasets` hashes to fingerprint a transform, as they happen."""
    import datasets.fingerprint as fp

    seen: list[str] = []
    original = fp.Hasher.hash

    def spy(cls, value):
        if callable(value):
            seen.append(getattr(value, "__qualname__", repr(value)))
        return original(value)

    monkeypatch.setattr(fp.Hasher, "hash", classmethod(spy))
    return seen


def test_random_fingerprints_skips_hashing_the_transform_and_restores(hashed) -> None:
    import datasets.arrow_dataset as arrow
    import datasets.fingerprint as fp
    from datasets import Dataset

    from tunewise.inference.fingerprints import random_fingerprints

    before = fp.update_fingerprint, arrow.update_fingerprint
    ds = Dataset.from_dict({"text": ["a", "bb"]})

    def encode(batch):
        return {"n": [len(t) for t in batch["text"]]}

    with random_fingerprints():
        inside = ds.map(encode, batched=True)
    assert inside["n"] == [1, 2]
    assert not any("encode" in name for name in hashed)  # the transform was never pickled
    assert (fp.update_fingerprint, arrow.update_fingerprint) == before
    ds.map(encode, batched=True)  # outside: `datasets` hashes as usual
    assert any("encode" in name for name in hashed)


def test_predictor_predict_never_hashes_the_tokenizer(tmp_path: Path, tiny_bert, hashed) -> None:
    import tunewise

    run = classification_run(tmp_path, tiny_bert)
    predictor = tunewise.load(run, device="cpu")
    hashed.clear()  # training and loading may hash; prediction must not
    first = predictor.predict(["good film", "a bad one, really"])
    assert not hashed  # no tokenize function (holding the tokenizer) was pickled to hash it
    again = predictor.predict(["a bad one, really"])  # same answer alone as in a batch
    assert again[0]["label"] == first[1]["label"]
    assert again[0]["score"] == pytest.approx(first[1]["score"], abs=1e-5)


def test_classification_predicts_records_in_memory_as_through_a_dataset(
    tmp_path: Path, tiny_bert, monkeypatch
) -> None:
    """The in-memory path (no `datasets` table per request) gives what the dataset path gives,
    for single texts and text pairs, in input order."""
    import datasets

    import tunewise

    run = classification_run(tmp_path, tiny_bert)
    p = tunewise.load(run, device="cpu")
    texts = ["good film", "a bad one, really, and far too long to sit through", "meh", "ok ok"]
    pairs = [{"text": t, "text_pair": t[::-1]} for t in texts]
    for inputs in (texts, pairs):
        via_dataset = p.task.predict(p.model, p.tokenizer, p.task.records_to_dataset(inputs), 2)
        monkeypatch.setattr(datasets.Dataset, "from_dict", None)  # in memory: never called
        in_memory = p.predict(inputs, batch_size=2)
        monkeypatch.undo()
        assert [x["label"] for x in in_memory] == [x["label"] for x in via_dataset]
        for a, b in zip(in_memory, via_dataset, strict=True):
            assert a["scores"] == pytest.approx(b["scores"], abs=1e-6)
    assert p.predict(texts)[0]["scores"] != p.predict(pairs)[0]["scores"]  # the pair is used


def test_columns_map_like_a_dataset() -> None:
    """The in-memory table gives what `Dataset.map(batched=True, with_indices=True)` gives."""
    from datasets import Dataset

    from tunewise.inference.columns import Columns

    data = {"text": ["a b", "c", "d e f"], "keep": [1, 2, 3]}

    def split(batch, indices):  # one row per word: the row count changes
        words = [(w, i) for t, i in zip(batch["text"], indices, strict=True) for w in t.split()]
        return {"word": [w for w, _ in words], "example": [i for _, i in words]}

    got = Columns(data).map(split, with_indices=True, remove_columns=["text", "keep"])
    want = Dataset.from_dict(data).map(
        split, batched=True, with_indices=True, remove_columns=["text", "keep"]
    )
    assert got.column_names == want.column_names and len(got) == len(want) == 6
    assert got["example"] == want["example"] and got[4] == want[4]
    same_rows = Columns(data).map(lambda b: {"n": [len(t) for t in b["text"]]})
    assert same_rows.column_names == ["text", "keep", "n"] and same_rows[2]["n"] == 5
    with pytest.raises(ValueError, match="different lengths"):
        Columns({"a": [1], "b": [1, 2]})
