"""The `tune:` config section: the search space (config key path → distribution), the metric and
direction, the pruner and how many trial run directories to keep."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Distribution(_Section):
    """One searched key: `{type: loguniform, low: 1e-5, high: 1e-3}`, `{type: int, low: 4,
    high: 32, step: 4}`, `{type: categorical, choices: [16, 32, 64]}`."""

    type: Literal["loguniform", "uniform", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    step: float | None = Field(None, gt=0)  # uniform / int only
    log: bool = False  # int only: sample on a log scale
    choices: list[Any] | None = None  # categorical only

    @model_validator(mode="after")
    def _complete(self) -> Distribution:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical distribution needs a non-empty 'choices' list")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} distribution needs 'low' and 'high'")
        if self.low > self.high:
            raise ValueError(f"'low' ({self.low}) is above 'high' ({self.high})")
        if (self.type == "loguniform" or self.log) and self.low <= 0:
            raise ValueError(f"a log-scale distribution needs 'low' > 0 (got {self.low})")
        return self


class TuneConfig(_Section):
    # config key path → distribution; None: the strategy's default space
    # (`Strategy.default_search_space()`: learning rate around its default, batch size, ...)
    space: dict[str, Distribution] | None = None
    metric: str | None = None  # validation metric to optimise; None: eval.metric or the task's
    direction: Literal["maximize", "minimize"] | None = None  # None: from the task's metric
    pruner: Literal["median", "successive_halving", "none"] = "median"
    startup_trials: int = Field(3, ge=0)  # trials that finish before the median pruner acts
    keep_best: int = Field(1, ge=0)  # trial run directories kept (best first); the rest go
    sampler_seed: int | None = None  # None: each worker samples differently (shared studies)
    enqueue: list[dict[str, Any]] = Field(default_factory=list)  # trials to run first (params)
