"""Base model + task head + strategy → the model that trains (or predicts).

Training and loading a finished run go through this one function, so a saved run rebuilds
exactly the module tree it was trained as before its trained weights are loaded back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from tunewise.config import Config
from tunewise.models import ModelSource, load_backbone, load_tokenizer, resolve
from tunewise.registry import STRATEGIES
from tunewise.strategies.base import Strategy
from tunewise.strategies.compat import check_addons, check_compatible
from tunewise.tasks.base import Task


@dataclass
class Assembled:
    model: nn.Module
    tokenizer: Any
    strategy: Strategy
    source: ModelSource


def load_base(
    cfg: Config, auto_class: str = "AutoModel", **extra: Any
) -> tuple[ModelSource, Any, nn.Module]:
    """Resolve `model.name` and load its tokenizer and base model (the bare backbone unless the
    task asks for an LM class); `extra` goes to `from_pretrained` (e.g. QLoRA's quantisation)."""
    source = resolve(cfg.model.name, cfg.model.gguf_file, cfg.model.revision)
    kwargs: dict[str, Any] = {"trust_remote_code": cfg.model.trust_remote_code}
    if cfg.model.revision and not source.alias:
        kwargs["revision"] = cfg.model.revision
    tokenizer = load_tokenizer(source, **kwargs)
    backbone = load_backbone(source, auto_class, **kwargs, **extra)
    if getattr(backbone.config, "pad_token_id", None) is None:
        backbone.config.pad_token_id = tokenizer.pad_token_id
    return source, tokenizer, backbone


def assemble(cfg: Config, task: Task, tokenizer: Any | None = None) -> Assembled:
    """Build the trainable model; `tokenizer` overrides the base model's (a saved run's copy)."""
    from transformers import set_seed

    set_seed(cfg.seed)  # the head's initial weights depend on it
    strategy: Strategy = STRATEGIES.get(cfg.strategy.name)(cfg.strategy)
    check_compatible(type(strategy), type(task))  # before loading anything
    check_addons(cfg, type(task))  # adversarial training, distillation
    source, base_tokenizer, backbone = load_base(cfg, task.auto_model, **strategy.load_kwargs())
    model = task.build_model(backbone)
    if cfg.distill and cfg.distill.student_layers:  # the teacher's fine-tuned model, fewer blocks
        from tunewise.training.distill_setup import layer_reduced_student

        model = layer_reduced_student(cfg, model)
    model = strategy.apply(model, task.head_modules)
    return Assembled(model, tokenizer or base_tokenizer, strategy, source)
