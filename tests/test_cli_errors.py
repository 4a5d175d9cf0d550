"""User mistakes through the real CLI: exit status 2 and one readable paragraph, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from conftest import toy_config, write_jsonl
from tunewise.cli import app


@pytest.fixture
def base(tiny_bert, toy_data, tmp_path) -> dict:
    return toy_config(tiny_bert, toy_data, tmp_path / "run")


def train(tmp_path: Path, cfg: dict, *args: str):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return CliRunner().invoke(app, ["train", str(path), *args]), path


def failure(result) -> str:
    """The error paragraph of a failed command; checks the common contract."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    stderr = result.stderr.strip()
    assert stderr.startswith("error: ")
    assert "Traceback" not in result.output
    assert "\n\n" not in stderr  # one paragraph
    return stderr


def test_unknown_config_key(tmp_path, base):
    base["training"]["epoch"] = 2
    result, path = train(tmp_path, base)
    msg = failure(result)
    assert "'training.epoch'" in msg
    assert "did you mean 'epochs'" in msg
    assert str(path) in msg


def test_bad_type(tmp_path, base):
    base["training"]["epochs"] = "many"
    result, _ = train(tmp_path, base)
    msg = failure(result)
    assert "'training.epochs'" in msg
    assert "'many'" in msg


def test_bad_override_value(tmp_path, base):
    result, _ = train(tmp_path, base, "training.batch_size=0")
    msg = failure(result)
    assert "'training.batch_size'" in msg


def test_malformed_override(tmp_path, base):
    result, _ = train(tmp_path, base, "training.epochs")
    msg = failure(result)
    assert "key.path=value" in msg


def test_missing_config_file(tmp_path):
    result = CliRunner().invoke(app, ["train", str(tmp_path / "absent.yaml")])
    msg = failure(result)
    assert "absent.yaml" in msg
    assert "does not exist" in msg


def test_missing_data_file(tmp_path, base):
    missing = tmp_path / "no" / "train.jsonl"
    base["data"]["train"] = str(missing)
    result, _ = train(tmp_path, base)
    msg = failure(result)
    assert str(missing) in msg
    assert "does not exist" in msg


def test_empty_data_file(tmp_path, base):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    base["data"]["validation"] = str(empty)
    result, _ = train(tmp_path, base)
    msg = failure(result)
    assert str(empty) in msg
    assert "no records" in msg


def test_unknown_label_column(tmp_path, base):
    base["data"]["label_column"] = "sentiment"
    result, _ = train(tmp_path, base)
    msg = failure(result)
    assert "'sentiment'" in msg
    assert "train.jsonl" in msg
    assert "'text', 'label'" in msg  # what the records do have
    assert "data.label_column" in msg


def test_unseen_validation_label(tmp_path, base, toy_data):
    records = [json.loads(line) for line in toy_data["validation"].read_text().splitlines()]
    records[4]["label"] = "neutral"
    write_jsonl(toy_data["validation"], records)
    result, _ = train(tmp_path, base)
    msg = failure(result)
    assert str(toy_data["validation"]) in msg
    assert "line 5" in msg
    assert "'neutral'" in msg


def test_non_empty_output_dir_needs_overwrite(tmp_path, base):
    out = Path(base["output_dir"])
    out.mkdir()
    (out / "earlier.txt").write_text("keep me", encoding="utf-8")
    result, _ = train(tmp_path, base)
    msg = failure(result)
    assert "--overwrite" in msg
    assert str(out) in msg
    assert (out / "earlier.txt").read_text(encoding="utf-8") == "keep me"


def test_unreachable_hub_id(tmp_path, base):
    base["model"]["name"] = "no-such-org/no-such-model"
    result, _ = train(tmp_path, base)
    msg = failure(result)
    assert "no-such-org/no-such-model" in msg
    assert "local path" in msg
    assert "alias" in msg
    assert "minilm" in msg


def test_missing_local_model_directory(tmp_path, base):
    missing = tmp_path / "models" / "gone"
    base["model"]["name"] = str(missing)
    result, _ = train(tmp_path, base)
    msg = failure(result)
    assert str(missing) in msg
    assert "not an existing directory" in msg


def test_console_script_exits_2_without_traceback(tmp_path, base):
    """The installed `tunewise` entry point, end to end, in a fresh process."""
    base["trainig"] = {"epochs": 2}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(base), encoding="utf-8")
    script = Path(sys.executable).with_name("tunewise")
    if not script.is_file():
        pytest.skip("tunewise console script is not installed next to this interpreter")
    proc = subprocess.run(
        [str(script), "train", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "unknown key 'trainig'" in proc.stderr
    assert "did you mean 'training'" in proc.stderr
