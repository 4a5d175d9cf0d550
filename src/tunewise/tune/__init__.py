"""Hyperparameter search on Optuna: `tunewise tune` / `tunewise.api.tune`."""
