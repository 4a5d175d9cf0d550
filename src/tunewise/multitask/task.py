"""The multi-task composite: a Task made of named sub-tasks over one backbone.

`tasks: {name: {task: {...}, data: {...}}}` and `multitask: {sampling, temperature, weights,
metric}` in a config become `task: {type: multitask, tasks: ..., sampling: ...}`; the training
recipe then runs as for any task (one Trainer, one run directory). Evaluation reports every
task's metrics under its name plus `combined` (the mean of each task's default metric, or of
`multitask.metric` where a task has it). `Predictor(run, task=NAME)` serves one head with a
single-task run's exact outputs.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from tunewise.config import DataConfig, ModelConfig, SplitFile, TaskOptions
from tunewise.errors import ConfigError
from tunewise.tasks.base import Task


class SubTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: dict[str, Any]
    data: DataConfig


class MultiTaskOptions(TaskOptions):
    model_config = ConfigDict(extra="forbid")
    type: Literal["multitask"] = "multitask"
    tasks: dict[str, SubTask]
    sampling: Literal["proportional", "temperature", "round_robin"] = "proportional"
    temperature: float = Field(2.0, gt=0)
    weights: dict[str, float] = Field(default_factory=dict)  # loss weight per task (default 1)
    metric: str | None = None  # combined metric: mean of this metric; None: each default

    @model_validator(mode="after")
    def _check(self) -> MultiTaskOptions:
        from tunewise.registry import TASKS
        from tunewise.strategies.compat import addon_incompatible

        if len(self.tasks) < 2:
            raise ValueError("multi-task learning needs at least two entries under 'tasks'")
        unknown = set(self.weights) - set(self.tasks)
        if unknown:
            raise ValueError(f"multitask.weights names unknown task(s) {sorted(unknown)}")
        for name, sub in self.tasks.items():
            sub.task = dict(sub.task)
            sub.task.setdefault("type", "classification")
            cls = TASKS.get(sub.task["type"])
            reason = addon_incompatible("multitask", cls)
            if reason:
                raise ValueError(f"tasks.{name}: '{cls.name}' cannot be one of several: {reason}")
            sub.task = cls.Options.model_validate(sub.task).model_dump(mode="json")
        return self


class TaskParts:
    """One split of every task: {task name: dataset}; columns concatenate across tasks."""

    def __init__(self, parts: dict[str, Any], sampling: tuple[str, float] = ("proportional", 2)):
        self.parts = parts
        self.sampling = sampling  # (scheme, temperature) for the training loader

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts.values())

    def __getitem__(self, column: str) -> list[Any]:
        return [v for p in self.parts.values() for v in p[column]]

    def loader(self, trainer: Any, batch_size: int, training: bool) -> Any:
        """The Trainer's dataloader: one task per batch, tasks drawn by the sampling scheme."""
        import inspect

        from torch.utils.data import DataLoader

        from tunewise.multitask.model import find_multitask
        from tunewise.multitask.sampling import TaskBatchSampler, TaskRows

        heads = find_multitask(trainer.model).heads  # type: ignore[union-attr]
        columns = {  # what the Trainer's own loader keeps: the columns forward() takes
            name: [
                c for c in ds.column_names if c in inspect.signature(heads[name].forward).parameters
            ]
            for name, ds in self.parts.items()
        }
        rows = TaskRows(self.parts, columns)
        sampler = TaskBatchSampler(
            rows,
            batch_size,
            trainer.max_tokens_per_batch if training else None,
            *self.sampling,
            training=training,
            seed=trainer.args.seed,
        )
        return DataLoader(rows, batch_sampler=sampler, collate_fn=trainer.data_collator)


