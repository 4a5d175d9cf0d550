"""The run-directory lock on its own: one holder, stale locks of dead processes taken over,
locks from other hosts or live processes respected, the holder named."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from tunewise.errors import TunewiseError
from tunewise.runlock import LockedError, RunLock, lock_path


def test_a_second_holder_is_refused_with_the_first_named(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(LockedError) as info:
            RunLock(tmp_path / "run").acquire()
        assert f"PID {os.getpid()} on {socket.gethostname()}" in str(info.value)
    assert not lock_path(tmp_path / "run").exists()  # released on exit
    with RunLock(tmp_path / "run"):
        pass


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    path = lock_path(tmp_path / "run")
    path.write_text(
        json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "started": time.time()}),
        encoding="utf-8",
    )
    with RunLock(tmp_path / "run"):
        assert json.loads(path.read_text(encoding="utf-8"))["pid"] == os.getpid()


def test_a_lock_from_another_host_is_respected(tmp_path):
    path = lock_path(tmp_path / "run")
    path.write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": 0}), encoding="utf-8")
    with pytest.raises(LockedError, match="elsewhere") as info:
        RunLock(tmp_path / "run").acquire()
    assert str(path) in str(info.value)  # says which file to delete


def test_a_half_written_lock_is_respected_until_it_is_old(tmp_path):
    path = lock_path(tmp_path / "run")
    path.write_text("", encoding="utf-8")
    with pytest.raises(LockedError):
        RunLock(tmp_path / "run").acquire()
    old = time.time() - 60
    os.utime(path, (old, old))
    with RunLock(tmp_path / "run"):
        pass


def test_a_lock_held_in_another_live_process_is_respected(tmp_path):
    code = (
        "import sys, time; from tunewise.runlock import RunLock\n"
        f"with RunLock({str(tmp_path / 'run')!r}):\n"
        "    print('held', flush=True); time.sleep(30)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match=f"PID {child.pid}"):
            RunLock(tmp_path / "run").acquire()
    finally:
        child.kill()
        child.wait()
    with RunLock(tmp_path / "run"):  # its process is gone: stale
        pass


def test_a_target_under_a_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(TunewiseError, match="Cannot lock"):
        RunLock(blocker / "run").acquire()
    assert blocker.read_text(encoding="utf-8") == "x"
