"""Data file readers: records with their file line numbers, and errors that name file and line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tunewise.data.readers import detect_format, fingerprint, read_records
from tunewise.errors import DataError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


# ------------------------------------------------------------------------------------- JSONL


def test_jsonl_skips_blank_lines_and_keeps_file_line_numbers(tmp_path):
    path = write(
        tmp_path / "train.jsonl",
        '{"text": "a", "label": 1}\n\n   \n{"text": "b", "label": "x"}\n\t\n{"text": "c"}\n',
    )
    records = read_records(path)
    assert records == [
        (1, {"text": "a", "label": 1}),
        (4, {"text": "b", "label": "x"}),
        (6, {"text": "c"}),
    ]


def test_jsonl_with_crlf_line_endings(tmp_path):
    path = write(tmp_path / "win.jsonl", '{"a": 1}\r\n\r\n{"a": 2}\r\n')
    assert read_records(path) == [(1, {"a": 1}), (3, {"a": 2})]


def test_jsonl_without_trailing_newline_and_ndjson_extension(tmp_path):
    path = write(tmp_path / "x.ndjson", '{"a": 1}\n{"a": 2}')
    assert [r for _, r in read_records(path)] == [{"a": 1}, {"a": 2}]


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.jsonl", '{"text": "ok"}\n\n{"text": oops}\n{"text": "ok"}\n')
    with pytest.raises(DataError) as info:
        read_records(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "line 3" in msg
    assert "not valid JSON" in msg


def test_jsonl_line_that_is_not_an_object_names_the_line(tmp_path):
    path = write(tmp_path / "list.jsonl", '{"text": "ok"}\n["a", "b"]\n')
    with pytest.raises(DataError) as info:
        read_records(path)
    assert "line 2" in str(info.value)
    assert "JSON object" in str(info.value)


# -------------------------------------------------------------------------------------- JSON


def test_json_list_gives_record_indices(tmp_path):
    records = [{"text": "a", "label": 0}, {"text": "b", "label": 1}, {"text": "c", "label": 0}]
    path = write(tmp_path / "data.json", json.dumps(records, indent=2))
    assert read_records(path) == list(enumerate(records))


def test_json_data_wrapper_is_unwrapped(tmp_path):
    path = write(tmp_path / "data.json", json.dumps({"version": 1, "data": [{"text": "a"}]}))
    assert read_records(path) == [(0, {"text": "a"})]


def test_json_that_is_not_a_list_is_an_error(tmp_path):
    path = write(tmp_path / "obj.json", json.dumps({"text": "a"}))
    with pytest.raises(DataError, match="JSON list") as info:
        read_records(path)
    assert str(path) in str(info.value)


def test_json_list_of_non_objects_names_the_record(tmp_path):
    path = write(tmp_path / "nums.json", json.dumps([{"text": "a"}, 5]))
    with pytest.raises(DataError, match="record 1"):
        read_records(path)


def test_invalid_json_file_names_file_and_line(tmp_path):
    path = write(tmp_path / "broken.json", '[\n  {"text": "a"},\n  {text: "b"}\n]\n')
    with pytest.raises(DataError) as info:
        read_records(path)
    assert str(path) in str(info.value)
    assert "line 3" in str(info.value)


# --------------------------------------------------------------------------------------- CSV


def test_csv_with_quotes(tmp_path):
    path = write(
        tmp_path / "data.csv",
        'text,label\n"hello, world",pos\n"she said ""hi""",neg\nplain,pos\n',
    )
    assert read_records(path) == [
        (2, {"text": "hello, world", "label": "pos"}),
        (3, {"text": 'she said "hi"', "label": "neg"}),
        (4, {"text": "plain", "label": "pos"}),
    ]


def test_csv_quoted_newline_stays_in_the_field(tmp_path):
    path = write(tmp_path / "data.csv", 'text,label\n"two\nlines",a\nnext,b\n')
    records = read_records(path)
    assert [r for _, r in records] == [
        {"text": "two\nlines", "label": "a"},
        {"text": "next", "label": "b"},
    ]
    assert records[-1][0] == 4  # numbering continues with the file's lines


