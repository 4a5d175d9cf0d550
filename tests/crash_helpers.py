"""Runs that stop part-way, for the resume tests: an exception at a step (in-process) or a
SIGKILL at a step (in a forked child, so nothing gets to clean up)."""

from __future__ import annotations

import multiprocessing
import os
import signal
from typing import Any

import pytest


def _stop_at(step: int, kill: bool) -> None:
    from tunewise.training.trainer import TunewiseTrainer

    original = TunewiseTrainer.training_step

    def training_step(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.state.global_step >= step:
            if kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise KeyboardInterrupt(f"stopped at step {step}")
        return original(self, *args, **kwargs)

    TunewiseTrainer.training_step = training_step  # the child is thrown away afterwards


def interrupted_run(cfg: dict, fail_at: int) -> None:
    """Train in-process until `fail_at` steps are done, then stop with an exception."""
    from tunewise.api import finetune
    from tunewise.training.trainer import TunewiseTrainer

    original = TunewiseTrainer.training_step
    try:
        _stop_at(fail_at, kill=False)
        with pytest.raises(KeyboardInterrupt):
            finetune(cfg)
    finally:
        TunewiseTrainer.training_step = original


def _child(cfg: dict, step: int) -> None:
    from tunewise.api import finetune

    _stop_at(step, kill=True)
    finetune(cfg)
    os._exit(0)  # not reached when the kill fires


def killed_run(cfg: dict, kill_at: int) -> int:
    """Train in a forked child that SIGKILLs itself after `kill_at` steps; its exit code."""
    process = multiprocessing.get_context("fork").Process(target=_child, args=(cfg, kill_at))
    process.start()
    process.join(120)
    return process.exitcode
