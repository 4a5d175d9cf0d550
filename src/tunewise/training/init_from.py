"""`init_from: RUN_DIR`: start a run from an earlier run's trained model instead of the base model.

How the child starts is decided from the parent's manifest and the child's config and task:

- `continue`: same strategy (same options) and same task (type and state, e.g. the label set). The
  model is rebuilt exactly as the parent was and the parent's trained tensors are loaded: the same
  LoRA adapter (or the same full weights) keeps training, and the child stores base + its tensors.
- `merged`: anything else, when the parent's strategy can merge (`Strategy.merge`). The parent is
  rebuilt and merged into plain weights, which become the child's starting weights: the whole task
  model (head included) for the same task, the backbone only for another task (which builds its
  own head). The child's strategy then applies on top, so LoRA → LoRA across tasks trains a fresh
  adapter over the merged parent and "adapters disabled" is the parent model (DPO's reference).
- `adapters`: the parent's strategy cannot merge (adapter, prompt/prefix tuning) but the child
  uses the same strategy with the same options for another task: the parent's trained tensors
  except its head are loaded (the backbone keeps its adapters) and a new head is built.
- Anything else is refused with the reason, as is a different base model.

A child run stores only its own trained tensors. Loading it (the Predictor, `assemble`) rebuilds
the parent's start the same way first (recursively, for chains of runs), so the parent's run
directory must still be there with the same weights: the manifest records its path and the
sha256 of its weights, and loading checks both (`verify_recorded`). This keeps a LoRA child a few
MB instead of a copy of the merged base; docs/lifecycle.md explains the choice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from tunewise.artifacts import MANIFEST, WEIGHTS, load_trained, read_manifest
from tunewise.config import Config
from tunewise.errors import ConfigError, DataError
from tunewise.registry import STRATEGIES, TASKS


@dataclass
class Parent:
    run_dir: Path
    manifest: dict[str, Any]
    config: Config

    @property
    def task_type(self) -> str:
        return self.config.task.type

    @property
    def task_state(self) -> dict[str, Any]:
        return self.manifest["task"]["state"]


def weights_sha256(run_dir: Path) -> str:
    digest = hashlib.sha256()
    with (Path(run_dir) / WEIGHTS).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_parent(path: str | Path, expected_sha256: str | None = None) -> Parent:
    """The parent run, checked: a directory, a finished run (manifest + weights), and, when
    `expected_sha256` is given, the very weights a child was trained from."""
    from tunewise.config import validate_config

    run_dir = Path(path).expanduser().resolve()
    if not run_dir.is_dir():
        raise ConfigError(f"init_from: '{path}' is not a directory (a tunewise run directory).")
    if not (run_dir / MANIFEST).is_file():
        raise ConfigError(
            f"init_from: '{path}' is not a finished tunewise run ({MANIFEST} is missing: the "
            "run failed, is still training, or this is not a run directory)."
        )
    if not (run_dir / WEIGHTS).is_file():
        raise ConfigError(f"init_from: run '{path}' has no trained weights ({WEIGHTS}).")
    if expected_sha256 and weights_sha256(run_dir) != expected_sha256:
        raise ConfigError(
            f"init_from: the weights of parent run '{run_dir}' changed since this run was trained "
            f"from them (sha256 {expected_sha256[:12]}… recorded). Restore the parent run, or "
            "retrain the child from the parent as it is now."
        )
    manifest = read_manifest(run_dir)
    config = validate_config(manifest["config"], str(run_dir / MANIFEST))
    return Parent(run_dir, manifest, config)


def merge_refusal(strategy: str, options: Any) -> str | None:
    """Why `strategy` cannot merge (its own message), or None. Strategies that cannot merge
    refuse in `merge` before looking at the model, so an empty module asks without loading one."""
    try:
        STRATEGIES.get(strategy)(options).merge(nn.Module())
    except ConfigError as exc:
        return str(exc)
    except Exception:  # a mergeable strategy fails on the empty module: it would merge
        return None
    return None


def _same_strategy(cfg: Config, parent: Parent) -> bool:
    return cfg.strategy.model_dump() == parent.config.strategy.model_dump()


def _same_base(cfg: Config, parent: Parent) -> bool:
    mine, theirs = cfg.model, parent.config.model
    if (mine.revision, mine.gguf_file) != (theirs.revision, theirs.gguf_file):
        return False
    if mine.name == theirs.name:
        return True
    resolved = parent.manifest.get("base_model", {}).get("resolved") or theirs.name
    here = Path(mine.name).expanduser()
    return here.is_dir() and here.resolve() == Path(resolved).expanduser().resolve()


def validate(cfg: Config) -> None:
    """Check `cfg.init_from` before anything is loaded or written: the run exists and finished,
    the base model is the parent's, and the strategy change is possible. The path is made
    absolute in `cfg`, so the saved config finds the parent from anywhere."""
    if not cfg.init_from:
        return
    parent = load_parent(cfg.init_from)
    cfg.init_from = str(parent.run_dir)
    if not _same_base(cfg, parent):
        raise ConfigError(
            f"init_from: run '{parent.run_dir}' was trained on base model "
            f"'{parent.config.model.name}', but model.name is '{cfg.model.name}'. A run's "
            "weights only fit the model they were trained from: set model.name to "
            f"'{parent.config.model.name}', or drop init_from to start from '{cfg.model.name}'."
        )
    refusal = merge_refusal(parent.config.strategy.name, parent.config.strategy)
    if refusal and not _same_strategy(cfg, parent):
        raise ConfigError(
            f"init_from: run '{parent.run_dir}' was trained with strategy "
            f"'{parent.config.strategy.name}', which cannot be merged into plain weights, so a run "
            f"with strategy '{cfg.strategy.name}' (or other options) cannot start from it: "
            f"{refusal} Keep strategy '{parent.config.strategy.name}' with the parent's options "
            "to continue its trained tensors."
        )


def decide(cfg: Config, task: Any, parent: Parent) -> tuple[str, str]:
    """(mode, reason): continue, merged or adapters (see the module docstring)."""
    same_task = task.name == parent.task_type and task.state() == parent.task_state
    same_strategy = _same_strategy(cfg, parent)
    pname = parent.config.strategy.name
    if same_task and same_strategy:
        return "continue", f"same task and strategy: the parent's {pname} tensors keep training"
    what = "same task" if same_task else f"task {parent.task_type} → {task.name}"
    refusal = merge_refusal(pname, parent.config.strategy)
    if refusal is None:
        head = "its head kept" if same_task else "a new head"
        on_top = cfg.strategy.name
        return "merged", f"{what}: the parent's {pname} model merged, {head}, {on_top} on top"
    if same_strategy:
        return "adapters", f"{what}: the parent's {pname} tensors kept (not mergeable), a new head"
    raise ConfigError(
        f"init_from: cannot start strategy '{cfg.strategy.name}' from run '{parent.run_dir}': "
        f"{refusal}"
    )


def build(
    cfg: Config, task: Any, strategy: Any, backbone: nn.Module, expected_sha256: str | None = None
) -> tuple[nn.Module, dict[str, Any] | None]:
    """Task model + strategy from a loaded base `backbone`, started from `cfg.init_from` when
    set; returns the model and what the manifest records about the parent (None without one)."""
    if not cfg.init_from:
        return keep_start(strategy.apply(task.build_model(backbone), task.head_modules)), None
    from transformers import set_seed

    parent = load_parent(cfg.init_from, expected_sha256)
    mode, reason = decide(cfg, task, parent)
    grand = parent.manifest.get("init_from") or {}
    if mode in ("continue", "adapters"):  # the parent's own structure, then its tensors
        as_parent = cfg.model_copy(update={"init_from": parent.config.init_from})
        model, _ = build(as_parent, task, strategy, backbone, grand.get("sha256"))
        if mode == "continue":  # the parent's own start stays the start (DPO: its reference)
            load_trained(model, parent.run_dir)
        else:
            _load_without_head(model, parent)
            keep_start(model)
    else:
        merged = _merged_parent(parent)
        set_seed(cfg.seed)  # the new head's initial weights depend on the child's seed only
        model = task.build_model(backbone)
        if task.name == parent.task_type and task.state() == parent.task_state:
            _load_all(model, merged.state_dict(), parent)
        else:
            # another task: the parent's backbone (an LM's head too, when both are the same LM
            # class, e.g. SFT → preference); across model classes the shared base model only
            source = getattr(merged, "backbone", merged)
            if type(source) is type(backbone):
                _load_all(backbone, source.state_dict(), parent)
            else:
                _load_all(backbone.base_model, source.base_model.state_dict(), parent)
        del merged
        model = keep_start(strategy.apply(model, task.head_modules))
    info = {
        "run": str(parent.run_dir),
        "sha256": weights_sha256(parent.run_dir),
        "mode": mode,
        "reason": reason,
        "parent_task": parent.task_type,
        "parent_strategy": parent.config.strategy.name,
        "parent_base_model": parent.config.model.name,
    }
    return model, info


def keep_start(model: nn.Module) -> nn.Module:
    """The model now holds the weights it starts training from; modules that keep something of
    them (DPO's frozen reference: `keep_start()`) take it here, before any optimizer step and
    before a loaded run's trained tensors are put back."""
    for module in model.modules():
        hook = getattr(type(module), "keep_start", None)  # the class's: peft forwards getattr
        if callable(hook):
            hook(module)
    return model


def _merged_parent(parent: Parent) -> nn.Module:
    from tunewise.serving.predictor import Predictor

    model = Predictor(parent.run_dir, device="cpu").model
    options = parent.config.strategy
    return STRATEGIES.get(options.name)(options).merge(model)


def _load_all(target: nn.Module, state: dict[str, Any], parent: Parent) -> None:
    """Every weight of `target` from the parent's merged `state` (an unused pooler aside)."""
    result = target.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("pooler.")]
    unexpected = [k for k in result.unexpected_keys if not k.startswith("pooler.")]
    if missing or unexpected:
        first = (missing or unexpected)[0]
        raise ConfigError(
            f"init_from: the merged weights of run '{parent.run_dir}' do not fit this model "
            f"({len(missing)} missing, {len(unexpected)} unexpected, first: {first}). Was the "
            "model's architecture changed?"
        )


