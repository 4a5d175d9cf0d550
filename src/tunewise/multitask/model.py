"""One backbone, one head per task: each task's own model (built by its Task) around the same
backbone module, so a strategy's adapters on the backbone are shared by every head."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import nn

from tunewise.training.shared_weights import dedupe_state_dict


class MultiTaskModel(nn.Module):
    accepts_loss_kwargs = False  # each head averages its own loss

    def __init__(self, heads: dict[str, nn.Module], weights: dict[str, float]) -> None:
        super().__init__()
        self.heads = nn.ModuleDict(heads)
        self.names = list(heads)
        self.weights = weights
        self.task_losses: dict[str, list[float]] = defaultdict(list)
        dedupe_state_dict(self)  # the shared backbone: Trainer checkpoints keep one name

    def tie_weights(self, *args: Any, **kwargs: Any) -> None:
        pass  # the heads share the backbone module itself: nothing to re-tie

    @property
    def config(self) -> Any:  # peft and the Trainer look for `model.config`
        return next(iter(self.heads.values())).config

    def forward(self, task_index: torch.Tensor, labels: Any = None, **inputs: Any) -> Any:
        """The batch's task head (every row of a batch is from one task); `labels` is named so
        the Trainer knows evaluation batches carry labels and computes their loss."""
        inputs.pop("num_items_in_batch", None)
        if labels is not None:
            inputs["labels"] = labels
        name = self.names[int(task_index.flatten()[0])]
        out = self.heads[name](**inputs)
        if out.loss is not None:
            if self.training:
                self.task_losses[name].append(float(out.loss.detach()))
            out.loss = out.loss * self.weights.get(name, 1.0)
        return out

    def pop_task_losses(self) -> dict[str, float]:
        means = {f"loss_{n}": round(sum(v) / len(v), 4) for n, v in self.task_losses.items() if v}
        self.task_losses.clear()
        return means


def find_multitask(model: nn.Module) -> MultiTaskModel | None:
    return next((m for m in model.modules() if isinstance(m, MultiTaskModel)), None)


class MultiTaskLogMixin:
    """Trainer mixin: each task's mean training loss since the last log, as `loss_<task>`."""

    def log(self, logs: dict[str, float], *args: Any, **kw: Any) -> None:
        if "loss" in logs:
            multitask = find_multitask(self.model)  # type: ignore[attr-defined]
            if multitask is not None:
                logs.update(multitask.pop_task_losses())
        super().log(logs, *args, **kw)  # type: ignore[misc]
