"""Reports each intermediate evaluation to the Optuna trial and stops the trial when the pruner
says so. Hand-written: Optuna's own Trainer integration lives in the separate optuna-integration
package; this is the whole of it (trial.report + should_prune on every evaluation)."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback


class PruningReporter(TrainerCallback):
    def __init__(self, trial: Any, metric: str) -> None:
        self.trial = trial
        self.key = f"eval_{metric}"
        self.step = 0  # evaluations so far: comparable across trials of any batch size

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any
    ) -> None:
        import optuna

        value = (metrics or {}).get(self.key)
        if not isinstance(value, (int, float)):
            return  # the Trainer's evaluation lacks this metric (e.g. generated-text metrics)
        self.step += 1
        self.trial.report(float(value), self.step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(
                f"pruned after evaluation {self.step} ({self.key[5:]} = {value:.4g})"
            )
