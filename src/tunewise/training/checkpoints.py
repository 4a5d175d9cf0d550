"""Checkpoints that can be trusted on resume.

The Trainer writes a checkpoint's files (weights, optimizer, scheduler, RNG, trainer state) into
`checkpoint-N/`; tunewise then seals it with `tunewise-checkpoint.json`, written last and
atomically, which lists every file with its size and sha256 plus the run's totals so far (real
tokens, summed loss, seconds). A checkpoint counts only when its seal is present and every file
still matches it, so a checkpoint cut short by a crash, a truncated file or an empty directory is
recognised, reported by name, and the newest good one is used instead. The Trainer's own
save/rotate/load code is used as it is; only the seal and its check are hand-written (no field
library verifies a checkpoint's files).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from tunewise.artifacts import write_json

SEAL = "tunewise-checkpoint.json"
_STEP = re.compile(r"^checkpoint-(\d+)$")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(checkpoint: Path) -> list[Path]:
    return sorted(p for p in checkpoint.rglob("*") if p.is_file() and p.name != SEAL)


def seal(checkpoint: Path, totals: dict[str, Any]) -> None:
    """Record every file of a fully written checkpoint, and the run's totals at this step."""
    files = {
        str(p.relative_to(checkpoint)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in _files(checkpoint)
    }
    write_json(checkpoint / SEAL, {"files": files, "totals": totals})


def problem(checkpoint: Path) -> str:
    """'' when the checkpoint is complete and unchanged, else what is wrong with it."""
    path = checkpoint / SEAL
    if not path.is_file():
        return f"incomplete: no {SEAL} (the run stopped while writing it)"
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError, OSError):
        return f"{SEAL} is unreadable"
    if not files:
        return "holds no files"
    for name, want in files.items():
        file = checkpoint / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != want["bytes"]:
            return f"{name} has {file.stat().st_size} bytes, {want['bytes']} were written"
        if _sha256(file) != want["sha256"]:
            return f"{name} changed since it was written (sha256 differs)"
    return ""


def totals(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / SEAL).read_text(encoding="utf-8")).get("totals", {})


def by_step(directory: Path) -> list[Path]:
    """`checkpoint-N` directories, newest (highest N) first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and _STEP.match(p.name)]
    return sorted(found, key=lambda p: int(_STEP.match(p.name).group(1)), reverse=True)


def newest_good(directory: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest checkpoint that checks out, and the newer ones that did not (with why)."""
    bad = []
    for checkpoint in by_step(directory):
        why = problem(checkpoint)
        if not why:
            return checkpoint, bad
        bad.append((checkpoint, why))
    return None, bad


class SaveEverySteps(TrainerCallback):
    """`training.save_steps`: also checkpoint every N optimizer steps, on top of the per-epoch
    checkpoints, so a crash in a long epoch loses at most N steps. (A callback rather than
    save_strategy="steps", which would have to match the per-epoch evaluation that picks the
    best checkpoint.)"""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step % self.steps == 0:
            control.should_save = True
        return control
