"""Modules that hold one tensor under several names (tied embeddings, a backbone shared by
several task heads) and are not PreTrainedModels: the Trainer saves their checkpoints with
safetensors, which refuses shared tensors. Each tensor is kept under its first name only; the
Trainer loads checkpoints back non-strictly and the sharing restores the other names."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _drop_duplicates(module: nn.Module, state: dict, prefix: str, _meta: Any) -> None:
    seen: set[tuple[int, tuple[int, ...]]] = set()
    for key in list(state):
        value = state[key]
        if not isinstance(value, torch.Tensor) or not key.startswith(prefix):
            continue
        ident = (value.data_ptr(), tuple(value.shape))
        if ident in seen:
            del state[key]
        seen.add(ident)


def dedupe_state_dict(module: nn.Module) -> None:
    """Install the hook; `_keys_to_ignore_on_save` (read by the Trainer when it loads the best
    checkpoint back) lists the dropped names, so it warns about nothing."""
    module.register_state_dict_post_hook(_drop_duplicates)
    seen: set[int] = set()
    dropped = []
    for name, p in module.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            dropped.append(name)
        seen.add(id(p))
    module._keys_to_ignore_on_save = dropped
