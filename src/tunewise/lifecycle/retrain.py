"""`tunewise retrain`: continue a run on new data with replay, compare old and new, promote.

1. The training file is the new data plus a seeded sample of the old run's own training records
   (replay, against forgetting). `replay` is the share of the *mix*: with 80 new records and
   replay 0.2, 20 old records are added (20 / 100), capped at the old training set's size.
   Both go through the data pipeline's validation (`data.steps.process`) and are written in the
   pipeline's canonical fields to NEW_RUN/retrain/train.jsonl, with NEW_RUN/retrain/mix.json
   saying which old records were replayed.
2. NEW_RUN trains from RUN through `init_from` (the same adapter or weights keep training), with
   RUN's config otherwise (overrides apply; `max_train_samples` is dropped, the mix is the data).
3. Old and new are evaluated on the same fixed evaluation file (`eval_data`) and on RUN's own
   validation set (forgetting). NEW_RUN is `promoted` only if, on every set, its metric is not
   worse than RUN's by more than `threshold` (in the metric's units). comparison.json / .md go
   into NEW_RUN; a promotion also writes REGISTRY/promoted.json, which `serve --watch` reads.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tunewise.artifacts import MANIFEST, atomic_write_text, check_output_dir, write_json
from tunewise.config import Config
from tunewise.errors import ConfigError, DataError
from tunewise.lifecycle.records import canonical_records
from tunewise.training.init_from import Parent, load_parent

LOWER_IS_BETTER = {"loss", "perplexity"}


def build_mix(
    parent: Parent, data: str | Path, replay: float, seed: int, out_dir: Path
) -> dict[str, Any]:
    """Write out_dir/train.jsonl (new + replayed, shuffled) and out_dir/mix.json."""
    task = parent.task_type
    new = canonical_records(str(data), task, None)
    old: list[dict[str, Any]] = []
    n_replay = 0
    if replay > 0:
        spec = parent.config.data.split("train")
        assert spec is not None
        if not Path(spec.path).is_file():
            raise DataError(
                f"retrain: run '{parent.run_dir}' was trained on '{spec.path}', which is gone, so "
                "nothing can be replayed. Restore it, or pass --replay 0."
            )
        old = canonical_records(spec.path, task, spec)
        n_replay = min(len(old), round(replay / (1 - replay) * len(new)))
    rng = random.Random(seed)
    picked = sorted(rng.sample(range(len(old)), n_replay))
    mix = [*new, *(old[i] for i in picked)]
    rng.shuffle(mix)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        out_dir / "train.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mix)
    )
    info = {
        "new_data": str(data),
        "replay": replay,
        "replay_is": "share of the mix: n_replay / (n_new + n_replay)",
        "n_new": len(new),
        "n_replay": n_replay,
        "n_old_available": len(old),
        "replay_fraction_of_mix": round(n_replay / max(len(mix), 1), 4),
        "replayed_indices": picked,  # indices into the old run's valid training records
        "seed": seed,
    }
    write_json(out_dir / "mix.json", info)
    return info


def child_config(
    parent: Parent, mix: Path, output_dir: Path, overrides: list[str] | None
) -> Config:
    """RUN's config, continuing from RUN (init_from), trained on the mix."""
    from tunewise.config import load_config

    raw = parent.config.to_dict()
    data = dict(raw["data"])
    train: dict[str, Any] = {"path": str(mix), "format": "jsonl"}
    if parent.task_type == "classification":
        train.update(text_column="text", label_column="label")
        if parent.config.data.text_pair_column:
            train["text_pair_column"] = "text_pair"
    if parent.task_type == "token_classification":
        raw["task"] = {**raw["task"], "tokens_field": "tokens", "tags_field": "tags"}
    if parent.task_type == "summarization":
        raw["task"] = {**raw["task"], "fields": {"document": "source", "summary": "target"}}
    data["train"] = train
    for name in ("validation", "test"):
        spec = parent.config.data.split(name)
        data[name] = spec.model_dump() if spec else None
    data["prepare"] = None  # the mix went through validation already
    raw.update(data=data, init_from=str(parent.run_dir), output_dir=str(output_dir))
    raw["training"] = {**raw["training"], "max_train_samples": None}
    return load_config(raw, overrides)


