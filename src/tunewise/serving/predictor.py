"""Load a run directory and predict or evaluate with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tunewise.artifacts import load_trained, read_manifest
from tunewise.config import SplitFile, validate_config
from tunewise.registry import TASKS
from tunewise.tasks.base import Task


class Predictor:
    """A trained model ready for inference: everything is rebuilt from the run's manifest."""

    def __init__(self, run_dir: str | Path, device: str | None = None) -> None:
        import torch
        from transformers import AutoTokenizer

        from tunewise.assemble import assemble

        self.run_dir = Path(run_dir)
        self.manifest = read_manifest(self.run_dir)
        self.config = validate_config(self.manifest["config"], str(self.run_dir / "tunewise.json"))
        self.task: Task = TASKS.get(self.config.task.type)(
            self.config.task, self.config.data, self.config.model
        )
        self.task.load_state(self.manifest["task"]["state"])
        tokenizer = AutoTokenizer.from_pretrained(self.run_dir / "tokenizer")
        built = assemble(self.config, self.task, tokenizer=tokenizer)
        load_trained(built.model, self.run_dir)
        self.model = built.model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.eval()
        self.tokenizer = built.tokenizer
        self.collator = self.task.collator(self.tokenizer)

    def _logits(self, dataset: Any, batch_size: int, progress: bool) -> np.ndarray:
        from tunewise.evaluation.inference import predict_logits

        encoded = self.task.tokenize(dataset, self.tokenizer)
        return predict_logits(self.model, encoded, self.collator, batch_size, progress)

    def predict(
        self, inputs: list[str] | list[dict[str, Any]], batch_size: int = 64, progress: bool = False
    ) -> list[dict[str, Any]]:
        """Predictions for raw texts (or records with the config's text columns), in order."""
        from datasets import Dataset

        if not inputs:
            return []
        records = inputs if isinstance(inputs[0], dict) else [{"text": t} for t in inputs]
        columns: dict[str, list[Any]] = {"text": [r["text"] for r in records]}
        if "text_pair" in records[0]:
            columns["text_pair"] = [r["text_pair"] for r in records]
        logits = self._logits(Dataset.from_dict(columns), batch_size, progress)
        return self.task.decode(logits)

    def read(self, path: str | Path, labelled: bool = True, fmt: str | None = None) -> Any:
        """A file read with the run's column settings (as for its validation split)."""
        base = self.config.data.split("validation") or self.config.data.split("train")
        assert base is not None
        columns = [base.text_column] if isinstance(base.text_column, str) else base.text_column
        text_columns = list(dict.fromkeys([*(columns or []), "text"]))  # `text` always works
        spec = SplitFile(
            **{**base.model_dump(), "path": str(path), "format": fmt or "auto"},
        ).model_copy(update={"text_column": text_columns})
        return self.task.read(spec, labelled=labelled)

    def evaluate(
        self, path: str | Path, batch_size: int = 64, progress: bool = True
    ) -> dict[str, Any]:
        """The task's metrics on a labelled file."""
        dataset = self.read(path)
        logits = self._logits(dataset, batch_size, progress)
        return self.task.compute_metrics(logits, np.asarray(dataset["label"]))
