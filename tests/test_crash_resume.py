"""Crash safety (issue 10, cases 7 and 9): a run SIGKILLed at a random step resumes to weights
bit-identical to an uninterrupted run, with the same manifest totals; a corrupt newest checkpoint
is reported by name and the one before it is used."""

from __future__ import annotations

import random
import shutil
import signal
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import toy_config
from crash_helpers import interrupted_run, killed_run
from tunewise.api import finetune
from tunewise.artifacts import WEIGHTS
from tunewise.errors import TunewiseError
from tunewise.training.rundir import partial_dir

STEPS = 8


def config(tiny_bert, toy_data, out: Path) -> dict:
    cfg = toy_config(
        tiny_bert, toy_data, out, training={"max_steps": STEPS, "save_steps": 2, "epochs": 1}
    )
    cfg["eval"] = {"each_epoch": False}
    return cfg


@pytest.fixture(scope="module")
def reference(tiny_bert, tmp_path_factory):
    from conftest import sentiment_records, write_jsonl

    root = tmp_path_factory.mktemp("reference")
    data = {
        "train": write_jsonl(root / "train.jsonl", sentiment_records(24, seed=1)),
        "validation": write_jsonl(root / "dev.jsonl", sentiment_records(8, seed=2)),
    }
    result = finetune(config(tiny_bert, data, root / "run"))
    return data, result.manifest, load_file(str(root / "run" / WEIGHTS))


def assert_same_run(run: Path, manifest: dict, reference) -> None:
    _, ref_manifest, ref_weights = reference
    weights = load_file(str(run / WEIGHTS))
    assert weights.keys() == ref_weights.keys()
    for name, tensor in ref_weights.items():
        assert weights[name].equal(tensor), name  # bit-identical
    got, want = manifest["training"], ref_manifest["training"]
    for key in ("steps", "n_train", "real_tokens"):
        assert got[key] == want[key], key
    assert got["final_train_loss"] == pytest.approx(want["final_train_loss"], rel=1e-6)
    assert got["train_seconds"] > 0
    assert manifest["metrics"] == ref_manifest["metrics"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_at_a_random_step_then_resume_matches_the_uninterrupted_run(
    seed, reference, tiny_bert, tmp_path
):
    data = reference[0]
    cfg = config(tiny_bert, data, tmp_path / "run")
    kill_at = random.Random(seed).randint(3, STEPS - 1)
    assert killed_run(cfg, kill_at) == -signal.SIGKILL
    assert not (tmp_path / "run").exists()  # nothing half-written where the run goes
    result = finetune(cfg, resume=True)  # the dead process's lock is stale and taken over
    assert_same_run(result.run_dir, result.manifest, reference)
    assert not partial_dir(tmp_path / "run").exists()


@pytest.mark.parametrize("damage", ["truncate_weights", "truncate_state", "empty_dir"])
def test_a_corrupt_newest_checkpoint_is_reported_and_the_previous_one_used(
    damage, reference, tiny_bert, tmp_path, capsys
):
    cfg = config(tiny_bert, reference[0], tmp_path / "run")
    assert killed_run(cfg, 5) == -signal.SIGKILL
    checkpoints = partial_dir(tmp_path / "run") / "checkpoints"
    newest = max(checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert newest.name == "checkpoint-4"
    if damage == "empty_dir":
        shutil.rmtree(newest)
        newest.mkdir()
    else:
        name = "trainer_state.json" if damage == "truncate_state" else "adapter_model.safetensors"
        target = next(newest.rglob(name))
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    result = finetune(cfg, resume=True)
    out = capsys.readouterr().out
    assert "checkpoint-4" in out and "checkpoint-2" in out
    assert_same_run(result.run_dir, result.manifest, reference)


def test_resume_when_every_checkpoint_is_bad_is_an_error(reference, tiny_bert, tmp_path):
    cfg = config(tiny_bert, reference[0], tmp_path / "run")
    interrupted_run(cfg, 3)
    checkpoints = partial_dir(tmp_path / "run") / "checkpoints"
    for state in checkpoints.rglob("trainer_state.json"):
        state.write_text("{", encoding="utf-8")
    with pytest.raises(TunewiseError, match="checkpoint-2"):
        finetune(cfg, resume=True)


def test_a_fresh_run_does_not_discard_an_unfinished_runs_checkpoints(
    reference, tiny_bert, tmp_path
):
    cfg = config(tiny_bert, reference[0], tmp_path / "run")
    interrupted_run(cfg, 3)
    with pytest.raises(TunewiseError, match="--resume"):
        finetune(cfg)
    assert any((partial_dir(tmp_path / "run") / "checkpoints").glob("checkpoint-2"))


def test_sigkill_with_per_epoch_evaluation_resumes_to_the_same_best_model(
    reference, tiny_bert, tmp_path
):
    """The default setup: evaluation and a checkpoint each epoch, the best one loaded at the
    end, plus training.save_steps checkpoints in between."""
    data = reference[0]

    def cfg(out: Path) -> dict:
        return toy_config(tiny_bert, data, out, training={"epochs": 3, "save_steps": 2})

    uninterrupted = finetune(cfg(tmp_path / "ref"))
    assert killed_run(cfg(tmp_path / "run"), 5) == -signal.SIGKILL
    resumed = finetune(cfg(tmp_path / "run"), resume=True)
    assert_same_run(
        resumed.run_dir,
        resumed.manifest,
        (data, uninterrupted.manifest, load_file(str(tmp_path / "ref" / WEIGHTS))),
    )