def _direction(metric: str, task_cls: Any) -> bool:
    if metric == task_cls.default_metric:
        return bool(task_cls.greater_is_better)
    return metric not in LOWER_IS_BETTER


def compare_runs(
    parent: Parent, new_run: Path, eval_data: str | Path | None, metric: str
) -> dict[str, dict[str, Any]]:
    """{set: {old: metrics, new: metrics}} on the fixed eval file and RUN's validation set."""
    from tunewise.registry import TASKS
    from tunewise.serving.predictor import Predictor
    from tunewise.training.recipe import _read_splits

    old, new = Predictor(parent.run_dir), Predictor(new_run)
    sets: dict[str, dict[str, Any]] = {}
    if eval_data:
        sets["eval"] = {
            "data": str(eval_data),
            "old": old.evaluate(eval_data, progress=False),
            "new": new.evaluate(eval_data, progress=False),
        }
    spec = parent.config.data.split("validation")
    if spec is not None:
        sets["original_validation"] = {
            "data": spec.path,
            "old": old.evaluate(spec.path, progress=False),
            "new": new.evaluate(spec.path, progress=False),
        }
    else:  # held out from train: the same seeded split the old run used
        cfg = parent.config
        task = TASKS.get(cfg.task.type)(cfg.task, cfg.data, cfg.model)
        held = _read_splits(cfg, task)[0]["validation"]
        sets["original_validation"] = {
            "data": f"held out from {cfg.data.split('train').path}",  # type: ignore[union-attr]
            "old": old.task.evaluate(old.model, old.tokenizer, held, progress=False),
            "new": new.task.evaluate(new.model, new.tokenizer, held, progress=False),
        }
    for name, entry in sets.items():
        if metric not in entry["old"]:
            raise ConfigError(
                f"retrain: metric '{metric}' is not among the {name} metrics "
                f"({', '.join(k for k, v in entry['old'].items() if isinstance(v, float))})."
            )
    return sets


def decide(
    sets: dict[str, dict[str, Any]], metric: str, greater: bool, threshold: float
) -> dict[str, Any]:
    """Per set: old, new, change (positive = better) and whether it stays within threshold."""
    rows = {}
    for name, entry in sets.items():
        o, n = float(entry["old"][metric]), float(entry["new"][metric])
        gain = n - o if greater else o - n
        rows[name] = {"old": o, "new": n, "gain": gain, "ok": gain >= -threshold}
    return {
        "metric": metric,
        "greater_is_better": greater,
        "threshold": threshold,
        "sets": rows,
        "promoted": all(r["ok"] for r in rows.values()),
    }


