"""Distillation around the model: checks before anything loads, the teacher, the layer-reduced
student, and the student-vs-teacher comparison in the run's report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tunewise.errors import ConfigError

_TEACHERS: dict[str, Any] = {}


def teacher_manifest(path: str) -> dict[str, Any]:
    from tunewise.artifacts import read_manifest

    return read_manifest(Path(path))


def check(cfg: Any, task: Any) -> None:
    """Refuse, with the reason, what cannot work: before any model loads."""
    from tunewise.training.distill import UNSUPPORTED

    d = cfg.distill
    if cfg.task.type in UNSUPPORTED:  # the matrix's refusal first: it holds for any teacher
        raise ConfigError(
            f"'distill' cannot train task '{cfg.task.type}': {UNSUPPORTED[cfg.task.type]}."
        )
    where = f"distill.teacher '{d.teacher}'"
    manifest = teacher_manifest(d.teacher)
    t_task = manifest["task"]["type"]
    if t_task != cfg.task.type:
        raise ConfigError(f"{where} was trained for task '{t_task}', not '{cfg.task.type}'.")
    if d.cache_teacher and task.generative:
        raise ConfigError(
            "distill.cache_teacher: a language model's logits (tokens × vocabulary per example) "
            "are too large to cache on disk; compute them on the fly (cache_teacher: false)."
        )
    if d.cache_teacher and d.hidden_states:
        raise ConfigError(
            "distill.hidden_states needs the teacher on the fly (cache_teacher: false)."
        )
    if d.hidden_states and not d.student_layers:
        raise ConfigError(
            "distill.hidden_states matches a layer-reduced student's blocks to the "
            "teacher's: set distill.student_layers too."
        )
    t_state, s_state = manifest["task"]["state"], task.state()
    if t_state != s_state:
        raise ConfigError(
            f"{where} predicts a different output space (its task state {t_state} vs this "
            f"data's {s_state}); the KD loss compares the two distributions class by class."
        )
    base = manifest["config"]["model"]["name"]
    if d.student_layers is not None:
        if not d.student_layers or len(set(d.student_layers)) != len(d.student_layers):
            raise ConfigError("distill.student_layers must list distinct block indices.")
        if cfg.model.name != base:
            raise ConfigError(
                f"distill.student_layers copies blocks of the teacher's model '{base}', so "
                f"model.name must be '{base}' (got '{cfg.model.name}')."
            )
    _check_vocabulary(cfg, Path(d.teacher) / "tokenizer", where)


def _check_vocabulary(cfg: Any, teacher_tokenizer: Path, where: str) -> None:
    from transformers import AutoTokenizer

    from tunewise.models import load_tokenizer, resolve

    teacher = AutoTokenizer.from_pretrained(teacher_tokenizer).get_vocab()
    source = resolve(cfg.model.name, cfg.model.gguf_file, cfg.model.revision)
    student = load_tokenizer(source, trust_remote_code=cfg.model.trust_remote_code).get_vocab()
    if teacher != student:
        only_t = len(set(teacher) - set(student))
        only_s = len(set(student) - set(teacher))
        raise ConfigError(
            f"{where} and the student '{cfg.model.name}' have different vocabularies "
            f"({len(teacher)} vs {len(student)} tokens; {only_t} only in the teacher's, {only_s} "
            "only in the student's, or the same tokens under other ids): the student must read "
            "the same token ids for the teacher's logits to mean anything."
        )


def load_teacher(path: str) -> Any:
    """The teacher run as a Predictor, loaded once per process."""
    from tunewise.serving.predictor import Predictor

    key = str(Path(path).resolve())
    if key not in _TEACHERS:
        _TEACHERS[key] = Predictor(path)
    return _TEACHERS[key]


def merged_teacher(path: str) -> nn.Module:
    """The teacher's model with its strategy folded into plain weights (merged once, in place:
    the same function, so the loaded teacher keeps serving as the teacher)."""
    from tunewise.registry import STRATEGIES

    teacher = load_teacher(path)
    if not getattr(teacher, "merged", False):
        options = teacher.config.strategy
        teacher.model = STRATEGIES.get(options.name)(options).merge(teacher.model)
        teacher.merged = True
    return teacher.model


def layer_reduced_student(cfg: Any, model: nn.Module) -> nn.Module:
    """`model` (base + head, freshly built) with the teacher's fine-tuned weights (its strategy
    merged in) and only the blocks `distill.student_layers`, renumbered from 0."""
    from tunewise.strategies.base import find_blocks

    merged = merged_teacher(cfg.distill.teacher)
    missing, unexpected = model.load_state_dict(merged.state_dict(), strict=False)
    if missing or unexpected:
        raise ConfigError(
            f"distill.student_layers: the teacher's merged weights do not fit model '"
            f"{cfg.model.name}' (missing {missing[:3]}, unexpected {unexpected[:3]})."
        )
    name, blocks = find_blocks(model)
    layers = cfg.distill.student_layers
    bad = [i for i in layers if not 0 <= i < len(blocks)]
    if bad:
        raise ConfigError(
            f"distill.student_layers {bad} out of range: the teacher has {len(blocks)} blocks "
            f"(0-{len(blocks) - 1})."
        )
    kept = nn.ModuleList([blocks[i] for i in layers])
    for new, block in enumerate(kept):
        for module in block.modules():  # decoders number their attention layers (KV cache)
            if hasattr(module, "layer_idx"):
                module.layer_idx = new
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, kept)
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "num_hidden_layers"):
            if getattr(config, "layer_types", None):
                config.layer_types = [config.layer_types[i] for i in layers]
            config.num_hidden_layers = len(layers)
    return model


def make_distiller(cfg: Any, trainer: Any, cache_dir: Path) -> Any:
    """The Distiller for `trainer`'s model; with cache_teacher, the teacher's logits of every
    training example are computed (once) and cached first."""
    from tunewise.training.distill import Distiller

    distiller = Distiller(cfg, load_teacher(cfg.distill.teacher), trainer.model, cache_dir)
    if cfg.distill.cache_teacher:
        distiller.build_cache(trainer.get_train_dataloader())
    return distiller


# -- the report --------------------------------------------------------------------------------
def _weights_bytes(model: nn.Module) -> int:
    seen, total = set(), 0
    for p in model.parameters():
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel() * p.element_size()
    return total


@torch.inference_mode()
def _latency_ms(model: nn.Module, encoded: Any, collator: Any, n: int = 64) -> float:
    """Median milliseconds per example, one example at a time (after two warm-up calls)."""
    from tunewise.inference.batches import MODEL_INPUTS, device_of

    model.eval()
    device = device_of(model)
    columns = [c for c in MODEL_INPUTS if c in encoded.column_names]
    rows = encoded.select_columns(columns)
    times = []
    for i in range(min(n, len(rows)) + 2):
        batch = collator([rows[i % len(rows)]])
        batch = {k: v.to(device) for k, v in batch.items() if k in MODEL_INPUTS}
        start = time.perf_counter()
        model(**batch)
        times.append(time.perf_counter() - start)
    times = sorted(times[2:])
    return round(1000 * times[len(times) // 2], 3)


def compare(
    cfg: Any,
    task: Any,
    student: nn.Module,
    tokenizer: Any,
    splits: dict[str, Any],
    encoded_splits: dict[str, Any],
    metrics: dict[str, Any],
    weights: dict[str, Any],
) -> dict[str, Any]:
    """Student vs teacher on the validation split: parameters, size, latency per example, the
    task metric."""
    from tunewise.strategies.base import count_parameters

    dataset, encoded = splits["validation"], encoded_splits["validation"]
    student_metrics, saved_bytes = metrics.get("validation", {}), weights["bytes"]

    teacher = load_teacher(cfg.distill.teacher)
    metric = cfg.eval.metric or task.default_metric
    t_metrics = teacher.task.evaluate(teacher.model, teacher.tokenizer, dataset, progress=False)
    collator = task.collator(tokenizer)
    t_manifest = teacher_manifest(cfg.distill.teacher)
    rows = {
        "teacher": {
            "run": str(cfg.distill.teacher),
            "parameters": count_parameters(teacher.model).total,
            "weights_bytes": _weights_bytes(teacher.model),
            "run_weights_bytes": t_manifest["strategy"]["saved_weights"]["bytes"],
            "latency_ms_per_example": _latency_ms(teacher.model, encoded, collator),
            metric: t_metrics.get(metric),
        },
        "student": {
            "parameters": count_parameters(student).total,
            "weights_bytes": _weights_bytes(student),
            "run_weights_bytes": saved_bytes,
            "latency_ms_per_example": _latency_ms(student, encoded, collator),
            metric: student_metrics.get(metric),
        },
    }
    t, s = rows["teacher"], rows["student"]
    ratios = {
        "parameters": s["parameters"] / max(t["parameters"], 1),
        "latency": s["latency_ms_per_example"] / max(t["latency_ms_per_example"], 1e-9),
    }
    if isinstance(t[metric], (int, float)) and isinstance(s[metric], (int, float)) and t[metric]:
        ratios[metric] = s[metric] / t[metric]
    return {
        **rows,
        "metric": metric,
        "student_over_teacher": {k: round(v, 4) for k, v in ratios.items()},
    }


def append_report(run_dir: Path, comparison: dict[str, Any]) -> None:
    from tunewise.artifacts import atomic_write_text

    report = run_dir / "report.md"
    text = report.read_text(encoding="utf-8") if report.is_file() else ""
    atomic_write_text(report, text + report_section(comparison))


def report_section(comparison: dict[str, Any]) -> str:
    metric = comparison["metric"]
    keys = ["parameters", "weights_bytes", "run_weights_bytes", "latency_ms_per_example", metric]
    lines = [
        "",
        "## Distillation: student vs teacher",
        "",
        "| | " + " | ".join(keys) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    for who in ("teacher", "student"):
        lines.append(f"| {who} | " + " | ".join(str(comparison[who].get(k)) for k in keys) + " |")
    ratios = ", ".join(f"{k} {v}" for k, v in comparison["student_over_teacher"].items())
    lines += ["", f"Student / teacher: {ratios}.", ""]
    return "\n".join(lines)
