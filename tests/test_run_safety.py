"""Nothing lost, nothing mixed up (issue 10, cases 1, 2, 4, 5, 8, 9, 10): a new run never costs
the old one, a run directory is locked while a run writes it, `--resume` never silently starts
over, and a failed run leaves no copy of the user's data behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from conftest import toy_config
from tunewise.api import finetune
from tunewise.artifacts import MANIFEST, WEIGHTS
from tunewise.errors import ConfigError, TunewiseError

FAST = {"max_steps": 2, "logging_steps": 1}


def snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.fixture
def old_run(tiny_bert, toy_data, tmp_path) -> tuple[dict, Path, dict[str, bytes]]:
    cfg = toy_config(tiny_bert, toy_data, tmp_path / "run", training={"epochs": 1, **FAST})
    finetune(cfg)
    return cfg, tmp_path / "run", snapshot(tmp_path / "run")


def test_a_bad_metric_is_refused_before_the_old_run_is_touched(old_run):
    """Case 1: a typo in eval.metric used to surface after the first epoch, after --overwrite
    had deleted the earlier run."""
    cfg, run, before = old_run
    cfg["eval"] = {"metric": "acuracy"}
    with pytest.raises(ConfigError, match="acuracy") as info:
        finetune(cfg, overwrite=True)
    assert "accuracy" in str(info.value)  # names what the task does report
    assert snapshot(run) == before


def test_a_run_that_fails_while_training_keeps_the_old_run(old_run, monkeypatch):
    """Case 1: the new run trains beside the old one; the swap happens only on success."""
    from tunewise.training.trainer import TunewiseTrainer

    cfg, run, before = old_run

    def boom(self, *args, **kwargs):
        raise RuntimeError("simulated failure mid-training")

    monkeypatch.setattr(TunewiseTrainer, "training_step", boom)
    with pytest.raises(RuntimeError, match="simulated"):
        finetune(cfg, overwrite=True)
    assert snapshot(run) == before


def test_overwrite_succeeds_and_replaces_the_old_run(old_run):
    cfg, run, before = old_run
    cfg["training"] = {**cfg["training"], "max_steps": 3}
    result = finetune(cfg, overwrite=True)
    assert result.run_dir == run
    assert result.manifest["training"]["steps"] == 3
    assert snapshot(run) != before
    assert [p.name for p in run.parent.iterdir() if p.name.startswith(".run")] == []


def test_overwrite_refuses_an_output_dir_that_holds_the_input_data(tiny_bert, toy_data, tmp_path):
    """Case 2: --overwrite used to delete the run's own training data (exit 0)."""
    out = tmp_path / "out"
    out.mkdir()
    train = out / "train.jsonl"
    train.write_bytes(toy_data["train"].read_bytes())
    data = {"train": train, "validation": toy_data["validation"]}
    cfg = toy_config(tiny_bert, data, out, training=FAST)
    with pytest.raises(TunewiseError, match=r"train\.jsonl") as info:
        finetune(cfg, overwrite=True)
    assert "data.train" in str(info.value)
    assert train.read_bytes() == toy_data["train"].read_bytes()


def test_output_dir_inside_nothing_but_a_file_is_refused(tiny_bert, toy_data, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("keep me", encoding="utf-8")
    with pytest.raises(TunewiseError, match="not a directory"):
        finetune(toy_config(tiny_bert, toy_data, target, training=FAST), overwrite=True)
    assert target.read_text(encoding="utf-8") == "keep me"


def test_a_second_run_into_a_locked_directory_fails_naming_the_holder(
    tiny_bert, toy_data, tmp_path
):
    """Case 4: two runs writing one directory at once used to mix weights and manifest."""
    from tunewise.runlock import RunLock

    out = tmp_path / "run"
    with RunLock(out), pytest.raises(TunewiseError, match=f"PID {os.getpid()}"):
        finetune(toy_config(tiny_bert, toy_data, out, training=FAST), overwrite=True)
    assert not out.exists()
    finetune(toy_config(tiny_bert, toy_data, out, training=FAST))  # released: runs now


def test_resume_of_a_finished_run_is_an_error(old_run):
    """Case 5: --resume on a finished run used to retrain from scratch and replace it."""
    cfg, run, before = old_run
    with pytest.raises(TunewiseError, match="finished"):
        finetune(cfg, resume=True)
    assert snapshot(run) == before


def test_resume_without_a_checkpoint_is_an_error(tiny_bert, toy_data, tmp_path):
    with pytest.raises(TunewiseError, match="no checkpoint"):
        finetune(toy_config(tiny_bert, toy_data, tmp_path / "run", training=FAST), resume=True)
    assert not (tmp_path / "run" / MANIFEST).exists()


def test_a_failed_run_with_data_prepare_leaves_no_copy_of_the_data(
    tiny_bert, toy_data, tmp_path, monkeypatch
):
    """Case 8: the prepared splits used to stay in the system temporary directory."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    cfg = toy_config(tiny_bert, toy_data, tmp_path / "run", training=FAST)
    cfg["data"]["prepare"] = {"dedup": {"exact": True}}
    cfg["model"]["name"] = str(tmp_path / "no-such-model")
    with pytest.raises(TunewiseError):
        finetune(cfg)
    assert list(scratch.iterdir()) == []


def test_resume_after_changing_the_strategy_explains_the_mismatch(tiny_bert, toy_data, tmp_path):
    """Case 10: resuming LoRA checkpoints as a full fine-tune used to end in a traceback."""
    from crash_helpers import interrupted_run

    cfg = toy_config(tiny_bert, toy_data, tmp_path / "run", training={"max_steps": 4})
    cfg["training"]["save_steps"] = 2
    interrupted_run(cfg, fail_at=3)
    changed = {**cfg, "strategy": {"name": "full"}}
    with pytest.raises(ConfigError, match="strategy") as info:
        finetune(changed, resume=True)
    assert "lora" in str(info.value) and "full" in str(info.value)


def test_weights_file_is_written_with_the_umask(old_run):
    """Case 11: run files used to be created 0600 (mkstemp's mode)."""
    _, run, _ = old_run
    umask = os.umask(0)
    os.umask(umask)
    for path in (run / MANIFEST, run / WEIGHTS, run / "metrics.json"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


@pytest.mark.parametrize("work_finished", [False, True])
def test_a_swap_killed_between_its_renames_is_undone_or_completed(tmp_path, work_finished):
    """The only moment neither run sits at output_dir: the next run holding the lock repairs it."""
    from tunewise.training.rundir import _aside, _recover, partial_dir

    final = tmp_path / "run"
    old, work = _aside(final), partial_dir(final)
    old.mkdir()
    (old / MANIFEST).write_text("old", encoding="utf-8")
    work.mkdir()
    if work_finished:
        (work / MANIFEST).write_text("new", encoding="utf-8")
    _recover(final, work)
    assert (final / MANIFEST).read_text(encoding="utf-8") == ("new" if work_finished else "old")
    assert not old.exists()
