"""The HF Trainer a run trains with: tunewise's batching and loss, the compact log, TensorBoard,
early stopping, step checkpoints, progress.json and heap trimming as callbacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunewise.config import Config
from tunewise.tasks.base import Task
from tunewise.training import distributed
from tunewise.training.plan import length_grouping


def make_trainer(
    cfg: Config, task: Task, model: Any, tokenizer: Any, encoded: dict, lr: float, run_dir: Path
) -> Any:
    """The HF Trainer with tunewise's batching, compact log, TensorBoard and early stopping."""
    from transformers import EarlyStoppingCallback
    from transformers.integrations import TensorBoardCallback
    from transformers.trainer_callback import ProgressCallback

    from tunewise.training.checkpoints import SaveEverySteps
    from tunewise.training.heap import TrimHeap
    from tunewise.training.progress import PROGRESS, ProgressFile
    from tunewise.training.trainer import (
        CompactProgress,
        TunewiseTrainer,
        adam_optimizer,
        training_arguments,
    )

    metric = cfg.eval.metric or task.default_metric
    callbacks: list[Any] = []
    try:
        from torch.utils.tensorboard import SummaryWriter

        if "tensorboard" in cfg.tracking.backends and distributed.is_main_process():
            callbacks.append(TensorBoardCallback(SummaryWriter(str(run_dir / "tensorboard"))))
    except ImportError:  # tensorboard is a dependency; tolerate a broken install
        pass
    if cfg.training.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(cfg.training.early_stopping_patience))
    if cfg.training.save_steps:
        callbacks.append(SaveEverySteps(cfg.training.save_steps))
    callbacks.append(ProgressFile(run_dir / PROGRESS))  # progress.json, for watchers (ui)
    callbacks.append(TrimHeap())  # freed activations back to the system before evaluating
    compute_metrics = task.trainer_metrics()
    args = training_arguments(cfg, run_dir / "checkpoints", lr, metric, task.greater_is_better)
    # Loss-only evaluation never gathers logits: an LM's (examples, tokens, vocabulary) would not
    # fit in memory.
    args.prediction_loss_only = compute_metrics is None
    trainer = TunewiseTrainer(
        model=model,
        args=args,
        data_collator=(
            task.packed_collator(tokenizer) if cfg.training.packing else task.collator(tokenizer)
        ),
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
        optimizer_cls_and_kwargs=adam_optimizer(cfg, lr),
        max_tokens_per_batch=cfg.training.max_tokens_per_batch,
        length_grouping=length_grouping(cfg, task),
        # distillation needs the model's logits; other runs may use the task's own loss
        loss_module=None if cfg.distill else task.loss_module(model),
        adversarial=cfg.training.adversarial,
    )
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(CompactProgress())
    return trainer