def _load_without_head(model: nn.Module, parent: Parent) -> None:
    """The parent's trained tensors except its task head (a non-mergeable strategy's adapters,
    soft prompt...), for a child with another head."""
    from safetensors.torch import load_file

    heads = set(TASKS.get(parent.task_type).head_modules)
    state = load_file(str(parent.run_dir / WEIGHTS))
    kept = {k: v for k, v in state.items() if not heads & set(k.split("."))}
    result = model.load_state_dict(kept, strict=False)
    if result.unexpected_keys:
        raise ConfigError(
            f"init_from: {len(result.unexpected_keys)} trained tensors of run "
            f"'{parent.run_dir}' do not fit this model (first: {result.unexpected_keys[0]})."
        )


def verify_recorded(manifest: dict[str, Any]) -> None:
    """Before a child run loads: its parent (recorded at training time) is still there and
    unchanged, since the child's weights are rebuilt on top of it."""
    recorded = manifest.get("init_from")
    if not recorded:
        return
    run = Path(recorded["run"])
    if not (run / MANIFEST).is_file() or not (run / WEIGHTS).is_file():
        raise ConfigError(
            f"This run was trained from run '{run}' (init_from) and is rebuilt on top of it, but "
            "that run directory is gone or incomplete. Restore it to load this run."
        )
    load_parent(run, recorded["sha256"])


def read_splits(cfg: Config, task: Any, read: Callable[..., Any]) -> Any:
    """The run's splits, read by `read(fit=...)`. A run continuing a parent of the same task
    first tries the parent's state (e.g. its label set): new data that shows only some of the
    labels then continues the parent's head instead of building a smaller one. Data the parent's
    state does not fit (a label it never saw) fits its own state: another task, a new head."""
    if cfg.init_from:
        parent = load_parent(cfg.init_from)
        if task.name == parent.task_type:
            task.load_state(parent.task_state)
            try:
                return read(fit=False)
            except DataError:
                pass
    return read(fit=True)