def test_csv_row_with_more_fields_than_header(tmp_path):
    path = write(tmp_path / "data.csv", "text,label\nfine,1\ntoo,many,fields\n")
    with pytest.raises(DataError) as info:
        read_records(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "line 3" in msg
    assert "more fields" in msg
    assert "text, label" in msg


def test_csv_with_utf8_bom_has_a_clean_first_column(tmp_path):
    # Excel's "CSV UTF-8" starts the file with a byte-order mark; the header must still be `text`.
    path = tmp_path / "excel.csv"
    path.write_bytes("text,label\nhello,1\n".encode("utf-8-sig"))
    assert read_records(path) == [(2, {"text": "hello", "label": "1"})]


def test_file_that_is_not_utf8_is_a_data_error(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError) as info:  # not a bare UnicodeDecodeError (CLI traceback)
        read_records(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------------------- TSV


def test_tsv_keeps_double_quotes_literally(tmp_path):
    path = write(
        tmp_path / "train.tsv",
        'sentence\tlabel\nit\'s a "great" film\t1\n"starts with a quote\t0\nends with "\t1\n',
    )
    assert read_records(path) == [
        (2, {"sentence": 'it\'s a "great" film', "label": "1"}),
        (3, {"sentence": '"starts with a quote', "label": "0"}),
        (4, {"sentence": 'ends with "', "label": "1"}),
    ]


def test_tsv_commas_are_not_separators(tmp_path):
    path = write(tmp_path / "x.tsv", "text\tlabel\na, b, c\t1\n")
    assert read_records(path) == [(2, {"text": "a, b, c", "label": "1"})]


# ------------------------------------------------------------------------ missing and empty


def test_missing_file_names_it(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(DataError) as info:
        read_records(path)
    assert str(path) in str(info.value)
    assert "does not exist" in str(info.value)


def test_directory_is_not_a_data_file(tmp_path):
    with pytest.raises(DataError, match="is a directory") as info:
        read_records(tmp_path)
    assert "does not exist" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("empty.jsonl", ""),
        ("blank.jsonl", "\n  \n\n"),
        ("header_only.csv", "text,label\n"),
        ("empty.csv", ""),
        ("empty.tsv", ""),
        ("empty_list.json", "[]"),
    ],
)
def test_file_without_records_is_an_error(tmp_path, name, text):
    path = write(tmp_path / name, text)
    with pytest.raises(DataError) as info:
        read_records(path)
    assert str(path) in str(info.value)
    assert "no records" in str(info.value)


# ---------------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.json", "json"),
        ("a.csv", "csv"),
        ("a.tsv", "tsv"),
        ("A.JSONL", "jsonl"),
        ("dir.v2/a.TSV", "tsv"),
    ],
)
def test_detect_format_from_extension(name, fmt):
    assert detect_format(Path(name)) == fmt
    assert detect_format(Path(name), None) == fmt


@pytest.mark.parametrize("name", ["data.txt", "data", "data.parquet", "data.jsonl.gz"])
def test_detect_format_unknown_extension(name):
    with pytest.raises(DataError) as info:
        detect_format(Path(name))
    msg = str(info.value)
    assert name in msg
    assert "data.format" in msg
    assert "jsonl" in msg and "tsv" in msg


def test_declared_format_wins_over_extension(tmp_path):
    assert detect_format(Path("a.txt"), "tsv") == "tsv"
    path = write(tmp_path / "records.txt", '{"text": "a"}\n')
    assert read_records(path, "jsonl") == [(1, {"text": "a"})]
    tabbed = write(tmp_path / "data.csv", "text\tlabel\na,b\t1\n")
    assert read_records(tabbed, "tsv") == [(2, {"text": "a,b", "label": "1"})]


def test_read_of_unknown_extension_fails_with_format_hint(tmp_path):
    path = write(tmp_path / "data.txt", "text\n")
    with pytest.raises(DataError, match=r"data\.format"):
        read_records(path)


# ------------------------------------------------------------------------------ fingerprint


def test_fingerprint_is_sha256_of_the_bytes(tmp_path):
    content = b'{"text": "a", "label": 1}\n'
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_bytes(content)
    b.write_bytes(content)
    assert fingerprint(a) == fingerprint(b) == hashlib.sha256(content).hexdigest()


def test_fingerprint_changes_when_one_byte_changes(tmp_path):
    path = tmp_path / "a.jsonl"
    content = bytearray(b'{"text": "a", "label": 1}\n' * 1000)
    path.write_bytes(bytes(content))
    before = fingerprint(path)
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))
    assert fingerprint(path) != before


def test_fingerprint_covers_files_larger_than_one_block(tmp_path):
    path = tmp_path / "big.bin"
    content = bytearray(b"x" * ((1 << 20) + 10))
    path.write_bytes(bytes(content))
    before = fingerprint(path)
    content[-1] = ord("y")  # a byte past the first 1 MiB read
    path.write_bytes(bytes(content))
    assert fingerprint(path) != before
    assert fingerprint(path) == hashlib.sha256(content).hexdigest()
