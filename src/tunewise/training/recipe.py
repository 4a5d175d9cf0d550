"""The fine-tuning recipe, top to bottom:
config → data → task → model + strategy → Trainer → evaluation → run directory.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunewise.artifacts import (
    MANIFEST,
    check_output_dir,
    package_versions,
    prepare_output_dir,
    save_trained,
    write_json,
)
from tunewise.config import Config, save_config
from tunewise.data.readers import fingerprint
from tunewise.data.run import prepare_for_run
from tunewise.evaluation.metrics import scalar_metrics
from tunewise.registry import TASKS
from tunewise.strategies.auto import resolve_auto
from tunewise.strategies.base import count_parameters
from tunewise.tasks.base import Task
from tunewise.training.batching import pack_batches


@dataclass
class RunResult:
    """What `finetune` returns: where the run lives and how well it did."""

    run_dir: Path
    metrics: dict[str, dict[str, Any]]
    manifest: dict[str, Any]

    def load(self) -> Any:
        from tunewise.serving.predictor import Predictor

        return Predictor(self.run_dir)


def _read_splits(cfg: Config, task: Task) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Train (fits the task's state), validation (or a held-out part of train), optional test."""
    splits, sources = {}, {}
    for name in ("train", "validation", "test"):
        spec = cfg.data.split(name)
        if spec is None:
            continue
        splits[name] = task.read(spec, fit=name == "train")
        sources[name] = {"path": spec.path, "sha256": fingerprint(spec.path)}
    if "validation" not in splits:
        parts = splits["train"].train_test_split(
            test_size=cfg.data.validation_fraction, seed=cfg.seed
        )
        splits["train"], splits["validation"] = parts["train"], parts["test"]
        sources["validation"] = {"held_out_from": "train", "fraction": cfg.data.validation_fraction}
    limits = {"train": cfg.training.max_train_samples, "validation": cfg.training.max_eval_samples}
    for name, limit in limits.items():
        if limit and len(splits[name]) > limit:
            splits[name] = splits[name].shuffle(seed=cfg.seed).select(range(limit))
    return splits, sources


def _planned_steps(cfg: Config, lengths: list[int]) -> int:
    t = cfg.training
    if t.max_steps:
        return t.max_steps
    batches = len(pack_batches(lengths, t.batch_size, t.max_tokens_per_batch))
    return max(1, int(np.ceil(batches / t.gradient_accumulation_steps * t.epochs)))


