"""HF Trainer with tunewise's add-ons: length-grouped / token-budget batches and a count of the
real (non-pad) tokens trained on. Everything else — loop, optimizers, schedules, checkpoints,
early stopping, TensorBoard — is the Trainer's own, configured from `TrainingConfig`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import Trainer, TrainingArguments
from transformers.trainer_callback import ProgressCallback

from tunewise.config import Config
from tunewise.multitask.model import MultiTaskLogMixin
from tunewise.training import distributed
from tunewise.training.adversarial import AdversarialMixin
from tunewise.training.batching import LengthGroupedBatchSampler
from tunewise.training.distill import DistillMixin
from tunewise.training.precision import precision_arguments

# Fused AdamW: one kernel for the whole update. On this 2-core CPU it takes 11 ms per step for
# minilm's 22.7M parameters against 121 ms for torch's default multi-tensor version (~10% of a
# 2,048-token step).
OPTIMIZERS = {
    "adamw": "adamw_torch_fused",
    "adam": "adamw_torch_fused",  # replaced by torch.optim.Adam in adam_optimizer()
    "sgd": "sgd",
    "sgd_momentum": "sgd",
}


class TunewiseTrainer(AdversarialMixin, DistillMixin, MultiTaskLogMixin, Trainer):
    """Trainer whose dataloaders group examples by length (optionally under a token budget),
    whose loss may come from a task's loss module (e.g. causal LMs: answer positions only), and
    whose add-ons chosen from config hook in through mixins (adversarial training,
    distillation, per-task losses)."""

    def __init__(
        self,
        *args: Any,
        max_tokens_per_batch: int | None = None,
        length_grouping: str = "window",
        loss_module: Callable[..., torch.Tensor] | None = None,
        adversarial: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        from tunewise.tasks.heads import BackboneHead

        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        if isinstance(base, BackboneHead):
            # tunewise's heads take **kwargs but return a per-batch mean loss: the Trainer must
            # not rescale it by the number of processes as if it were a sum over
            # `num_items_in_batch` (under DDP the loss and gradients would double).
            self.model_accepts_loss_kwargs = False
        self.max_tokens_per_batch = max_tokens_per_batch
        self.length_grouping = length_grouping
        self.loss_module = loss_module
        # loss tokens per optimizer step over the epoch (all processes), which a loss module's
        # summed loss is divided by in place of the step's own count; None: the step's count
        self.loss_tokens_per_step: float | None = None
        self.adversarial = adversarial
        self.real_tokens_seen = 0
        # Totals of the steps before a resume (from the checkpoint's seal), so the manifest
        # reports the whole run as an uninterrupted one would.
        self.prior = {"real_tokens": 0, "loss_sum": 0.0, "seconds": 0.0}
        self.session_start = time.time()

    def resume_totals(self, totals: dict[str, Any]) -> None:
        self.prior = {**self.prior, **totals}
        self.real_tokens_seen = int(self.prior["real_tokens"])

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        """The Trainer's checkpoint, then its seal (see `training.checkpoints`)."""
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        from tunewise.training.checkpoints import seal

        super()._save_checkpoint(model, trial)
        path = (
            Path(self._get_output_dir(trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        )
        if path.is_dir():
            seal(path, self.totals())

    def totals(self) -> dict[str, Any]:
        """Real tokens, summed loss and seconds of the whole run up to now."""
        session_loss = getattr(self, "_total_loss_scalar", 0.0)
        pending = getattr(self, "_tr_loss", None)
        if pending is not None:
            session_loss += float(pending.item())
        return {
            "step": int(self.state.global_step),
            "real_tokens": self.real_tokens_seen,
            "loss_sum": self.prior["loss_sum"] + session_loss,
            "seconds": self.prior["seconds"] + time.time() - self.session_start,
        }

    def run_summary(self, output: Any) -> dict[str, Any]:
        """Loss, tokens and seconds over the whole run (all sessions of a resumed one)."""
        if not self.prior.get("step"):
            return {
                "final_train_loss": output.training_loss,
                "seconds": output.metrics.get("train_runtime", 0.0),
            }
        steps = max(int(output.global_step), 1)
        session_steps = int(output.global_step) - int(self.prior.get("step", 0))
        loss_sum = self.prior["loss_sum"] + output.training_loss * session_steps
        seconds = self.prior["seconds"] + output.metrics.get("train_runtime", 0.0)
        return {"final_train_loss": loss_sum / steps, "seconds": seconds}

    def _loader(self, dataset: Any, batch_size: int, training: bool) -> DataLoader:
        if hasattr(dataset, "loader"):  # multi-task: batches of one task each, drawn by scheme
            return self.accelerator.prepare(dataset.loader(self, batch_size, training))
        if distributed.world_size() > 1:
            return self._distributed_loader(dataset, batch_size, training)
        lengths = dataset["length"]
        dataset = self._remove_unused_columns(
            dataset, description="training" if training else "eval"
        )
        sampler = LengthGroupedBatchSampler(
            lengths,
            batch_size,
            self.max_tokens_per_batch if training else None,
            shuffle=training,
            seed=self.args.seed,
            grouping=self.length_grouping,
        )
        loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
        )
        return self.accelerator.prepare(loader)

    def _distributed_loader(self, dataset: Any, batch_size: int, training: bool) -> DataLoader:
        """Under torchrun / accelerate launch: training batches come from the rank-sharded
        sampler (every example once per epoch across ranks), wrapped by accelerate without a
        second sharding; evaluation takes the Trainer's own sharded loader, whose
        gather_for_metrics gives metrics over the whole eval set."""
        if not training:
            return Trainer.get_eval_dataloader(self, dataset)
        from accelerate.data_loader import DataLoaderShard

        sampler = LengthGroupedBatchSampler(
            dataset["length"],
            batch_size,
            self.max_tokens_per_batch,
            shuffle=True,
            seed=self.args.seed,
            num_replicas=distributed.world_size(),
            rank=distributed.rank(),
            grouping=self.length_grouping,
        )
        dataset = self._remove_unused_columns(dataset, description="training")
        return DataLoaderShard(
            dataset,
            device=self.args.device,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
        )

    def get_train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, self._train_batch_size, training=True)

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader:
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        return self._loader(dataset, self.args.eval_batch_size, training=False)

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        if model.training and not self._adv_pass:  # an adversarial pass re-reads the batch
            self.real_tokens_seen += real_tokens(inputs)
        if self.loss_module is None or (return_outputs and not self.args.prediction_loss_only):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if self.loss_tokens_per_step and num_items_in_batch is not None:  # a training step
            per_process = not self.args.average_tokens_across_devices  # as Trainer counts
            share = self.accelerator.num_processes if per_process else 1
            num_items_in_batch = self.loss_tokens_per_step / share
        loss = self.loss_module(model, inputs, num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # as Trainer does for a model's own loss
        return (loss, {"loss": loss}) if return_outputs else loss


def real_tokens(inputs: dict[str, Any]) -> int:
    """Non-pad tokens of a batch: the attention mask's ones, or every token of a packed row
    (packed batches carry position ids and no mask)."""
    if inputs.get("attention_mask") is not None:
        return int(inputs["attention_mask"].sum())
    ids = inputs.get("input_ids")
    return int(ids.numel()) if ids is not None else 0


class CompactProgress(ProgressCallback):
    """Trainer's progress bar (rate, ETA), with one short line per log instead of a dict dump."""

    SHOWN = ("loss", "learning_rate", "grad_norm")

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or self.training_bar is None or not logs:
            return
        if any(k.startswith("eval_") for k in logs):
            shown = {
                k[5:]: v
                for k, v in logs.items()
                if k.startswith("eval_") and not k.endswith(("_per_second", "runtime"))
            }
            head = f"eval @ epoch {state.epoch:.2g}"
        elif "loss" in logs:
            shown = {k: logs[k] for k in self.SHOWN if k in logs}
            head = f"step {state.global_step}/{state.max_steps}"
        else:
            return
        body = "  ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()
        )
        self.training_bar.write(f"{head}: {body}")


