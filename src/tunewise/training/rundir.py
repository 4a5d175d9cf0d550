"""Where a run writes while it trains, and how it becomes the run directory.

A run never writes into `output_dir` itself. It trains into a sibling work directory,
`.<name>.partial/` (checkpoints, TensorBoard log, reports), under an exclusive lock on
`output_dir` (`tunewise.runlock`), and only when everything is written is the work directory
swapped in: the previous run is renamed aside, the new one renamed into place, the old one
removed. A run that fails, or is killed, therefore never costs the previous run; its checkpoints
stay in the work directory for `--resume`, and an interrupted swap is completed (or undone) by
the next run that takes the lock. Inputs inside `output_dir` are refused, since replacing the
directory would delete them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunewise.artifacts import MANIFEST, check_output_dir, write_json
from tunewise.config import Config
from tunewise.errors import ConfigError, TunewiseError
from tunewise.runlock import RunLock
from tunewise.training import checkpoints as ckpt

IDENTITY = "run.json"  # in the work directory: what the checkpoints were trained as
# Config values a checkpoint's tensors and optimizer state depend on.
IDENTITY_KEYS = (
    "model.name",
    "model.revision",
    "model.gguf_file",
    "model.pooling",
    "task",
    "strategy",
    "training.optimizer",
)


def partial_dir(run_dir: Path) -> Path:
    return run_dir.parent / f".{run_dir.name}.partial"


def _aside(run_dir: Path) -> Path:
    return run_dir.parent / f".{run_dir.name}.replaced"


def input_paths(cfg: Config) -> dict[str, Path]:
    """Every file or directory the run reads, by the config key that names it."""
    found: dict[str, Path] = {}
    sections = {"data": cfg.data} if cfg.data is not None else {}
    for task_name, sub in (getattr(cfg.task, "tasks", None) or {}).items():  # multi-task
        sections[f"tasks.{task_name}.data"] = sub.data
    for prefix, data in sections.items():
        for name in ("train", "validation", "test"):
            spec = data.split(name)
            if spec is not None:
                found[f"{prefix}.{name}"] = Path(spec.path)
    if Path(cfg.model.name).exists():
        found["model.name"] = Path(cfg.model.name)
    for section, key in (("model", "init_from"), ("training", "init_from"), (None, "init_from")):
        owner = getattr(cfg, section) if section else cfg
        value = getattr(owner, key, None)
        if isinstance(value, (str, Path)) and value:
            found[f"{section + '.' if section else ''}{key}"] = Path(value)
    return found


def refuse_inputs_inside(run_dir: Path, inputs: dict[str, Path]) -> None:
    """A run replaces its whole output directory: nothing it reads may live inside it."""
    root = run_dir.resolve()
    inside = [
        f"{key} ({path})"
        for key, path in inputs.items()
        if path.resolve() == root or root in path.resolve().parents
    ]
    if inside:
        raise TunewiseError(
            f"output_dir '{run_dir}' contains the run's own input: {', '.join(inside)}. A run "
            "replaces its whole output directory, which would delete that input; move the "
            "input out, or choose another output_dir."
        )


def _recover(run_dir: Path, work: Path) -> None:
    """Finish (or undo) a swap that a killed process left half-done."""
    aside = _aside(run_dir)
    if not aside.exists():
        return
    if run_dir.exists():
        shutil.rmtree(aside, ignore_errors=True)  # the swap was done; only the cleanup was not
    elif (work / MANIFEST).is_file():
        work.rename(run_dir)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.rename(run_dir)


def _identity(cfg: Config) -> dict[str, Any]:
    data = cfg.to_dict()
    return {key: _pick(data, key) for key in IDENTITY_KEYS}


def _differences(old: Any, new: Any, prefix: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(dict.fromkeys([*old, *new]))
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{prefix}.{k}")]
    return [] if old == new else [f"{prefix}: {old!r} in the checkpoints, {new!r} now"]


@dataclass
class StagedRun:
    """A run in progress: `work` is where it writes, `final` where it goes once finished."""

    final: Path
    work: Path
    resume: bool
    overwrite: bool
    resume_from: Path | None = None
    totals: dict[str, Any] = field(default_factory=dict)
    committed: bool = False

    @property
    def checkpoints(self) -> Path:
        return self.work / "checkpoints"

    def begin(self, cfg: Config) -> None:
        """Called once data and model have loaded: a fresh run starts from an empty work
        directory; a resumed one checks it continues what its checkpoints were trained as."""
        if self.resume:
            self._check_identity(cfg)
            return
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        write_json(self.work / IDENTITY, {"config": cfg.to_dict()})

    def _check_identity(self, cfg: Config) -> None:
        path = self.work / IDENTITY
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))["config"]
        except (OSError, ValueError, KeyError):
            return  # no record: nothing to compare (the Trainer still checks shapes)
        differences = []
        for key, new in _identity(cfg).items():
            differences += _differences(_pick(saved, key), new, key)
        if differences:
            raise ConfigError(
                f"Cannot resume '{self.final}': its checkpoints were trained with another "
                f"setup ({'; '.join(differences)}). A checkpoint's tensors and optimizer state "
                "only fit the model, task, strategy and optimizer they were made with; restore "
                "those settings to resume, or start over with --overwrite."
            )

    def commit(self) -> None:
        """Swap the finished work directory in as `final` (the old run renamed aside first)."""
        aside = _aside(self.final)
        if aside.exists():  # a superseded run whose removal did not finish earlier
            shutil.rmtree(aside)
        if self.final.exists():
            self.final.rename(aside)
        self.work.rename(self.final)
        self.committed = True
        shutil.rmtree(aside, ignore_errors=True)


def _pick(data: dict[str, Any], key: str) -> Any:
    value: Any = data
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _plan_resume(run: StagedRun) -> None:
    good, bad = ckpt.newest_good(run.checkpoints)
    if good is None:
        if bad:
            listed = "; ".join(f"{p.name}: {why}" for p, why in bad)
            raise TunewiseError(
                f"Cannot resume '{run.final}': no usable checkpoint in {run.checkpoints} "
                f"({listed}). Start over with --overwrite."
            )
        if (run.final / MANIFEST).is_file():
            raise TunewiseError(
                f"Run '{run.final}' has finished ({MANIFEST} is written); there is nothing to "
                "resume. Use --overwrite to train it again, or another output_dir."
            )
        raise TunewiseError(
            f"Cannot resume '{run.final}': it has no checkpoint (looked in {run.checkpoints}). "
            "Drop --resume to start a fresh run."
        )
    set_aside = run.work / "unusable-checkpoints"
    for path, why in bad:
        print(f"[tunewise] {path.name} is unusable ({why}); moved to {set_aside}.")
        set_aside.mkdir(exist_ok=True)
        target = set_aside / path.name
        if target.exists():
            shutil.rmtree(target)
        path.rename(target)
    print(f"[tunewise] resuming from {good}")
    run.resume_from, run.totals = good, ckpt.totals(good)


@contextmanager
def staged_run(cfg: Config, overwrite: bool, resume: bool) -> Iterator[StagedRun]:
    """Check the target, lock it, and yield the run's work area; on failure the work directory
    is removed unless it holds checkpoints (kept for `--resume`)."""
    final = Path(cfg.output_dir)
    check_output_dir(final, overwrite, resume)
    refuse_inputs_inside(final, input_paths(cfg))
    with RunLock(final):
        work = partial_dir(final)
        _recover(final, work)
        run = StagedRun(final, work, resume, overwrite)
        if resume:
            _plan_resume(run)
        elif ckpt.by_step(run.checkpoints) and not overwrite:
            raise TunewiseError(
                f"An unfinished run of '{final}' left checkpoints in {run.checkpoints}. Pass "
                "--resume to continue it, or --overwrite to discard them and start over."
            )
        existed = work.exists()
        try:
            yield run
        except BaseException:
            if not run.committed and work.exists():
                if ckpt.by_step(run.checkpoints):
                    print(f"[tunewise] checkpoints kept in {run.checkpoints}; --resume continues.")
                elif not existed or not resume:
                    shutil.rmtree(work, ignore_errors=True)
            raise


@contextmanager
def rank_run(cfg: Config, overwrite: bool, resume: bool) -> Iterator[StagedRun]:
    """`staged_run` on rank 0; under torchrun the other ranks wait for it, then work in the same
    work directory (they read checkpoints but never write, lock or swap the run directory)."""
    from tunewise.training import distributed

    if distributed.is_main_process():
        with staged_run(cfg, overwrite, resume) as run:
            distributed.barrier()
            yield run
        return
    distributed.barrier()
    final = Path(cfg.output_dir)
    run = StagedRun(final, partial_dir(final), resume, overwrite)
    if resume:
        _plan_resume(run)
    yield run
