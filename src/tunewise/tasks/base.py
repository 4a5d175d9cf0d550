"""The Task interface: everything that differs between problem types lives behind it.

A task reads and validates its data, learns what it must from the training split (e.g. the
label set), builds its model head, tokenizes, computes metrics and decodes outputs into what a
user sees. The training recipe and the predictor only talk to this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch import nn

from tunewise.config import DataConfig, ModelConfig, SplitFile, TaskOptions


class Task(ABC):
    name: ClassVar[str]
    Options: ClassVar[type[TaskOptions]]
    default_metric: ClassVar[str]  # picks the best checkpoint unless eval.metric says otherwise
    greater_is_better: ClassVar[bool] = True
    head_modules: ClassVar[list[str]]

    def __init__(self, options: TaskOptions, data: DataConfig, model: ModelConfig) -> None:
        self.options = options
        self.data_cfg = data
        self.model_cfg = model

    # -- state learned from the training split, saved in the manifest ---------------------------
    @abstractmethod
    def state(self) -> dict[str, Any]: ...

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None: ...

    # -- data ------------------------------------------------------------------------------------
    @abstractmethod
    def read(self, spec: SplitFile, *, fit: bool = False, labelled: bool = True) -> Any:
        """Validated examples of one file as a `datasets.Dataset` (fit: learn state from it)."""

    @abstractmethod
    def tokenize(self, dataset: Any, tokenizer: Any) -> Any:
        """Model inputs (no padding) plus a `length` column for length-grouped batching."""

    @abstractmethod
    def collator(self, tokenizer: Any) -> Any: ...

    # -- model -----------------------------------------------------------------------------------
    @abstractmethod
    def build_model(self, backbone: nn.Module) -> nn.Module:
        """Backbone + this task's head; the head lives in `head_modules`."""

    # -- outputs ---------------------------------------------------------------------------------
    @abstractmethod
    def compute_metrics(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]: ...

    @abstractmethod
    def decode(self, logits: np.ndarray) -> list[dict[str, Any]]:
        """User-facing predictions, one dict per example."""

    def plots(self, metrics: dict[str, Any], out_dir: Path) -> dict[str, Path]:
        """Task-specific figures for the report (name → PNG path)."""
        return {}