def training_arguments(
    cfg: Config,
    checkpoint_dir: Path,
    learning_rate: float,
    metric: str,
    greater_is_better: bool,
) -> TrainingArguments:
    """Map tunewise's config onto TrainingArguments (transformers 5 names)."""
    from tunewise.tracking.run import report_to

    t = cfg.training
    strategy = "epoch" if cfg.eval.each_epoch else "no"
    optim_args = f"momentum={t.momentum}" if t.optimizer == "sgd_momentum" else None
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps or -1,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=cfg.eval.batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=learning_rate,
        weight_decay=t.weight_decay,
        optim=OPTIMIZERS[t.optimizer],
        optim_args=optim_args,
        lr_scheduler_type=t.scheduler if t.scheduler != "constant" else "constant_with_warmup",
        warmup_steps=t.warmup if t.warmup < 1 else int(t.warmup),
        max_grad_norm=t.max_grad_norm,
        eval_strategy=strategy,
        save_strategy=strategy,
        save_total_limit=2,
        load_best_model_at_end=strategy != "no",
        metric_for_best_model=metric if strategy != "no" else None,
        greater_is_better=greater_is_better,
        logging_strategy="steps",
        logging_steps=t.logging_steps,
        # TensorBoard is attached explicitly with the run's own log dir; MLflow / W&B here
        report_to=report_to(cfg) or "none",
        **precision_arguments(t.precision, use_cpu=not torch.cuda.is_available()),
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
        remove_unused_columns=True,
        disable_tqdm=False,
        use_cpu=not torch.cuda.is_available(),
    )


def adam_optimizer(
    cfg: Config, learning_rate: float
) -> tuple[type[torch.optim.Optimizer], dict[str, Any]] | None:
    """Plain Adam (L2 through weight decay) is not among Trainer's names; pass it as a class.

    Trainer uses these kwargs as given (it adds no learning rate), so the rate goes in here.
    """
    if cfg.training.optimizer != "adam":
        return None
    return torch.optim.Adam, {
        "lr": learning_rate,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "fused": True,
    }


def close_writers(trainer: Any) -> None:
    """Flush and stop TensorBoard's writer thread (the Trainer only does so on success)."""
    for callback in trainer.callback_handler.callbacks:
        writer = getattr(callback, "tb_writer", None)
        if writer is not None:
            writer.close()


def check_metric(cfg: Config, task: Any, trainer: Any, validation: Any) -> None:
    """eval.metric must be one the task reports while training (checked on a few validation
    examples before training starts, not after the first epoch)."""
    from tunewise.errors import ConfigError, did_you_mean

    metric = cfg.eval.metric
    if not metric or not cfg.eval.each_epoch:
        return
    if trainer.compute_metrics is None:
        names = ["loss"]
    else:
        sample = validation.select(range(min(4, len(validation))))
        found = trainer.predict(sample).metrics
        names = [k.removeprefix("test_") for k in found if not k.endswith(("_second", "runtime"))]
    if metric.removeprefix("eval_") not in names:
        raise ConfigError(
            f"eval.metric '{metric}' is not a metric task '{task.name}' reports during training"
            f"{did_you_mean(metric, names)}; it reports: {', '.join(sorted(names))}."
        )
