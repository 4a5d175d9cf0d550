"""The `tracking:` config section. `tracking: [tensorboard, mlflow]` is short for
`tracking: {backends: [tensorboard, mlflow]}`; TensorBoard alone is the default."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Backend = Literal["tensorboard", "mlflow", "wandb"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MlflowOptions(_Section):
    # None: MLflow's own default (MLFLOW_TRACKING_URI, else its local store in the working dir);
    # e.g. file:///abs/mlruns, sqlite:///mlflow.db, http://host:5000
    tracking_uri: str | None = None
    experiment: str | None = None  # None: `tracking.group`, else MLflow's Default experiment


class WandbOptions(_Section):
    project: str | None = None  # None: "tunewise"
    group: str | None = None  # None: `tracking.group`
    # offline needs no account (`wandb sync` uploads later); None: $WANDB_MODE, else offline
    mode: Literal["offline", "online", "disabled"] | None = None
    dir: str | None = None  # where wandb/ goes; None: inside the run directory


class TrackingConfig(_Section):
    backends: list[Backend] = Field(default_factory=lambda: ["tensorboard"])
    # One experiment (MLflow) / group (W&B) for related runs; sweeps and tune studies set it so
    # every entry / trial is a run in it.
    group: str | None = None
    run_name: str | None = None  # None: the run directory's name
    log_run_dir: bool = False  # upload the whole run directory as an artifact too
    mlflow: MlflowOptions = Field(default_factory=MlflowOptions)
    wandb: WandbOptions = Field(default_factory=WandbOptions)

    @model_validator(mode="before")
    @classmethod
    def _list_form(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = [data]
        if isinstance(data, list):
            return {"backends": data}
        return data
