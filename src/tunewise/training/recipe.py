"""The fine-tuning recipe, top to bottom:
config → data → task → model + strategy → Trainer → evaluation → run directory.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tunewise.artifacts import MANIFEST, package_versions, save_trained, write_json
from tunewise.config import Config, save_config
from tunewise.data.readers import fingerprint
from tunewise.data.run import prepare_for_run
from tunewise.evaluation.metrics import scalar_metrics
from tunewise.registry import TASKS
from tunewise.strategies.auto import resolve_auto
from tunewise.strategies.base import count_parameters
from tunewise.tasks.base import Task
from tunewise.training import distributed, init_from
from tunewise.training.build_trainer import make_trainer
from tunewise.training.fast_dropout import fast_dropout
from tunewise.training.lean_mlp import recompute_mlp
from tunewise.training.plan import (
    length_grouping,
    loss_tokens_per_step,
    planned_steps,
    small_data_batch,
    steps_per_epoch,
)
from tunewise.training.rundir import StagedRun, rank_run
from tunewise.training.trainer import check_metric, close_writers


@dataclass
class RunResult:
    """What `finetune` returns: where the run lives and how well it did."""

    run_dir: Path
    metrics: dict[str, dict[str, Any]]
    manifest: dict[str, Any]

    def load(self) -> Any:
        from tunewise.serving.predictor import Predictor

        # The config was the caller's own, in this process: its trust_remote_code stands.
        trusted = bool(self.manifest.get("config", {}).get("model", {}).get("trust_remote_code"))
        return Predictor(self.run_dir, trust_remote_code=trusted)


def _read_splits(
    cfg: Config, task: Task, fit: bool = True
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Train (fits the task's state), validation (or a held-out part of train), optional test."""
    splits, sources = {}, {}
    for name in ("train", "validation", "test"):
        spec = cfg.data.split(name)
        if spec is None:
            continue
        splits[name] = task.read(spec, fit=fit and name == "train")
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


def finetune(
    cfg: Config, overwrite: bool = False, resume: bool = False, callbacks: list[Any] | None = None
) -> RunResult:
    """Run the whole recipe under a lock on output_dir, writing into a work directory that
    replaces output_dir only once the run has finished (`training.rundir`): a run that fails at
    any point never costs the previous one. Under torchrun only rank 0 stages, locks and writes.
    `callbacks`: extra Trainer callbacks (e.g. `tunewise tune`'s pruning reporter)."""
    import torch

    from tunewise.training.precision import precision_arguments

    precision_arguments(cfg.training.precision, use_cpu=not torch.cuda.is_available())  # fp16/CPU
    init_from.validate(cfg)  # the parent run exists, finished, same base model
    if cfg.training.num_threads:
        torch.set_num_threads(cfg.training.num_threads)
    with rank_run(cfg, overwrite, resume) as run:
        task: Task = TASKS.get(cfg.task.type)(cfg.task, cfg.data, cfg.model)
        prepared = prepare_for_run(cfg) if cfg.data else None  # data.prepare: clean/dedup/split
        try:
            return _train(cfg, task, prepared, run, callbacks)
        finally:
            if prepared:
                prepared.cleanup()  # the temporary copy of the data goes on every exit path


