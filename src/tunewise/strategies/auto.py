"""`strategy: auto`: let the advisor pick (see advisor/). The choice is made in the recipe once
the training data is read (its size matters), the config is rewritten to the chosen strategy
with its own defaults, and the manifest records the ranking and the reasons."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import Config, StrategyOptions
from tunewise.errors import ConfigError
from tunewise.strategies.base import Strategy


class AutoOptions(StrategyOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["auto"] = "auto"
    memory_gb: float | None = Field(None, gt=0)  # training memory budget; None: this machine's RAM
    time_budget_s: float | None = Field(None, gt=0)  # per epoch
    candidates: list[str] | None = None  # restrict the choice; None: every compatible strategy


class AutoStrategy(Strategy):
    name = "auto"
    Options = AutoOptions
    summary = "the advisor's top choice for this task, data size, model and memory"
    base_learning_rate = 1e-4  # never used: replaced by the chosen strategy

    def apply(self, model: nn.Module, head_modules: list[str]) -> nn.Module:
        raise ConfigError(
            "strategy 'auto' must be resolved before the model is assembled "
            "(tunewise.strategies.auto.resolve_auto); the training recipe does this."
        )


def machine_memory_gb() -> float:
    """Physical memory of this machine (GB), for budgets left unset."""
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9


def resolve_auto(cfg: Config, n_train: int, avg_tokens: float | None) -> tuple[Config, dict]:
    """The config with `strategy: auto` replaced by the advisor's top choice, and a record of
    the decision for the manifest. Configs naming a real strategy come back unchanged."""
    if cfg.strategy.name != "auto":
        return cfg, {}
    from tunewise.advisor.rank import Scenario, recommend
    from tunewise.config import validate_config

    options: Any = cfg.strategy
    ranking = recommend(
        Scenario(
            task=cfg.task.type,
            train_size=n_train,
            model=cfg.model.name,
            memory_gb=options.memory_gb or machine_memory_gb(),
            time_budget_s=options.time_budget_s,
            avg_tokens=avg_tokens,
            max_length=cfg.model.max_length,
            epochs=cfg.training.epochs,
            batch_size=cfg.training.batch_size,
        ),
        candidates=options.candidates,
    )
    fitting = [r for r in ranking if r.get("fits", True)]
    if not fitting:
        raise ConfigError(
            "strategy 'auto': no strategy fits the memory / time budget "
            f"(closest: {ranking[0]['strategy']}, {ranking[0]['est_peak_memory_gb']} GB)."
        )
    choice = fitting[0]
    raw = cfg.to_dict()
    raw["strategy"] = {"name": choice["strategy"]}
    resolved = validate_config(raw, "strategy: auto")
    record = {
        "chosen": choice["strategy"],
        "reasons": choice["reasons"],
        "ranking": [
            {k: r[k] for k in ("strategy", "score", "est_peak_memory_gb", "est_epoch_seconds")}
            for r in ranking
        ],
    }
    print(f"[tunewise] strategy auto → {choice['strategy']}: {'; '.join(choice['reasons'][:3])}")
    return resolved, record