def finetune(cfg: Config, overwrite: bool = False, resume: bool = False) -> RunResult:
    """Run the whole recipe; the run directory is cleared (with overwrite) only once the config,
    data and model have loaded, so a run that fails early never costs the previous one."""
    import torch

    from tunewise.assemble import assemble

    run_dir = Path(cfg.output_dir)
    check_output_dir(run_dir, overwrite, resume)
    if cfg.training.num_threads:
        torch.set_num_threads(cfg.training.num_threads)

    # 1. data, read and validated by the task (which learns its labels from train)
    task: Task = TASKS.get(cfg.task.type)(cfg.task, cfg.data, cfg.model)
    prepared = prepare_for_run(cfg) if cfg.data else None  # data.prepare: clean/dedup/split
    if hasattr(task, "read_splits"):  # multi-task: every task's own files
        splits, sources = task.read_splits(cfg)
    else:
        splits, sources = _read_splits(prepared.config if prepared else cfg, task)
    # `strategy: auto` becomes the advisor's top choice for this data (recorded in the manifest)
    cfg, auto_choice = resolve_auto(cfg, len(splits["train"]), None)
    if cfg.distill:  # teacher run, task, labels and vocabulary checked before any model loads
        from tunewise.training import distill_setup

        distill_setup.check(cfg, task)
    # 2. base model + task head + strategy
    built = assemble(cfg, task)
    params = count_parameters(built.model)
    print(f"[tunewise] {cfg.strategy.name}: {params}")
    encoded = {name: task.tokenize(ds, built.tokenizer) for name, ds in splits.items()}
    before = {}
    if task.evaluate_before_training:
        before = _evaluate(
            cfg, task, built.model, built.tokenizer, splits, encoded, ("validation",), "before"
        )
    # 3. batch size (the config's or the task's default) and learning rate (the config's, or
    # the strategy's default for this many steps)
    if task.default_batch_size and "batch_size" not in cfg.training.model_fields_set:
        cfg.training.batch_size = task.default_batch_size
    steps = _planned_steps(cfg, encoded["train"]["length"])
    lr = cfg.training.learning_rate or built.strategy.default_learning_rate(steps)
    lr_source = (
        "config" if cfg.training.learning_rate else f"{cfg.strategy.name} default for {steps} steps"
    )
    # 4. train
    prepare_output_dir(run_dir, overwrite, resume)
    if prepared:
        prepared.copy_reports(run_dir)  # rejected.jsonl, data_report.md, prepare.json, ...
    trainer = _make_trainer(cfg, task, built.model, built.tokenizer, encoded, lr, run_dir)
    if cfg.distill:  # the teacher's term in compute_loss (its logits cached first if asked)
        trainer.distiller = distill_setup.make_distiller(cfg, trainer, run_dir / "checkpoints")
    for callback in built.strategy.callbacks():  # e.g. diff pruning's sparsity schedule
        trainer.add_callback(callback)
    checkpoints = Path(trainer.args.output_dir)
    has_checkpoint = checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*"))
    output = trainer.train(resume_from_checkpoint=True if resume and has_checkpoint else None)
    model = trainer.model  # the best epoch's weights when evaluating each epoch
    # 5. evaluate the final model with the same code path as `tunewise eval`
    metrics = _evaluate(cfg, task, model, built.tokenizer, splits, encoded)
    for name, values in before.items():  # e.g. validation.perplexity_before next to perplexity
        metrics[name].update(
            {f"{k}_before": v for k, v in scalar_metrics(values).items() if k != "n_examples"}
        )
    # 6. the run directory
    runtime = output.metrics.get("train_runtime", 0.0)
    training = {
        "learning_rate": lr,
        "learning_rate_source": lr_source,
        "epochs": cfg.training.epochs,
        "steps": int(output.global_step),
        "n_train": len(splits["train"]),
        "n_validation": len(splits["validation"]),
        "train_seconds": round(runtime, 2),
        "real_tokens": trainer.real_tokens_seen,
        "real_tokens_per_second": round(trainer.real_tokens_seen / max(runtime, 1e-9), 1),
        "final_train_loss": output.training_loss,
        "best_checkpoint_metric": cfg.eval.metric or task.default_metric,
    }
    weights = save_trained(model, run_dir)
    comparison = (  # student vs teacher: parameters, size, latency, metric
        distill_setup.compare(cfg, task, model, built.tokenizer, splits, encoded, metrics, weights)
        if cfg.distill
        else None
    )
    built.tokenizer.save_pretrained(run_dir / "tokenizer")
    save_config(cfg, run_dir / "config.yaml")
    write_json(run_dir / "metrics.json", metrics)
    manifest = {
        "tunewise_version": package_versions().get("tunewise", "dev"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "task": {"type": task.name, "state": task.state()},
        "strategy": {
            "name": built.strategy.name,
            "summary": built.strategy.summary,
            "options": cfg.strategy.model_dump(mode="json"),
            "details": built.strategy.details,
            "parameters": params.as_dict(),
            "saved_weights": weights,
            **({"auto": auto_choice} if auto_choice else {}),
        },
        "base_model": {
            "name": cfg.model.name,
            "resolved": built.source.path,
            "model_type": getattr(getattr(model, "config", None), "model_type", "unknown"),
        },
        "training": training,
        "metrics": metrics,
        "before_training": before,
        "data": {
            name: {
                **sources.get(name, {}),
                "n_examples": len(ds),
                "label_counts": task.label_counts(ds),
            }
            for name, ds in splits.items()
        },
        **({"prepared_data": prepared.manifest()} if prepared else {}),
        "config": cfg.to_dict(),
        "versions": package_versions(),
        **({"distillation": comparison} if comparison else {}),
    }
    _write_report(run_dir, task, trainer, manifest, metrics)
    if comparison:
        distill_setup.append_report(run_dir, comparison)
    write_json(run_dir / MANIFEST, manifest)  # last: its presence marks a finished run
    shutil.rmtree(checkpoints, ignore_errors=True)
    return RunResult(run_dir, metrics, manifest)


def _make_trainer(
    cfg: Config, task: Task, model: Any, tokenizer: Any, encoded: dict, lr: float, run_dir: Path
) -> Any:
    """The HF Trainer with tunewise's batching, compact log, TensorBoard and early stopping."""
    from transformers import EarlyStoppingCallback
    from transformers.integrations import TensorBoardCallback
    from transformers.trainer_callback import ProgressCallback

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

        callbacks.append(TensorBoardCallback(SummaryWriter(str(run_dir / "tensorboard"))))
    except ImportError:  # tensorboard is a dependency; tolerate a broken install
        pass
    if cfg.training.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(cfg.training.early_stopping_patience))
    compute_metrics = task.trainer_metrics()
    args = training_arguments(cfg, run_dir / "checkpoints", lr, metric, task.greater_is_better)
    # Loss-only evaluation never gathers logits: an LM's (examples, tokens, vocabulary) would not
    # fit in memory.
    args.prediction_loss_only = compute_metrics is None
    trainer = TunewiseTrainer(
        model=model,
        args=args,
        data_collator=task.collator(tokenizer),
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
        optimizer_cls_and_kwargs=adam_optimizer(cfg, lr),
        max_tokens_per_batch=cfg.training.max_tokens_per_batch,
        adversarial=cfg.training.adversarial,
    )
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(CompactProgress())
    return trainer


def _evaluate(
    cfg: Config,
    task: Task,
    model: Any,
    tokenizer: Any,
    splits: dict,
    encoded: dict,
    names: tuple[str, ...] = ("validation", "test"),
    when: str = "",
) -> dict[str, dict[str, Any]]:
    metrics: dict[str, dict[str, Any]] = {}
    for name in names:
        if name in encoded:
            metrics[name] = task.evaluate(
                model, tokenizer, splits[name], encoded[name], cfg.eval.batch_size
            )
            label = f"{name} ({when} training)" if when else name
            print(f"[tunewise] {label}: " + task.summary(metrics[name]))
    return metrics


def _write_report(run_dir: Path, task: Task, trainer: Any, manifest: dict, metrics: dict) -> None:
    from tunewise.evaluation.plots import loss_curve
    from tunewise.evaluation.report import write_report

    plots = {}
    curve = loss_curve(trainer.state.log_history, run_dir / "loss_curve.png")
    if curve:
        plots["loss curve"] = curve
    if "validation" in metrics:
        plots.update(task.plots(metrics["validation"], run_dir))
    write_report(run_dir, manifest, plots)
