"""Loading a run directory that is damaged or untrusted (issue 10, cases 6, 10, 11, 12): exit 2
with one paragraph naming the file, never a traceback, never an untrained head."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import save_file

from cli_helpers import cli, failure
from conftest import sentiment_records, toy_config, write_jsonl
from tunewise.api import finetune, load
from tunewise.artifacts import MANIFEST, WEIGHTS
from tunewise.errors import TunewiseError


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("load-safety")
    data = {
        "train": write_jsonl(root / "train.jsonl", sentiment_records(32, seed=1)),
        "validation": write_jsonl(root / "dev.jsonl", sentiment_records(8, seed=2)),
    }
    write_jsonl(root / "in.jsonl", [{"text": "good film"}, {"text": "awful plot"}])
    write_jsonl(root / "sentences.jsonl", [{"sentence": "good film"}])
    finetune(toy_config(tiny_bert, data, root / "run", training={"max_steps": 2}))
    return root


@pytest.fixture
def run(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained / "run", copy)
    return copy


def test_an_empty_weights_file_is_refused_naming_the_missing_tensors(run):
    """Case 6: an empty safetensors used to load silently and predict with an untrained head."""
    save_file({}, str(run / WEIGHTS))
    with pytest.raises(TunewiseError, match="missing") as info:
        load(run)
    assert "trained tensor(s) missing" in str(info.value) and "lora_A" in str(info.value)
    assert "missing" in failure("predict", run, "--text", "good film")


def test_a_weights_file_lacking_one_tensor_is_refused(run):
    from safetensors.torch import load_file

    state = load_file(str(run / WEIGHTS))
    dropped = sorted(state)[0]
    del state[dropped]
    save_file(state, str(run / WEIGHTS))
    with pytest.raises(TunewiseError, match=dropped.replace(".", r"\.")):
        load(run)


def test_a_truncated_weights_file_is_exit_2(run):
    path = run / WEIGHTS
    path.write_bytes(path.read_bytes()[:100])
    assert "trained.safetensors" in failure("predict", run, "--text", "good film")


@pytest.mark.parametrize("damage", ["truncated", "no_config"])
def test_a_damaged_manifest_is_exit_2(run, damage):
    path = run / MANIFEST
    if damage == "truncated":
        path.write_text(path.read_text(encoding="utf-8")[:200], encoding="utf-8")
    else:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        del manifest["config"]
        path.write_text(json.dumps(manifest), encoding="utf-8")
    assert MANIFEST in failure("predict", run, "--text", "good film")


def test_a_deleted_tokenizer_is_exit_2(run):
    shutil.rmtree(run / "tokenizer")
    assert "tokenizer" in failure("eval", run, "--data", run.parent / "run" / "x.jsonl")


@pytest.mark.parametrize("command", ["predict", "eval"])
def test_output_that_is_a_directory_is_exit_2_and_leaves_no_temporary_file(
    run, trained, tmp_path, command
):
    target = tmp_path / "out"
    target.mkdir()
    extra = ["--input", trained / "in.jsonl"] if command == "predict" else []
    data = [] if command == "predict" else ["--data", trained / "dev.jsonl"]
    assert "directory" in failure(command, run, *extra, *data, "--output", target)
    assert list(target.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "out",
        "run",
    ]


@pytest.mark.parametrize("args", [["--text", ""], ["--batch-size", "0"], ["--batch-size", "-3"]])
def test_predict_refuses_empty_text_and_bad_batch_sizes(run, args):
    """Case 11: these used to be accepted."""
    base = [] if "--text" in args else ["--text", "good film"]
    failure("predict", run, *base, *args)


def test_predict_hint_names_what_predict_can_set(run, trained):
    """Case 11: the hint used to name data.text_column, which predict cannot set."""
    message = failure("predict", run, "--input", trained / "sentences.jsonl")
    assert "--text-column" in message and "data.text_column" not in message
    code, output = cli(
        "predict", run, "--input", trained / "sentences.jsonl", "--text-column", "sentence"
    )
    assert code == 0, output
    assert '"label"' in output


def test_remote_code_from_a_manifest_needs_the_users_consent(run, trained):
    """Case 12: a shared run's manifest used to switch on trust_remote_code by itself."""
    path = run / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["config"]["model"]["trust_remote_code"] = True
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(TunewiseError, match="trust-remote-code"):
        load(run)
    for command, args in (
        ("predict", ["--text", "good film"]),
        ("eval", ["--data", trained / "dev.jsonl"]),
    ):
        assert "--trust-remote-code" in failure(command, run, *args)
        code, output = cli(command, run, *args, "--trust-remote-code")
        assert code == 0, output
    assert load(run, trust_remote_code=True).predict(["good film"])[0]["label"] in ("pos", "neg")
    # `tunewise serve` too: refused before it binds a port, served with the flag
    from tunewise.api import create_app
    from tunewise.serving.settings import ServeSettings

    with pytest.raises(TunewiseError, match="trust-remote-code"):
        create_app(run, ServeSettings())
    assert create_app(run, ServeSettings(trust_remote_code=True)) is not None
    assert "--trust-remote-code" in failure("serve", run, "--port", "0")