def _train(
    cfg: Config, task: Task, prepared: Any, run: StagedRun, callbacks: list[Any] | None = None
) -> RunResult:
    from tunewise.assemble import assemble

    run_dir = run.work
    # 1. data, read and validated by the task (which learns its labels from train)
    if hasattr(task, "read_splits"):  # multi-task: every task's own files
        splits, sources = task.read_splits(cfg)
    else:
        read = partial(_read_splits, prepared.config if prepared else cfg, task)
        splits, sources = init_from.read_splits(cfg, task, read)  # continuing: parent's labels
    # `strategy: auto` becomes the advisor's top choice for this data (recorded in the manifest)
    cfg, auto_choice = resolve_auto(cfg, len(splits["train"]), None)
    transfer = None  # distill.transfer's unlabelled inputs, read before any model loads
    if cfg.distill:  # teacher run, task, labels and vocabulary checked before any model loads
        from tunewise.training import distill_setup, distill_transfer

        distill_setup.check(cfg, task)
        transfer = distill_transfer.read(cfg, task)
    # 2. base model + task head + strategy
    built = assemble(cfg, task)
    if cfg.training.gradient_checkpointing:
        from tunewise.training.precision import enable_gradient_checkpointing

        enable_gradient_checkpointing(built.model)
    params = count_parameters(built.model)
    print(f"[tunewise] {cfg.strategy.name}: {params}")
    encoded = {name: task.tokenize(ds, built.tokenizer) for name, ds in splits.items()}
    if transfer is not None:  # the student learns these from the teacher alone (KD term)
        encoded["train"] = distill_transfer.append(
            task, built.tokenizer, encoded["train"], transfer
        )
    before = {}
    if task.evaluate_before_training:
        before = _evaluate(
            cfg, task, built.model, built.tokenizer, splits, encoded, ("validation",), "before"
        )
    # 3. batch size (the config's or the task's default) and learning rate (the config's, or
    # the strategy's default for this many steps)
    if task.default_batch_size and "batch_size" not in cfg.training.model_fields_set:
        cfg.training.batch_size = task.default_batch_size
    small_data_batch(cfg, len(encoded["train"]))
    per_epoch = steps_per_epoch(cfg, encoded["train"]["length"], length_grouping(cfg, task))
    steps = planned_steps(cfg, per_epoch)
    lr = cfg.training.learning_rate or built.strategy.default_learning_rate(steps)
    lr_source = (
        "config" if cfg.training.learning_rate else f"{cfg.strategy.name} default for {steps} steps"
    )
    # 4. train (in the work directory; a resumed run from its newest good checkpoint)
    main = distributed.is_main_process()  # only rank 0 writes the run directory
    if main:
        run.begin(cfg)
    distributed.barrier()
    from tunewise.tracking.run import Tracker

    tracker = Tracker(cfg, run_dir, name=run.final.name).start({"tunewise.learning_rate": lr})
    if prepared and main:
        prepared.copy_reports(run_dir)  # rejected.jsonl, data_report.md, prepare.json, ...
    trainer = make_trainer(cfg, task, built.model, built.tokenizer, encoded, lr, run_dir)
    trainer.loss_tokens_per_step = loss_tokens_per_step(
        cfg, trainer.loss_module, encoded["train"], per_epoch
    )
    if cfg.distill:  # the teacher's term in compute_loss (its logits cached first if asked)
        trainer.distiller = distill_setup.make_distiller(cfg, trainer, run_dir / "checkpoints")
    # e.g. diff pruning's sparsity schedule, tune's pruning reporter
    for callback in [*built.strategy.callbacks(), *(callbacks or [])]:
        trainer.add_callback(callback)
    check_metric(cfg, task, trainer, encoded["validation"])
    checkpoints = Path(trainer.args.output_dir)
    if run.resume_from:
        trainer.resume_totals(run.totals)
    try:
        with (
            fast_dropout(built.model, cfg.training.fast_dropout),
            recompute_mlp(built.model, cfg.training.recompute_mlp),
        ):
            output = trainer.train(
                resume_from_checkpoint=str(run.resume_from) if run.resume_from else None
            )
    except BaseException:
        close_writers(trainer)  # before the work directory may be removed under them
        raise
    whole = trainer.run_summary(output)
    model = trainer.model  # the best epoch's weights when evaluating each epoch
    # 5. evaluate the final model with the same code path as `tunewise eval`
    metrics = _evaluate(cfg, task, model, built.tokenizer, splits, encoded)
    for name, values in before.items():  # e.g. validation.perplexity_before next to perplexity
        metrics[name].update(
            {f"{k}_before": v for k, v in scalar_metrics(values).items() if k != "n_examples"}
        )
    # 6. the run directory
    runtime = whole["seconds"]
    training = {
        "learning_rate": lr,
        "learning_rate_source": lr_source,
        "length_grouping": length_grouping(cfg, task),
        "epochs": cfg.training.epochs,
        "steps": int(output.global_step),
        "n_train": len(splits["train"]),
        "n_validation": len(splits["validation"]),
        "train_seconds": round(runtime, 2),
        "real_tokens": trainer.real_tokens_seen,
        "real_tokens_per_second": round(trainer.real_tokens_seen / max(runtime, 1e-9), 1),
        "final_train_loss": whole["final_train_loss"],
        "best_checkpoint_metric": cfg.eval.metric or task.default_metric,
        # the split whose metric chose the checkpoint (None: the last step, no per-epoch eval)
        "best_checkpoint_split": "validation" if cfg.eval.each_epoch else None,
    }
    if trainer.loss_tokens_per_step:
        training.update(loss_tokens_per_step=round(trainer.loss_tokens_per_step, 2))
    training.update(precision=cfg.training.precision)
    training.update(gradient_checkpointing=cfg.training.gradient_checkpointing)
    training.update(world_size=distributed.world_size())
    if transfer is not None:
        training.update(n_transfer=len(transfer))
    weights = save_trained(model, run_dir) if main else {}
    comparison = (  # student vs teacher: parameters, size, latency, metric
        distill_setup.compare(cfg, task, model, built.tokenizer, splits, encoded, metrics, weights)
        if cfg.distill and main
        else None
    )
    if main:
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
        **({"init_from": built.init_from} if built.init_from else {}),
        "config": cfg.to_dict(),
        "versions": package_versions(),
        **({"distillation": comparison} if comparison else {}),
    }
    if main:
        _write_report(run_dir, task, trainer, manifest, metrics)
        if comparison:
            distill_setup.append_report(run_dir, comparison)
        shutil.rmtree(checkpoints, ignore_errors=True)
        (run_dir / "run.json").unlink(missing_ok=True)
        write_json(run_dir / MANIFEST, manifest)  # last: its presence marks a finished run
    tracker.finish(metrics)  # artifacts from the work directory, before it is swapped in
    if main:
        run.commit()
    distributed.barrier()
    return RunResult(run.final, metrics, manifest)


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
