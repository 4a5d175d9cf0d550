"""Bad input that used to end in a traceback or a confusing message (issue 10, cases 3, 10, 11):
exit 2 with one paragraph naming the file, line, key or value; input files never changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cli_helpers import cli, failure
from conftest import sentiment_records, toy_config, write_jsonl
from tunewise.data.readers import read_records


@pytest.fixture
def data(tmp_path) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", sentiment_records(40, seed=1))


def test_data_prepare_never_writes_over_its_input(data):
    """Case 3: `--output-dir` = the input's directory used to overwrite it with the train split."""
    before = data.read_bytes()
    assert "train.jsonl" in failure("data", "prepare", "--input", data, "--output-dir", data.parent)
    assert data.read_bytes() == before


def test_data_prepare_output_dir_that_is_a_file(data, tmp_path):
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    assert "not a directory" in failure("data", "prepare", "--input", data, "--output-dir", target)
    assert target.read_text(encoding="utf-8") == "x"


@pytest.mark.parametrize("content", [None, "prepare: [unclosed", "- a\n- list\n", "prepare: 3\n"])
def test_data_prepare_config_missing_or_malformed(data, tmp_path, content):
    config = tmp_path / "prep.yaml"
    if content is not None:
        config.write_text(content, encoding="utf-8")
    message = failure(
        "data", "prepare", "--input", data, "--output-dir", tmp_path / "o", "--config", config
    )
    assert "prep.yaml" in message


@pytest.mark.parametrize(
    "export",
    [
        [{"data": {"text": "hi"}, "annotations": ["not an object"]}],
        [{"data": {"text": "hi"}, "annotations": [{"result": [7]}]}],
        [{"data": {"text": "hi"}, "annotations": [{"result": [{"value": {"choices": 3}}]}]}],
        {"not": "a list"},
    ],
)
def test_data_import_of_a_malformed_label_studio_export(tmp_path, export):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    assert "export.json" in failure("data", "import", path, "--output", tmp_path / "out.jsonl")


def train(tmp_path: Path, raw: str | bytes | dict) -> str:
    path = tmp_path / "config.yaml"
    if isinstance(raw, dict):
        raw = yaml.safe_dump(raw)
    path.write_bytes(raw if isinstance(raw, bytes) else raw.encode("utf-8"))
    return failure("train", path)


def test_a_config_file_that_is_not_utf8(tmp_path):
    assert "UTF-8" in train(tmp_path, "model:\n  name: caf\xe9\n".encode("latin-1"))


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_infinite_or_nan_numbers_are_refused(tmp_path, tiny_bert, data, value):
    cfg = yaml.safe_dump(toy_config(tiny_bert, {"train": data, "validation": data}, tmp_path / "r"))
    cfg = cfg.replace("epochs: 2", f"epochs: {value}")
    assert "training.epochs" in train(tmp_path, cfg)


def test_the_early_stopping_error_does_not_print_the_whole_config(tmp_path, tiny_bert, data):
    cfg = toy_config(tiny_bert, {"train": data, "validation": data}, tmp_path / "r")
    cfg["training"]["early_stopping_patience"] = 2
    cfg["eval"] = {"each_epoch": False}
    message = train(tmp_path, cfg)
    assert "early_stopping_patience" in message
    assert str(tiny_bert) not in message and "learning_rate" not in message


def test_a_csv_field_over_128_kib_is_read(tmp_path):
    """Case 10: the stdlib csv limit used to raise _csv.Error (traceback)."""
    path = tmp_path / "big.csv"
    big = "word " * 40_000
    path.write_text(f'text,label\n"{big}",pos\nshort,neg\n', encoding="utf-8")
    records = read_records(path)
    assert [r["label"] for _, r in records] == ["pos", "neg"]
    assert len(records[0][1]["text"]) == len(big)


def test_non_utf8_data_is_reported_by_line_and_skipped_with_on_error_skip(tmp_path):
    """Case 11: non-UTF-8 bytes used to be reported by byte offset and fail the whole file."""
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(r).encode() for r in sentiment_records(20, seed=3)]
    lines[6] = b'{"text": "caf\xe9 good", "label": "pos"}'
    path.write_bytes(b"\n".join(lines) + b"\n")
    before = path.read_bytes()
    message = failure("data", "prepare", "--input", path, "--output-dir", tmp_path / "out")
    assert "line 7" in message
    code, output = cli(
        "data", "prepare", "--input", path, "--output-dir", tmp_path / "o2", "--on-error", "skip"
    )
    assert code == 0, output
    rejected = (tmp_path / "o2" / "rejected.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(r)["line"] for r in rejected] == [7]
    assert path.read_bytes() == before


def test_a_directory_where_a_file_is_expected(tmp_path):
    """Case 11: used to say the directory 'does not exist'."""
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    message = failure("data", "stats", folder)
    assert "is a directory" in message and "does not exist" not in message


@pytest.mark.parametrize(
    "args",
    [
        ["--train-size", "-5"],
        ["--train-size", "100", "--memory-gb", "-1"],
        ["--train-size", "100", "--max-length", "0"],
        ["--train-size", "100", "--epochs", "-1"],
    ],
)
def test_recommend_refuses_negative_sizes(args):
    failure("recommend", "--task", "classification", "--model", "minilm", *args)


def test_on_error_fail_counts_what_it_lists(tmp_path):
    """Case 11: '6 invalid record(s) (and 1 more)' listed 5 and read as 7."""
    records = sentiment_records(12, seed=4)
    for r in records[:6]:
        r["label"] = None
    path = write_jsonl(tmp_path / "bad.jsonl", records)
    message = failure("data", "prepare", "--input", path, "--output-dir", tmp_path / "o")
    assert "6 invalid record(s)" in message and "and 1 more" not in message
    assert "first 5" in message


@pytest.mark.parametrize("command", ["import", "export"])
def test_data_import_export_output_checked_before_work(tmp_path, data, command):
    """Same class as case 10: an --output that is a directory, or the input itself."""
    source = tmp_path / "export.json"
    source.write_text(json.dumps([{"data": {"text": "hi"}}]), encoding="utf-8")
    source = source if command == "import" else data
    folder = tmp_path / "folder"
    folder.mkdir()
    before = source.read_bytes()
    assert "directory" in failure("data", command, source, "--output", folder)
    assert "input" in failure("data", command, source, "--output", source)
    assert source.read_bytes() == before and list(folder.iterdir()) == []
