"""Exact and near duplicates (known Jaccard similarities), conflicts, leakage between splits."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tunewise.data import dedup
from tunewise.data.prepare import prepare


def _vocab(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=7)) for _ in range(n)]


def _variant(words: list[str], changed: int, fresh: list[str]) -> list[str]:
    """The same words with the last `changed` replaced by unseen ones."""
    return words[: len(words) - changed] + fresh[:changed]


def test_normalisation_for_exact_duplicates():
    assert dedup.exact_key("Hello   World") == dedup.exact_key(" hello world\n")
    assert dedup.exact_key("ｈｅｌｌｏ") == dedup.exact_key("hello")  # NFKC
    assert dedup.exact_key("hello world") != dedup.exact_key("hello, world")


def test_shingles_and_jaccard():
    assert dedup.shingles("a b c d", 3) == {"a b c", "b c d"}
    assert dedup.shingles("A  b", 3) == {"a b"}
    assert dedup.jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)


@pytest.mark.parametrize("ngram", [1, 3])
def test_near_duplicates_found_above_and_only_above_the_threshold(ngram):
    """Pairs built at known Jaccard similarities: 0.95 and 0.86 are found at 0.8; 0.74, 0.52
    and unrelated texts are not."""
    vocab = _vocab(400)
    base = [vocab[i * 40 : i * 40 + 40] for i in range(5)]  # 5 unrelated 40-word texts
    fresh = vocab[200:]
    texts, expected = [], {}
    for words in base:
        texts.append(" ".join(words))
    for i, changed in enumerate([1, 3, 6, 13]):
        variant = _variant(base[i], changed, fresh[i * 20 :])
        j = dedup.jaccard(dedup.shingles(texts[i], ngram), dedup.shingles(" ".join(variant), ngram))
        expected[len(texts)] = (i, j)
        texts.append(" ".join(variant))
    hasher = dedup.BandHasher(0.8, 128, ngram)
    bands = np.stack([hasher(t) for t in texts])
    rep, _ = dedup.near_groups(bands, lambda idx: [texts[i] for i in idx], 0.8, ngram)
    for index, (original, similarity) in expected.items():
        if similarity >= 0.8:
            assert rep[index] == original, (index, similarity)
        else:
            assert rep[index] == index, (index, similarity)
    assert list(rep[:5]) == [0, 1, 2, 3, 4]
    assert sum(s >= 0.8 for _, s in expected.values()) == 2  # the test covers both sides


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_prepare_counts_exact_and_near_duplicates_and_conflicts(tmp_path):
    vocab = _vocab(500, seed=1)
    records = [{"text": " ".join(vocab[i * 20 : i * 20 + 20]), "label": "a"} for i in range(20)]
    records.append({"text": records[0]["text"].upper() + "  ", "label": "a"})  # exact dup
    records.append({"text": records[1]["text"], "label": "b"})  # exact dup, other label
    near = records[2]["text"].split()
    near[-1] = "zzzzzz"  # 20 words, last changed: word-3-gram Jaccard 17/19 = 0.89
    records.append({"text": " ".join(near), "label": "a"})
    path = _write(tmp_path / "d.jsonl", records)
    result = prepare(path, tmp_path / "out", options={"dedup": {"near": True}, "split": [0.5, 0.5]})
    c = result.counts
    assert (c["n_exact_duplicates"], c["n_near_duplicates"], c["n_conflicting_groups"]) == (2, 1, 1)
    assert c["n_output"] == 20
    removed = [json.loads(x) for x in (tmp_path / "out/removed.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in removed] == [
        (21, "exact duplicate of line 1"),
        (22, "exact duplicate of line 2"),
        (23, "near duplicate of line 3"),
    ]
    report = (tmp_path / "out/data_report.md").read_text()
    assert "## Conflicting labels" in report and "## Duplicates (examples)" in report


def test_kept_duplicates_never_straddle_splits(tmp_path):
    records = [{"text": f"text number {i // 3}", "label": "ab"[i % 2]} for i in range(90)]
    path = _write(tmp_path / "d.jsonl", records)
    result = prepare(path, tmp_path / "out", options={"dedup": {"remove": False}}, seed=3)
    seen: dict[str, str] = {}
    for name, file in result.files.items():
        for line in file.read_text().splitlines():
            text = json.loads(line)["text"]
            assert seen.setdefault(text, name) == name
    assert result.counts["n_output"] == 90 and len(seen) == 30


def test_leakage_check_catches_a_planted_overlap(tmp_path):
    vocab = _vocab(400, seed=2)
    texts = [" ".join(vocab[i * 10 : i * 10 + 10]) for i in range(30)]
    train = [{"text": t, "label": "xy"[i % 2]} for i, t in enumerate(texts[:20])]
    near = texts[4].split()
    near[-1] = "qqqqqq"  # a near duplicate of train line 5 (3-gram Jaccard 7/9 ≈ 0.78)
    validation = [{"text": t, "label": "x"} for t in texts[20:25]] + [
        {"text": texts[3].title(), "label": "x"},  # planted: exact (after normalisation)
        {"text": " ".join(near), "label": "y"},  # planted: near
    ]
    test = [{"text": t, "label": "y"} for t in texts[25:]]
    files = {
        "train": _write(tmp_path / "train.jsonl", train),
        "validation": _write(tmp_path / "dev.jsonl", validation),
        "test": _write(tmp_path / "test.jsonl", test),
    }
    opts = {"dedup": {"near": True, "threshold": 0.75}, "leakage": "drop"}
    result = prepare(files, tmp_path / "out", options=opts)
    assert result.counts["n_leaked"] == {"validation": 2, "test": 0}
    kept = [json.loads(x)["text"] for x in result.files["validation"].read_text().splitlines()]
    assert kept == texts[20:25]
    report = (tmp_path / "out/data_report.md").read_text()
    assert "## Leakage between splits" in report and "6=4" in report and "7=5" in report
    removed = [json.loads(x) for x in (tmp_path / "out/removed.jsonl").read_text().splitlines()]
    assert [(r["line"], r["step"], r["reason"]) for r in removed] == [
        (6, "leakage", "validation record also in train (train line 4)"),
        (7, "leakage", "validation record also in train (train line 5)"),
    ]

    from tunewise.errors import DataError

    with pytest.raises(DataError, match="2 validation record"):
        prepare(files, tmp_path / "out2", options={**opts, "leakage": "fail"})
