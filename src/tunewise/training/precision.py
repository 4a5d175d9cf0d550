"""`training.precision` and `training.gradient_checkpointing` as the Trainer's own switches.

Precision maps to TrainingArguments' bf16 / fp16 (accelerate's autocast; on CPU bf16 autocast).
Gradient checkpointing is enabled on the transformers backbone(s) inside the task model, since
tunewise's task models wrap the backbone (the Trainer's switch expects a PreTrainedModel at the
top); with frozen weights (PEFT) the embeddings' outputs are made to require grads so
checkpointed blocks still get gradients.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tunewise.errors import ConfigError


def precision_arguments(precision: str, use_cpu: bool) -> dict[str, bool]:
    """TrainingArguments' `bf16` / `fp16` for `training.precision`; refuses what cannot run."""
    if precision == "fp16" and use_cpu:
        raise ConfigError(
            "training.precision: fp16 needs a CUDA GPU (fp16 autocast and its gradient scaler do "
            "not run on CPU). Use 'bf16' (CPU autocast) or 'fp32' on this machine."
        )
    if precision == "bf16":
        available = torch.amp.is_autocast_available("cpu" if use_cpu else "cuda")
        if not available or (not use_cpu and not torch.cuda.is_bf16_supported()):
            device = "this CPU build of torch" if use_cpu else "this GPU"
            raise ConfigError(
                f"training.precision: bf16 is not supported by {device}; use 'fp16' on older "
                "GPUs or 'fp32'."
            )
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def enable_gradient_checkpointing(model: nn.Module) -> int:
    """Switch on activation checkpointing in every transformers model inside `model`; returns
    how many were switched (0: the architecture does not support it → ConfigError)."""
    from transformers import PreTrainedModel

    switched = 0
    for module in model.modules():
        if isinstance(module, PreTrainedModel) and module.supports_gradient_checkpointing:
            if module.is_activation_checkpointing:
                continue
            module.activation_checkpointing_enable({"use_reentrant": False})
            if any(not p.requires_grad for p in module.parameters()):
                module.enable_input_require_grads()  # PEFT / partial training
            switched += 1
    if not switched:
        raise ConfigError(
            f"training.gradient_checkpointing: {type(model).__name__} has no transformers "
            "backbone that supports gradient checkpointing; set it to false."
        )
    return switched


def describe(cfg: Any) -> dict[str, Any]:
    """What the manifest records about precision and checkpointing."""
    return {
        "precision": cfg.training.precision,
        "gradient_checkpointing": cfg.training.gradient_checkpointing,
    }
