"""`serve --watch REGISTRY_DIR`: follow the registry's promoted run.

Signals, in order: REGISTRY_DIR/promoted.json ({"run": "<path>"}, relative paths from the
registry) changing to name another run; otherwise a run directory in the registry whose manifest
(tunewise.json) newly says "promoted": true. Either makes the server reload to that run.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("tunewise.serve")
POINTER = "promoted.json"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # absent, or half-written: look again next time


def is_promoted(manifest: Any) -> bool:
    if not isinstance(manifest, dict):
        return False
    nested = manifest.get("promotion")
    return manifest.get("promoted") is True or (
        isinstance(nested, dict) and nested.get("promoted") is True
    )


class RegistryWatch:
    def __init__(
        self,
        registry: str | Path,
        interval_s: float,
        current: Callable[[], str],
        reload: Callable[[str], Any],
    ) -> None:
        self.registry, self.interval_s = Path(registry), interval_s
        self.current, self.reload = current, reload
        self._stop = threading.Event()
        self._pointer = self._pointed()
        self._promoted = self._promoted_runs()  # promoted before we started: not news
        self._thread = threading.Thread(target=self._loop, name="tunewise-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _pointed(self) -> str | None:
        data = _read_json(self.registry / POINTER)
        run = data.get("run") if isinstance(data, dict) else None
        if not isinstance(run, str) or not run:
            return None
        path = Path(run)
        return str(path if path.is_absolute() else self.registry / path)

    def _promoted_runs(self) -> set[str]:
        return {
            str(m.parent)
            for m in self.registry.glob("*/tunewise.json")
            if is_promoted(_read_json(m))
        }

    def check(self) -> str | None:
        """The run to switch to now, if any (each signal is acted on once)."""
        pointer = self._pointed()
        if pointer is not None and pointer != self._pointer:
            self._pointer = pointer
            return pointer
        promoted = self._promoted_runs()
        new = promoted - self._promoted
        self._promoted = promoted
        if new:  # the most recently written manifest wins
            return max(new, key=lambda p: Path(p, "tunewise.json").stat().st_mtime)
        return None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                target = self.check()
                if target and Path(target).resolve() != Path(self.current()).resolve():
                    log.info("registry %s promoted %s: reloading", self.registry, target)
                    self.reload(target)
            except Exception:  # a bad promoted run must not stop the watch or the server
                log.exception("watch: could not switch runs")
