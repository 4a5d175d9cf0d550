"""Name → implementation registries for tasks and strategies.

Adding a task or a strategy is one new module plus one line in the table below. Entries are
"module:attribute" strings imported on first use, so the CLI starts without importing torch.
A config may also name a class of the user's own by its dotted path, `mypkg.mod:MyTask`
(`task: {type: mypkg.mod:MyTask}`, `strategy: {name: mypkg.mod:MyStrategy}`), with no
registration at all (see docs/extending.md).
"""

from __future__ import annotations

import importlib
from typing import Any, Generic, TypeVar

from tunewise.errors import ConfigError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """A lazily importing table of named implementations."""

    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self._entries = dict(entries)
        self._loaded: dict[str, Any] = {}

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def register(self, name: str, target: str | Any) -> None:
        """Add an entry at run time (plugins, tests): a "module:attribute" string or the class."""
        self._entries[name] = target if isinstance(target, str) else f"<{name}>"
        self._loaded.pop(name, None)
        if not isinstance(target, str):
            self._loaded[name] = target

    def get(self, name: str) -> T:
        if name not in self._entries and ":" not in name:
            raise ConfigError(
                f"Unknown {self.kind} '{name}'{did_you_mean(name, self._entries)}. "
                f"Known {self.kind}s: {', '.join(self._entries)}, or a class of your own as "
                "'package.module:ClassName'."
            )
        if name not in self._loaded:
            self._loaded[name] = self._import(self._entries.get(name, name))
        return self._loaded[name]

    def _import(self, target: str) -> Any:
        """The attribute a "package.module:Attribute" path names (a ConfigError if it can't)."""
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(
                f"{self.kind} '{target}': cannot import module '{module_name}' ({exc}); is it "
                "installed or on PYTHONPATH?"
            ) from None
        if not attr or not hasattr(module, attr):
            raise ConfigError(
                f"{self.kind} '{target}': module '{module_name}' has no attribute '{attr}' "
                "(write it as 'package.module:ClassName')."
            )
        return getattr(module, attr)


TASKS: Registry[Any] = Registry(
    "task",
    {
        "classification": "tunewise.tasks.classification:ClassificationTask",
        "token_classification": "tunewise.tasks.token_classification:TokenClassificationTask",
        "extractive_qa": "tunewise.tasks.extractive_qa:ExtractiveQATask",
        "multiple_choice": "tunewise.tasks.multiple_choice:MultipleChoiceTask",
        "continued_pretraining": "tunewise.tasks.continued_pretraining:ContinuedPretrainingTask",
        "instruction": "tunewise.tasks.generation.instruction:InstructionTask",
        "chat": "tunewise.tasks.generation.chat:ChatTask",
        "generative_qa": "tunewise.tasks.generation.qa:GenerativeQATask",
        "summarization": "tunewise.tasks.generation.summarization:SummarizationTask",
        "translation": "tunewise.tasks.generation.translation:TranslationTask",
        "preference": "tunewise.tasks.preference.task:PreferenceTask",
        "multitask": "tunewise.multitask.task:MultiTask",  # config `tasks:` (several heads)
    },
)

STRATEGIES: Registry[Any] = Registry(
    "strategy",
    {
        "full": "tunewise.strategies.full:FullStrategy",
        "partial": "tunewise.strategies.partial:PartialStrategy",
        "frozen": "tunewise.strategies.frozen:FrozenStrategy",
        "lora": "tunewise.strategies.lora:LoraStrategy",
        "lora_fa": "tunewise.strategies.lora_fa:LoraFAStrategy",
        "bitfit": "tunewise.strategies.bitfit:BitFitStrategy",
        "ia3": "tunewise.strategies.ia3:IA3Strategy",
        "adapter": "tunewise.strategies.adapter:AdapterStrategy",
        "prompt_tuning": "tunewise.strategies.prompt_tuning:PromptTuningStrategy",
        "prefix_tuning": "tunewise.strategies.prefix_tuning:PrefixTuningStrategy",
        "p_tuning": "tunewise.strategies.p_tuning:PTuningStrategy",
        "diff_pruning": "tunewise.strategies.diff_pruning:DiffPruningStrategy",
        "qlora": "tunewise.strategies.qlora:QLoraStrategy",
        "auto": "tunewise.strategies.auto:AutoStrategy",  # the advisor's top choice
    },
)
