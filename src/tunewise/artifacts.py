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
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from tunewise.errors import TunewiseError

MANIFEST = "tunewise.json"
WEIGHTS = Path("model") / "trained.safetensors"


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


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


def prepare_output_dir(path: Path, overwrite: bool, resume: bool = False) -> None:
    """Check, then (with overwrite) clear the directory. Call it once the run is known to be
    able to start (config, data and model loaded), so a failing run never costs the old one."""
    check_output_dir(path, overwrite, resume)
    if path.is_dir() and overwrite and not resume:
        import shutil

        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def _custom_savers(model: nn.Module) -> dict[str, nn.Module]:
    """Modules that store their trained tensors themselves (`export_trained(prefix)` /
    `import_trained(prefix, state)`), e.g. diff pruning's sparse δ; prefix → module."""
    return {f"{n}.": m for n, m in model.named_modules() if hasattr(m, "export_trained")}


def save_trained(model: nn.Module, run_dir: Path) -> dict[str, Any]:
    """Store the parameters that trained (atomically); returns their count and size."""
    state, seen = {}, set()
    custom = _custom_savers(model)
    for prefix, module in custom.items():
        state.update(module.export_trained(prefix))
    for name, param in model.named_parameters():
        if any(name.startswith(prefix) for prefix in custom):
            continue
        if param.requires_grad and param.data_ptr() not in seen:
            seen.add(param.data_ptr())
            state[name] = param.detach().cpu().contiguous()
    target = run_dir / WEIGHTS
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, target)
    return {"tensors": len(state), "bytes": target.stat().st_size}


def load_trained(model: nn.Module, run_dir: Path) -> None:
    """Put a run's trained tensors back into a freshly assembled model (names must all match)."""
    path = run_dir / WEIGHTS
    if not path.is_file():
        raise TunewiseError(f"Run '{run_dir}' has no trained weights ({WEIGHTS} is missing).")
    state = load_file(str(path))
    for prefix, module in _custom_savers(model).items():
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
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise TunewiseError(f"'{run_dir}' is not a tunewise run directory (no {MANIFEST}).")
    return json.loads(path.read_text(encoding="utf-8"))


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
