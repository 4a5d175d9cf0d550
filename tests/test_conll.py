"""CoNLL column reader (sentences, -DOCSTART-, blank lines, tag column, errors naming file and
line) and the IOB1 → BIO conversion (hand-written cases and hypothesis properties)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities

from tunewise.errors import DataError
from tunewise.tasks.token_classification.conll import (
    iob1_to_bio,
    is_iob1,
    read_conll,
    split_tag,
    to_bio,
)


def write(tmp_path: Path, text: str, name: str = "data.txt", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


SAMPLE = """-DOCSTART- -X- -X- O

Acme NNP B-NP B-ORG
hires VBZ B-VP O
Dutch JJ B-NP B-MISC
staff NN I-NP O


Maria NNP B-NP B-PER
Jansen NNP I-NP I-PER
-DOCSTART- -X- -X- O
OSLO NNP B-NP B-LOC
"""


def test_reads_sentences_with_line_numbers_and_last_column_tags(tmp_path):
    sentences = read_conll(write(tmp_path, SAMPLE))
    assert [s["tokens"] for s in sentences] == [
        ["Acme", "hires", "Dutch", "staff"],
        ["Maria", "Jansen"],
        ["OSLO"],  # -DOCSTART- ends a sentence even without a blank line; no trailing blank
    ]
    assert [s["tags"] for s in sentences] == [
        ["B-ORG", "O", "B-MISC", "O"],
        ["B-PER", "I-PER"],
        ["B-LOC"],
    ]
    assert [s["line"] for s in sentences] == [3, 9, 12]


def test_tag_column_is_configurable_and_none_reads_tokens_only(tmp_path):
    path = write(tmp_path, SAMPLE)
    chunks = read_conll(path, tag_column=2)
    assert chunks[0]["tags"] == ["B-NP", "B-VP", "B-NP", "I-NP"]
    assert read_conll(path, tag_column=1)[1]["tags"] == ["NNP", "NNP"]
    tokens_only = read_conll(path, tag_column=None)
    assert "tags" not in tokens_only[0] and tokens_only[1]["tokens"] == ["Maria", "Jansen"]


def test_tabs_windows_line_ends_and_bom_are_accepted(tmp_path):
    text = "\ufeffJohn\tB-PER\r\nlives\tO\r\n\r\nParis\tB-LOC\r\n"
    sentences = read_conll(write(tmp_path, text))
    assert [s["tokens"] for s in sentences] == [["John", "lives"], ["Paris"]]
    assert [s["tags"] for s in sentences] == [["B-PER", "O"], ["B-LOC"]]


def test_column_problems_name_file_and_line(tmp_path):
    path = write(tmp_path, "Acme NNP B-ORG\n\nhires\nit O O\n")
    with pytest.raises(DataError, match=r"data\.txt, line 3: 1 column\(s\).*first token line"):
        read_conll(path)
    with pytest.raises(DataError, match=r"line 1: 3 column\(s\).*column 5 does not exist"):
        read_conll(path, tag_column=5)
    single = write(tmp_path, "Acme\nhires\n", name="words.txt")
    with pytest.raises(DataError, match=r"words\.txt, line 1: the tag column .* word column"):
        read_conll(single)
    assert read_conll(single, tag_column=None)[0]["tokens"] == ["Acme", "hires"]


def test_empty_missing_and_undecodable_files_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="holds no sentences"):
        read_conll(write(tmp_path, "-DOCSTART- O\n\n\n"))
    with pytest.raises(DataError, match="does not exist"):
        read_conll(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="not UTF-8"):
        read_conll(write(tmp_path, "Köln B-LOC\n", encoding="latin-1"))


def test_split_tag_rejects_other_schemes_with_a_hint():
    assert split_tag("B-PER", "x") == ("B", "PER")
    assert split_tag("I-MISC-X", "x") == ("I", "MISC-X")
    assert split_tag("O", "x") == ("O", "")
    for bad in ("NNP", "E-PER", "S-LOC", "B-", "o"):
        with pytest.raises(DataError, match=r"f\.txt, line 7: tag .*tag_column"):
            split_tag(bad, "f.txt, line 7")


@pytest.mark.parametrize(
    ("iob1", "bio"),
    [
        (["I-PER", "I-PER", "O", "I-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),
        # B- separates two adjacent entities of one type in IOB1 and stays B-
        (["I-PER", "B-PER", "I-PER"], ["B-PER", "B-PER", "I-PER"]),
        # a change of type opens a new entity
        (["I-ORG", "I-LOC", "I-LOC"], ["B-ORG", "B-LOC", "I-LOC"]),
        (["O", "O"], ["O", "O"]),
        ([], []),
    ],
)
def test_iob1_to_bio_cases(iob1, bio):
    assert iob1_to_bio(iob1) == bio
    assert not is_iob1(bio, "x")


def test_to_bio_schemes():
    iob1 = [["I-PER", "O"], ["B-LOC", "I-LOC"]]
    where = ["f, sentence at line 1", "f, sentence at line 4"]
    assert to_bio(iob1, "auto", where) == [["B-PER", "O"], ["B-LOC", "I-LOC"]]
    assert to_bio(iob1, "iob1", where) == [["B-PER", "O"], ["B-LOC", "I-LOC"]]
    with pytest.raises(DataError, match="sentence at line 1: an entity starts with an I- tag"):
        to_bio(iob1, "bio", where)
    bio = [["B-PER", "I-PER"], ["O"]]
    assert to_bio(bio, "bio", where) == bio and to_bio(bio, "auto", where) == bio


TAGS = st.lists(st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]), max_size=12)


@given(TAGS)
def test_conversion_keeps_the_entities_and_yields_valid_bio(tags):
    bio = iob1_to_bio(tags)
    # seqeval (conlleval semantics) reads an I- after O as an entity start, i.e. as IOB1 does
    assert get_entities(bio) == get_entities(tags)
    assert not is_iob1(bio, "x")
    assert iob1_to_bio(bio) == bio  # idempotent: a no-op on BIO
