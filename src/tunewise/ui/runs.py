"""The UI's job queue: each run is a `tunewise train` (or `tunewise sweep`) subprocess, so a
crash in a run never takes the UI down. Jobs wait in submission order; `max_running` (1 by
default) run at once; a queued job can be cancelled and a running one stopped (SIGTERM to its
process group, SIGKILL after a grace period). Job files (the config, the output log) live in
`<workspace>/.tunewise-ui/jobs/<id>/`; the run directory itself is an ordinary one."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunewise.ui.workspace import UI_DIR

ACTIVE = ("queued", "running")


@dataclass
class Job:
    id: str
    kind: str  # train | sweep
    run_dir: Path
    command: list[str]
    log: Path
    status: str = "queued"  # queued, running, finished, failed, stopped
    returncode: int | None = None
    error: str = ""
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def as_row(self) -> dict[str, Any]:
        took = (self.ended or time.time()) - self.started if self.started else None
        return {
            "job": self.id,
            "kind": self.kind,
            "run_dir": str(self.run_dir),
            "status": self.status,
            "seconds": round(took, 1) if took is not None else None,
            "error": self.error,
        }


def last_error(log: Path) -> str:
    """The CLI's one-paragraph error (`error: ...`), else the log's last line."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    errors = [x for x in lines if x.startswith("error:")]
    return (errors[-1] if errors else (lines[-1] if lines else "")).strip()


class JobQueue:
    """Background `tunewise` subprocesses, started in order, `max_running` at a time."""

    def __init__(self, workspace: Path, max_running: int = 1, poll_s: float = 0.5) -> None:
        self.workspace = Path(workspace)
        self.max_running = max_running
        self.jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(poll_s,), daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ submitting
    def _job_dir(self) -> tuple[str, Path]:
        while True:
            job_id = f"{time.strftime('%H%M%S')}-{next(self._ids)}"
            folder = self.workspace / UI_DIR / "jobs" / job_id
            if not folder.exists():
                folder.mkdir(parents=True)
                return job_id, folder

    def _claimed(self, run_dir: Path) -> bool:
        target = Path(run_dir).resolve()
        return any(j.run_dir.resolve() == target for j in self.jobs.values() if j.status in ACTIVE)

    def submit_train(self, raw: dict[str, Any], overwrite: bool = False) -> Job:
        """Queue `tunewise train CONFIG` for a validated config dict."""
        from tunewise.errors import TunewiseError

        run_dir = Path(raw["output_dir"])
        with self._lock:
            if self._claimed(run_dir):
                raise TunewiseError(f"A queued or running job already writes to '{run_dir}'.")
            job_id, folder = self._job_dir()
            config = folder / "config.yaml"
            config.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
            cmd = [sys.executable, "-m", "tunewise.cli", "train", str(config)]
            return self._add(
                Job(
                    job_id,
                    "train",
                    run_dir,
                    cmd + ["--overwrite"] * overwrite,
                    folder / "train.log",
                )
            )

    def submit_sweep(self, raw: dict[str, Any], strategies: list[str], output_dir: Path) -> Job:
        """Queue `tunewise sweep CONFIG --strategies ... --output-dir DIR`."""
        with self._lock:
            job_id, folder = self._job_dir()
            config = folder / "config.yaml"
            config.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
            cmd = [
                sys.executable,
                "-m",
                "tunewise.cli",
                "sweep",
                str(config),
                "--strategies",
                ",".join(strategies),
                "--output-dir",
                str(output_dir),
            ]
            return self._add(Job(job_id, "sweep", Path(output_dir), cmd, folder / "sweep.log"))

    def _add(self, job: Job) -> Job:
        self.jobs[job.id] = job
        self.poll()
        return job

    # ------------------------------------------------------------------ running
    def poll(self) -> None:
        """Reap finished processes and start queued jobs while there is room."""
        with self._lock:
            for job in self.jobs.values():
                if job.status == "running" and job.proc and job.proc.poll() is not None:
                    self._finish(job, job.proc.returncode)
            running = sum(j.status == "running" for j in self.jobs.values())
            for job in self.jobs.values():
                if running >= self.max_running:
                    break
                if job.status == "queued":
                    self._start(job)
                    running += 1

    def _start(self, job: Job) -> None:
        job.log.parent.mkdir(parents=True, exist_ok=True)
        with job.log.open("w", encoding="utf-8") as fh:
            job.proc = subprocess.Popen(
                job.command,
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=self.workspace,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # its own process group: stop() reaches its children
            )
        job.status, job.started = "running", time.time()

    def _finish(self, job: Job, code: int) -> None:
        job.returncode, job.ended = code, time.time()
        if job.status == "stopped":
            return
        job.status = "finished" if code == 0 else "failed"
        if code != 0:
            job.error = last_error(job.log)

    def stop(self, job_id: str, grace_s: float = 10.0) -> Job:
        """Cancel a queued job or stop a running one; a finished job is left as it is."""
        from tunewise.errors import TunewiseError

        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise TunewiseError(f"No job '{job_id}'.")
            if job.status == "queued":
                job.status, job.ended = "stopped", time.time()
            elif job.status == "running" and job.proc:
                job.status = "stopped"
                _signal_group(job.proc, signal.SIGTERM)
                threading.Thread(target=self._reap, args=(job, grace_s), daemon=True).start()
        return job

    def _reap(self, job: Job, grace_s: float) -> None:
        assert job.proc is not None
        try:
            job.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(job.proc, signal.SIGKILL)
            job.proc.wait()
        with self._lock:
            self._finish(job, job.proc.returncode)

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            return [j.as_row() for j in reversed(list(self.jobs.values()))]

    def by_run_dir(self, run_dir: Path) -> Job | None:
        target = Path(run_dir).resolve()
        with self._lock:
            matches = [j for j in self.jobs.values() if j.run_dir.resolve() == target]
        return matches[-1] if matches else None

    def _loop(self, poll_s: float) -> None:
        while not self._stop.wait(poll_s):
            self.poll()

    def shutdown(self) -> None:
        """Stop the polling thread and every running job (when the UI exits)."""
        self._stop.set()
        with self._lock:
            for job in self.jobs.values():
                if job.status in ACTIVE:
                    self.stop(job.id, grace_s=5.0)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