class MultiTask(Task):
    name = "multitask"
    Options = MultiTaskOptions
    default_metric = "loss"  # per-epoch checkpoints: the weighted validation loss
    greater_is_better = False
    head_modules: ClassVar[list[str]] = []

    def __init__(self, options: Any, data: DataConfig | None, model: ModelConfig) -> None:
        from tunewise.registry import TASKS

        super().__init__(options, data, model)  # type: ignore[arg-type]
        self.subtasks: dict[str, Task] = {}
        for name, sub in options.tasks.items():
            cls = TASKS.get(sub.task["type"])
            self.subtasks[name] = cls(cls.Options.model_validate(sub.task), sub.data, model)
        self.head_modules = [
            f"heads.{n}.{h}" for n, t in self.subtasks.items() for h in t.head_modules
        ]

    # -- state -------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {n: t.state() for n, t in self.subtasks.items()}

    def load_state(self, state: dict[str, Any]) -> None:
        for n, t in self.subtasks.items():
            t.load_state(state[n])

    # -- data --------------------------------------------------------------------------------------
    def read(self, spec: SplitFile, *, fit: bool = False, labelled: bool = True) -> Any:
        raise ConfigError("A multi-task run reads each task's files: pick one with --task NAME.")

    def read_splits(self, cfg: Any) -> tuple[dict[str, TaskParts], dict[str, Any]]:
        """Every task's splits, read as its single-task run would read them."""
        from tunewise.training.recipe import _read_splits

        per_task = {}
        sources: dict[str, Any] = {}
        for name, task in self.subtasks.items():
            sub_cfg = cfg.model_copy(update={"data": task.data_cfg})
            per_task[name], sources[name] = _read_splits(sub_cfg, task)
        names = [
            s for s in ("train", "validation", "test") if all(s in p for p in per_task.values())
        ]
        splits = {s: TaskParts({n: per_task[n][s] for n in per_task}) for s in names}
        by_split = {s: {n: sources[n].get(s) for n in sources} for s in names}
        return splits, by_split

    def tokenize(self, dataset: TaskParts, tokenizer: Any) -> TaskParts:
        return TaskParts(
            {n: self.subtasks[n].tokenize(ds, tokenizer) for n, ds in dataset.parts.items()},
            (self.options.sampling, self.options.temperature),
        )

    def collator(self, tokenizer: Any) -> Any:
        import torch

        collators = {n: t.collator(tokenizer) for n, t in self.subtasks.items()}
        names = list(self.subtasks)

        def collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
            index = rows[0]["task_index"]
            batch = collators[names[index]](
                [{k: v for k, v in r.items() if k != "task_index"} for r in rows]
            )
            batch["task_index"] = torch.full((len(rows),), index, dtype=torch.long)
            return batch

        return collate

    def label_counts(self, dataset: TaskParts) -> dict[str, Any]:
        return {n: self.subtasks[n].label_counts(ds) for n, ds in dataset.parts.items()}

    # -- model -------------------------------------------------------------------------------------
    def build_model(self, backbone: nn.Module) -> nn.Module:
        from tunewise.multitask.model import MultiTaskModel

        heads = {n: t.build_model(backbone) for n, t in self.subtasks.items()}
        return MultiTaskModel(heads, self.options.weights)

    @staticmethod
    def head(model: nn.Module, name: str) -> nn.Module:
        from tunewise.multitask.model import find_multitask

        found = find_multitask(model)
        assert found is not None
        return found.heads[name]

    # -- outputs -----------------------------------------------------------------------------------
    def trainer_metrics(self) -> None:
        return None

    def compute_metrics(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError("multi-task metrics come from each task's evaluate()")

    def decode(self, logits: np.ndarray) -> list[dict[str, Any]]:
        raise ConfigError("A multi-task run predicts with one head: pick it with --task NAME.")

    def evaluate(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        encoded: Any = None,
        batch_size: int = 64,
        progress: bool = True,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        chosen = []
        for name, task in self.subtasks.items():
            enc = encoded.parts[name] if encoded is not None else None
            out[name] = task.evaluate(
                self.head(model, name), tokenizer, dataset.parts[name], enc, batch_size, progress
            )
            metric = self.options.metric if self.options.metric in out[name] else None
            value = out[name].get(metric or task.default_metric)
            if isinstance(value, (int, float)):
                chosen.append(float(value))
        out["combined"] = float(np.mean(chosen)) if chosen else None
        out["n_examples"] = sum(len(p) for p in dataset.parts.values())
        return out

    def summary(self, metrics: dict[str, Any]) -> str:
        parts = [f"{n}: {t.summary(metrics[n])}" for n, t in self.subtasks.items() if n in metrics]
        return f"combined={metrics.get('combined')}; " + "; ".join(parts)

    def select(self, model: nn.Module, config: Any, name: str | None) -> tuple[Task, Any, Any]:
        """One head of a loaded multi-task run: (its task, its model, a config whose `task` and
        `data` are that task's), for `Predictor(run, task=NAME)`."""
        if name not in self.subtasks:
            raise ConfigError(
                f"This run is multi-task: pick a head with --task NAME (task=NAME); heads: "
                f"{', '.join(self.subtasks)}" + (f" (got '{name}')." if name else ".")
            )
        task = self.subtasks[name]
        sub_config = config.model_copy(update={"task": task.options, "data": task.data_cfg})
        return task, self.head(model, name), sub_config
