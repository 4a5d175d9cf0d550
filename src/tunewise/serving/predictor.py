"""Load a run directory and predict or evaluate with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunewise.artifacts import load_trained, read_manifest
from tunewise.config import Config, SplitFile, validate_config
from tunewise.errors import TunewiseError
from tunewise.registry import TASKS
from tunewise.tasks.base import Task
from tunewise.training.init_from import verify_recorded


def check_remote_code(run_dir: Path, config: Config, trusted: bool) -> None:
    """A run directory is data that people share: its manifest alone never switches on
    `trust_remote_code` (which runs Python code from the model folder); the user must."""
    if config.model.trust_remote_code and not trusted:
        raise TunewiseError(
            f"Run '{run_dir}' sets model.trust_remote_code: true, so loading it would execute "
            f"Python code shipped with its model ('{config.model.name}'). A run directory can "
            "come from anyone, so tunewise does not do that on the manifest's say-so; if you "
            "trust the run and its model, pass --trust-remote-code (or trust_remote_code=True)."
        )


def load_run_tokenizer(run_dir: Path, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    path = run_dir / "tokenizer"
    if not path.is_dir():
        raise TunewiseError(
            f"Run '{run_dir}' has no tokenizer/ directory (the tokenizer the model was trained "
            "with); copy the run again, or retrain it."
        )
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise TunewiseError(
            f"Run '{run_dir}': the tokenizer in {path} cannot be loaded ({exc}); copy the run "
            "again, or retrain it."
        ) from None


class Predictor:
    """A trained model ready for inference: everything is rebuilt from the run's manifest."""

    def __init__(
        self,
        run_dir: str | Path,
        device: str | None = None,
        trust_remote_code: bool = False,
        task: str | None = None,
    ) -> None:
        import torch

        from tunewise.assemble import assemble

        self.run_dir = Path(run_dir)
        self.manifest = read_manifest(self.run_dir)
        verify_recorded(self.manifest)  # a run trained from another (init_from) needs it intact
        self.config = validate_config(self.manifest["config"], str(self.run_dir / "tunewise.json"))
        check_remote_code(self.run_dir, self.config, trust_remote_code)
        self.task: Task = TASKS.get(self.config.task.type)(
            self.config.task, self.config.data, self.config.model
        )
        try:
            self.task.load_state(self.manifest["task"]["state"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TunewiseError(
                f"{self.run_dir / 'tunewise.json'}: the task state is incomplete ({exc!r})."
            ) from None
        if task is not None and not hasattr(self.task, "select") and task != self.task.name:
            from tunewise.errors import ConfigError

            raise ConfigError(
                f"Run '{self.run_dir}' trained one task ({self.task.name}); a task name picks "
                f"a head of a multi-task run only (got '{task}')."
            )
        tokenizer = load_run_tokenizer(self.run_dir, self.config.model.trust_remote_code)
        built = assemble(self.config, self.task, tokenizer=tokenizer)
        load_trained(built.model, self.run_dir)
        self.model = built.model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.eval()
        self.tokenizer = built.tokenizer
        if hasattr(self.task, "select"):  # a multi-task run: serve the head named `task`
            self.task, self.model, self.config = self.task.select(self.model, self.config, task)

    @classmethod
    def from_base(
        cls,
        model: str,
        task: str,
        overrides: list[str] | None = None,
        device: str | None = None,
    ) -> Predictor:
        """A base model with no fine-tuning, for tasks whose model needs no new head (language
        modelling and generation): its scores are the "before" figure of a fine-tune."""
        import torch

        from tunewise.assemble import load_base
        from tunewise.config import load_config
        from tunewise.errors import ConfigError

        raw = {"model": {"name": model}, "task": {"type": task}, "data": {"train": "-"}}
        config = load_config({**raw, "strategy": {"name": "full"}}, overrides)
        self = cls.__new__(cls)
        self.run_dir, self.manifest, self.config = None, {}, config
        self.task = TASKS.get(config.task.type)(config.task, config.data, config.model)
        if self.task.head_modules:
            raise ConfigError(
                f"Task '{task}' adds a new head ({', '.join(self.task.head_modules)}) that only "
                "training gives meaning to; a base model can be scored for generation tasks."
            )
        _, self.tokenizer, backbone = load_base(config, self.task.auto_model)
        built = self.task.build_model(backbone)
        self.model = built.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.eval()
        return self

    def stream(self, text: str | dict[str, Any]) -> dict[str, Any]:
        """Generate for one input, printing the tokens to stdout as they come (generation
        tasks); returns the prediction."""
        from transformers import TextStreamer

        dataset = self.task.records_to_dataset([text])
        streamer = TextStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        generated = self.task.generate(self.model, self.tokenizer, dataset, 1, streamer=streamer)
        return {"generated_text": generated[0]}

    def predict(
        self, inputs: list[str] | list[dict[str, Any]], batch_size: int = 64, progress: bool = False
    ) -> list[dict[str, Any]]:
        """Predictions for raw texts (or records with the task's input fields), in order."""
        if not inputs:
            return []
        return self.task.predict_records(self.model, self.tokenizer, inputs, batch_size, progress)

    def read(
        self,
        path: str | Path,
        labelled: bool = True,
        fmt: str | None = None,
        text_column: str | None = None,
    ) -> Any:
        """A file read with the run's column settings (as for its validation split);
        `text_column` names the field holding the text when the file's differs."""
        from tunewise.errors import DataError

        base = self.config.data.split("validation") or self.config.data.split("train")
        assert base is not None
        columns = [base.text_column] if isinstance(base.text_column, str) else base.text_column
        text_columns = list(dict.fromkeys([*(columns or []), "text"]))  # `text` always works
        if text_column:
            text_columns = [text_column]
        spec = SplitFile(
            **{**base.model_dump(), "path": str(path), "format": fmt or "auto"},
        ).model_copy(update={"text_column": text_columns})
        try:
            return self.task.read(spec, labelled=labelled)
        except DataError as exc:
            message = str(exc)
            if " Set data." not in message:
                raise
            # The task's hint names config keys, which a finished run's reader cannot take.
            raise DataError(
                message.split(" Set data.")[0] + " Give the field that holds the text with "
                "--text-column NAME (API: text_column=NAME), or add a 'text' field to the file."
            ) from None

    def evaluate(
        self, path: str | Path, batch_size: int = 64, progress: bool = True
    ) -> dict[str, Any]:
        """The task's metrics on a labelled file."""
        dataset = self.read(path)
        return self.task.evaluate(
            self.model, self.tokenizer, dataset, batch_size=batch_size, progress=progress
        )
