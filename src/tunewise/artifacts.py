"""The run directory: trained weights, tokenizer, manifest, metrics.

Layout of a run dir:
    tunewise.json      manifest: task + its state (labels), strategy, base model, metrics,
                       resolved config, package versions, data fingerprints
    config.yaml        the resolved config (re-runnable with `tunewise train`)
    metrics.json       validation (and test) metrics
    report.md          human report with plots (loss curve, confusion matrix)
    model/trained.safetensors   only the parameters that trained (all of them for `full`)
    tokenizer/         the tokenizer the model was trained with
Only what trained is stored: a LoRA run is a few MB; loading rebuilds base + head + strategy
and puts these tensors back (`assemble.py`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from tunewise.errors import TunewiseError

MANIFEST = "tunewise.json"
WEIGHTS = Path("model") / "trained.safetensors"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable_file(path: Path, what: str = "Output") -> None:
    """Refuse a target that is a directory (or under a file) before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise TunewiseError(f"{what} '{path}' is a directory; give a file name.")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise TunewiseError(f"{what} '{path}': '{parent}' is a file, not a directory.")


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file.
    The file gets the mode a plain `open` would (0666 less the umask), not mkstemp's 0600."""
    path = Path(path)
    check_writable_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def check_output_dir(path: Path, overwrite: bool, resume: bool = False) -> None:
    """Refuse a non-empty directory unless told to; changes nothing on disk."""
    if path.exists() and not path.is_dir():
        raise TunewiseError(f"Output path '{path}' exists and is not a directory.")
    if path.is_dir() and any(path.iterdir()) and not (overwrite or resume):
        raise TunewiseError(
            f"Output directory '{path}' is not empty; refusing to overwrite an earlier run. "
            "Pass --overwrite (or overwrite=True) to replace it, --resume to continue it, or "
            "choose another output_dir."
        )


def _custom_savers(model: nn.Module) -> dict[str, nn.Module]:
    """Modules that store their trained tensors themselves (`export_trained(prefix)` /
    `import_trained(prefix, state)`), e.g. diff pruning's sparse δ; prefix → module."""
    return {f"{n}.": m for n, m in model.named_modules() if hasattr(m, "export_trained")}


# Set on a frozen parameter that is nonetheless part of what a run produced (LoRA-FA's random A):
# stored and restored with the trained ones, so a load never depends on replaying a random init.
KEEP_FROZEN = "tunewise_keep"


def _plain_stored(model: nn.Module, custom: dict[str, nn.Module]) -> Iterator[tuple[str, Any]]:
    """(name, parameter) of what a run stores outside the custom savers: each tensor that trained
    or is marked `KEEP_FROZEN`, once (tied weights share one entry)."""
    seen = set()
    for name, param in model.named_parameters():
        if any(name.startswith(prefix) for prefix in custom):
            continue
        kept = param.requires_grad or getattr(param, KEEP_FROZEN, False)
        if kept and param.data_ptr() not in seen:
            seen.add(param.data_ptr())
            yield name, param


def save_trained(model: nn.Module, run_dir: Path) -> dict[str, Any]:
    """Store the parameters that trained, and those marked `KEEP_FROZEN` (atomically); returns
    their count and size."""
    state = {}
    custom = _custom_savers(model)
    for prefix, module in custom.items():
        state.update(module.export_trained(prefix))
    for name, param in _plain_stored(model, custom):
        state[name] = param.detach().cpu().contiguous()
    target = run_dir / WEIGHTS
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    save_file(state, str(tmp))
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, target)
    return {"tensors": len(state), "bytes": target.stat().st_size}


def expected_trained(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the plain parameters `save_trained` stores for this model (modules
    with their own saver are checked by prefix only)."""
    return {name: tuple(p.shape) for name, p in _plain_stored(model, _custom_savers(model))}


def load_trained(model: nn.Module, run_dir: Path) -> None:
    """Put a run's trained tensors back into a freshly assembled model. Strict: every tensor
    that trained must be in the file with its shape, and nothing else may be."""
    path = run_dir / WEIGHTS
    if not path.is_file():
        raise TunewiseError(f"Run '{run_dir}' has no trained weights ({WEIGHTS} is missing).")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error type for a damaged file
        raise TunewiseError(
            f"Run '{run_dir}': {WEIGHTS} cannot be read ({exc}); the file is damaged or "
            "incomplete. Copy the run again, or retrain it."
        ) from None
    expected = expected_trained(model)
    missing = [n for n in expected if n not in state]
    wrong = [
        f"{n} {tuple(state[n].shape)} instead of {shape}"
        for n, shape in expected.items()
        if n in state and tuple(state[n].shape) != shape
    ]
    custom = _custom_savers(model)
    missing += [p.rstrip(".") for p in custom if not any(k.startswith(p) for k in state)]
    if missing or wrong:
        listed = ", ".join(missing[:8]) + (
            f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        )
        detail = (f"{len(missing)} trained tensor(s) missing: {listed}" if missing else "") + (
            ("; " if missing else "") + "wrong shape: " + ", ".join(wrong[:8]) if wrong else ""
        )
        raise TunewiseError(
            f"Run '{run_dir}': {WEIGHTS} does not hold what this run trained ({detail}). "
            "Refusing to predict with untrained weights; copy the run again, or retrain it."
        )
    for prefix, module in custom.items():
        mine = {k: v for k, v in state.items() if k.startswith(prefix)}
        if mine:
            module.import_trained(prefix, mine)
            state = {k: v for k, v in state.items() if k not in mine}
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise TunewiseError(
            f"Run '{run_dir}': {len(result.unexpected_keys)} saved tensors do not fit the rebuilt "
            f"model (first: {result.unexpected_keys[0]}). Was the base model changed?"
        )


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The run's manifest, checked for the sections loading needs."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    if run_dir.exists() and not run_dir.is_dir():
        raise TunewiseError(f"'{run_dir}' is a file, not a tunewise run directory.")
    if not path.is_file():
        raise TunewiseError(f"'{run_dir}' is not a tunewise run directory (no {MANIFEST}).")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise TunewiseError(
            f"{path} is damaged or incomplete ({exc}); copy the run again, or retrain it."
        ) from None
    if not isinstance(manifest, dict):
        raise TunewiseError(f"{path} is not a tunewise manifest (not a JSON object).")
    for key, kind in (("config", dict), ("task", dict)):
        if not isinstance(manifest.get(key), kind):
            raise TunewiseError(
                f"{path} has no '{key}' section, which loading the run needs; the file is "
                "damaged or was not written by tunewise."
            )
    if not isinstance(manifest["task"].get("state"), dict):
        raise TunewiseError(f"{path}: 'task.state' is missing or not an object.")
    return manifest


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in (
        "tunewise",
        "torch",
        "transformers",
        "peft",
        "accelerate",
        "datasets",
        "tokenizers",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out
