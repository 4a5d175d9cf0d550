"""Base model + task head + strategy → the model that trains (or predicts).

Training and loading a finished run go through this one function, so a saved run rebuilds
exactly the module tree it was trained as before its trained weights are loaded back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from tunewise.config import Config
from tunewise.errors import ConfigError
from tunewise.models import ModelSource, load_backbone, load_tokenizer, resolve
from tunewise.registry import STRATEGIES
from tunewise.strategies.base import Strategy
from tunewise.strategies.compat import check_addons, check_compatible
from tunewise.tasks.base import Task
from tunewise.training.init_from import build as build_from


@dataclass
class Assembled:
    model: nn.Module
    tokenizer: Any
    strategy: Strategy
    source: ModelSource
    init_from: dict[str, Any] | None = None  # the parent run this model started from, if any


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
    if cfg.distill and cfg.distill.student_layers:  # the teacher's fine-tuned model, fewer blocks
        from tunewise.training.distill_setup import layer_reduced_student

        if cfg.init_from:
            raise ConfigError(
                "distill.student_layers builds the student from the teacher's model, so "
                "init_from cannot also choose where it starts; drop one of the two."
            )
        model = layer_reduced_student(cfg, task.build_model(backbone))
        model, parent = strategy.apply(model, task.head_modules), None
    else:
        model, parent = build_from(cfg, task, strategy, backbone)  # head + strategy (+ init_from)
    return Assembled(model, tokenizer or base_tokenizer, strategy, source, parent)
