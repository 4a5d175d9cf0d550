"""An exclusive lock on a path (a run directory, a trial, a served model) between processes.

The lock is a small JSON file beside the path (`.<name>.lock`, created with O_EXCL so exactly one
process wins) naming its holder: PID, host and start time. A lock whose PID no longer runs on
this host is stale (its process was killed) and is taken over; a lock held by a live process,
or by another host (whose processes cannot be checked from here), makes the second comer fail
with a message naming the holder. Hand-written: no field library offers a PID-owning lock file
(`fcntl.flock` dies with its process, but says nothing about who holds it, and is unreliable on
network filesystems).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from tunewise.errors import TunewiseError


class LockedError(TunewiseError):
    """Another live process holds the lock."""


def lock_path(target: Path) -> Path:
    target = Path(target)
    return target.parent / f".{target.name}.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(path: Path) -> dict | None:
    """The lock file's owner record; None when it vanished; {} when unreadable (half-written)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


class RunLock:
    """`with RunLock(run_dir): ...` holds the lock for the block."""

    def __init__(self, target: str | Path, what: str = "run directory") -> None:
        self.target = Path(target)
        self.path = lock_path(self.target)
        self.what = what
        self.held = False

    def acquire(self) -> None:
        try:
            self._acquire()
        except OSError as exc:  # a parent that is a file, no permission, read-only disk...
            raise TunewiseError(
                f"Cannot lock {self.what} '{self.target}': {exc.strerror or exc} ({self.path})."
            ) from None

    def _acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                holder = _holder(self.path)
                if holder is None:
                    continue  # released meanwhile: try again
                if self._stale(holder):
                    self.path.unlink(missing_ok=True)
                    continue
                raise LockedError(self._message(holder)) from None
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
            self.held = True
            return
        raise LockedError(
            f"Could not lock {self.what} '{self.target}' ({self.path}): it keeps changing hands."
        )

    def _stale(self, holder: dict) -> bool:
        if not holder:  # unreadable: a writer died between create and write, or a stray file
            try:
                return time.time() - self.path.stat().st_mtime > 10
            except FileNotFoundError:
                return True
        if holder.get("host") != socket.gethostname():
            return False  # cannot tell whether a process on another machine still runs
        return not _alive(int(holder.get("pid", -1)))

    def _message(self, holder: dict) -> str:
        who = "a process that is still writing the lock file"
        if holder:
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
            who = f"PID {holder.get('pid')} on {holder.get('host')}, since {started}"
        return (
            f"The {self.what} '{self.target}' is in use by another tunewise process ({who}); "
            f"two runs writing one directory would mix their files. Wait for it to finish, or "
            f"choose another output_dir. If that process is gone (e.g. on another machine), "
            f"delete the lock file {self.path}."
        )

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