def retrain(
    run: str | Path,
    data: str | Path,
    output_dir: str | Path,
    replay: float = 0.2,
    eval_data: str | Path | None = None,
    threshold: float = 0.0,
    metric: str | None = None,
    registry: str | Path | None = None,
    overrides: list[str] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Continue RUN on DATA (+ replay) into OUTPUT_DIR, compare, maybe promote; returns the
    comparison (also NEW_RUN/comparison.json)."""
    from tunewise.registry import TASKS
    from tunewise.training.recipe import finetune

    parent = load_parent(run)
    out = Path(output_dir)
    if not 0 <= replay < 1:
        raise ConfigError(f"retrain: --replay must be in [0, 1), got {replay}.")
    if threshold < 0:
        raise ConfigError(f"retrain: --threshold must be >= 0, got {threshold}.")
    if not Path(data).is_file():
        raise DataError(f"retrain: new data file '{data}' does not exist.")
    if eval_data is not None and not Path(eval_data).is_file():
        raise DataError(f"retrain: evaluation file '{eval_data}' does not exist.")
    if registry is not None and Path(registry).exists() and not Path(registry).is_dir():
        raise ConfigError(f"retrain: --registry '{registry}' exists and is not a directory.")
    if out.resolve() == parent.run_dir:
        raise ConfigError("retrain: --output-dir must differ from the run it continues.")
    check_output_dir(out, overwrite)
    task_cls = TASKS.get(parent.task_type)
    metric = metric or parent.config.eval.metric or task_cls.default_metric
    known = parent.manifest.get("metrics", {}).get("validation", {})
    if known and metric not in known:  # before training, not after
        numeric = ", ".join(k for k, v in known.items() if isinstance(v, (int, float)))
        raise ConfigError(f"retrain: --metric '{metric}' is not a metric of this task ({numeric}).")
    # The mix is built beside NEW_RUN (a run refuses inputs inside its own directory, which it
    # replaces whole), then moved into NEW_RUN/retrain/ once the run has been swapped in.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.retrain-", dir=out.parent))
    try:
        mix = build_mix(parent, data, replay, parent.config.seed, staging)
        cfg = child_config(parent, staging / "train.jsonl", out, overrides)
        finetune(cfg, overwrite=overwrite)  # the old NEW_RUN (if any) stays until this succeeds
        shutil.move(str(staging), str(out / "retrain"))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _point_config_at(out, out / "retrain" / "train.jsonl")
    sets = compare_runs(parent, out, eval_data, metric)
    result = decide(sets, metric, _direction(metric, task_cls), threshold)
    result.update(old_run=str(parent.run_dir), new_run=str(out.resolve()), mix=mix)
    result["time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    result["metrics"] = sets
    write_json(out / "comparison.json", result)
    atomic_write_text(out / "comparison.md", render(result))
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    manifest["promoted"] = result["promoted"]
    manifest["retrain"] = {k: v for k, v in result.items() if k != "metrics"}
    write_json(out / MANIFEST, manifest)
    if result["promoted"] and registry is not None:
        primary = result["sets"].get("eval") or result["sets"]["original_validation"]
        write_json(
            Path(registry) / "promoted.json",
            {
                "run": str(out.resolve()),
                "time": result["time"],
                "metric": metric,
                "old": primary["old"],
                "new": primary["new"],
            },
        )
    return result


def _point_config_at(run_dir: Path, mix: Path) -> None:
    """The run's saved config (config.yaml, the manifest's copy) names the mix where it now
    lies, so a later retrain of this run replays from it."""
    import yaml

    path = run_dir / "config.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["data"]["train"]["path"] = str(mix.resolve())
    atomic_write_text(path, yaml.safe_dump(raw, sort_keys=False))
    manifest = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))
    manifest["config"]["data"]["train"]["path"] = str(mix.resolve())
    if "path" in manifest.get("data", {}).get("train", {}):
        manifest["data"]["train"]["path"] = str(mix.resolve())
    write_json(run_dir / MANIFEST, manifest)


def render(result: dict[str, Any]) -> str:
    m, t = result["metric"], result["threshold"]
    lines = [
        "# Retrain comparison",
        "",
        f"- old run: `{result['old_run']}`",
        f"- new run: `{result['new_run']}`",
        f"- new records: {result['mix']['n_new']}, replayed from the old run's training data: "
        f"{result['mix']['n_replay']} ({result['mix']['replay_fraction_of_mix']:.1%} of the mix)",
        f"- rule: promoted if, on every set, {m} is not worse than the old run's by more than {t}",
        "",
        f"| set | old {m} | new {m} | change | within threshold |",
        "|---|---|---|---|---|",
    ]
    for name, r in result["sets"].items():
        lines.append(
            f"| {name} | {r['old']:.4f} | {r['new']:.4f} | {r['gain']:+.4f} | "
            f"{'yes' if r['ok'] else 'no'} |"
        )
    verdict = "**promoted**" if result["promoted"] else "**not promoted**"
    lines += ["", f"Verdict: {verdict}.", ""]
    return "\n".join(lines)
