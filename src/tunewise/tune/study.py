"""`tunewise tune`: an Optuna study whose trials are ordinary tunewise runs.

    D/study.db                 the default storage (SQLite); --storage takes any RDB URL, or a
                               journal file (path or URL ending in .log / .journal)
    D/trial-NNNN/              each trial's run directory (the best `tune.keep_best` are kept)
    D/trials.json, trials.md   every trial: number, state, params, value, error
    D/best.yaml                the best trial's full config, ready for `tunewise train`
    D/report.md                table + optimisation history and parameter importance plots

Workers share a study through its storage: run `tunewise tune` again (here or on another
machine) with the same --storage and --study, and it takes trials until the study holds
--trials of them; a finished study given a larger --trials resumes. Trials run in this process
so the pruner can stop them between evaluations; a trial that raises is recorded as failed
(with its error) and the study goes on.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunewise.config import Config, load_config
from tunewise.errors import ConfigError
from tunewise.tune.space import check_space, search_space, suggest, with_params

TRIAL_DIR = "trial-{:04d}"


@dataclass
class TuneResult:
    study_name: str
    storage: str
    output_dir: Path
    metric: str
    direction: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None


def storage_for(url: str | None, out: Path) -> tuple[Any, str]:
    """(Optuna storage, its URL as shown): SQLite in D by default, a journal file for paths or
    URLs ending in .log / .journal, any other RDB URL as given."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    url = url or f"sqlite:///{(out / 'study.db').resolve()}"
    if url.endswith((".log", ".journal")):
        path = Path(url.split("://", 1)[1] if "://" in url else url)  # journal:///abs/x.log
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path))), str(path)
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):  # several local workers: wait for the lock, don't fail
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, **kwargs), url
        except Exception as exc:  # bad URL, missing driver, unreachable server
            # workers started together race to create the schema (an IntegrityError, or
            # SQLite's "table ... already exists"): the other one won, so open it again
            raced = "IntegrityError" in repr(exc) or "already exists" in str(exc)
            if attempt == 4 or not raced:
                raise ConfigError(f"--storage '{url}' cannot be opened: {exc}") from None
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def objective_metric(cfg: Config) -> tuple[str, str]:
    """(validation metric, direction): tune.metric / eval.metric / the task's default."""
    from tunewise.registry import TASKS

    task = TASKS.get(cfg.task.type)
    opts = cfg.tune
    metric = (opts.metric if opts else None) or cfg.eval.metric or task.default_metric
    direction = opts.direction if opts else None
    if direction is None:
        if metric == task.default_metric:
            better = task.greater_is_better
        else:
            better = not (metric.endswith("loss") or metric == "perplexity")
        direction = "maximize" if better else "minimize"
    return metric, direction


def _pruner(cfg: Config) -> Any:
    import optuna

    opts = cfg.tune
    kind = opts.pruner if opts else "median"
    if kind == "median":
        startup = opts.startup_trials if opts else 3
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=0)
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def tune(
    config: str | Path | dict[str, Any] | Config,
    trials: int,
    output_dir: str | Path,
    storage: str | None = None,
    study_name: str | None = None,
    overrides: list[str] | None = None,
) -> TuneResult:
    """Run (or join, or resume) the study until it holds `trials` trials; write the report."""
    import optuna
    from optuna.trial import TrialState

    from tunewise.tune.report import write_outputs

    cfg = load_config(config, overrides)
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1 (got {trials}).")
    where = str(config) if isinstance(config, (str, Path)) else "config"
    base = cfg.to_dict()
    space = search_space(cfg)
    check_space(base, space, where)  # before the storage or any trial exists
    metric, direction = objective_metric(cfg)
    name = study_name or (Path(config).stem if isinstance(config, (str, Path)) else "tunewise")
    if not cfg.tracking.group:
        base["tracking"]["group"] = name  # every trial: a run in one experiment / group
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    store, shown = storage_for(storage, out)
    opts = cfg.tune
    sampler = optuna.samplers.TPESampler(
        seed=opts.sampler_seed if opts else None, constant_liar=True, n_startup_trials=5
    )
    study = optuna.create_study(
        study_name=name,
        storage=store,
        direction=direction,
        sampler=sampler,
        pruner=_pruner(cfg),
        load_if_exists=True,
    )
    for params in opts.enqueue if opts else []:
        study.enqueue_trial(params, skip_if_exists=True)
    study.set_user_attr("metric", metric)
    keep = opts.keep_best if opts else 1

    def objective(trial: Any) -> float:
        return run_trial(trial, base, space, out, metric)

    def after_trial(study: Any, trial: Any) -> None:
        prune_trial_dirs(study, out, keep)

    # Enqueued (waiting) trials are not counted: they are the first ones this budget runs.
    started = tuple(s for s in TrialState if s != TrialState.WAITING)
    remaining = trials - len(study.get_trials(deepcopy=False, states=started))
    if remaining > 0:
        study.optimize(
            objective,
            n_trials=remaining,
            catch=(Exception,),
            callbacks=[optuna.study.MaxTrialsCallback(trials, states=started), after_trial],
        )
    prune_trial_dirs(study, out, keep)
    result = TuneResult(name, shown, out, metric, direction)
    write_outputs(study, base, result)
    return result


def run_trial(
    trial: Any, base: dict[str, Any], space: dict[str, Any], out: Path, metric: str
) -> float:
    """One trial: sample, train with the pruning reporter, return the validation metric.
    Errors are recorded on the trial (user attribute `error`) and re-raised for Optuna to mark
    it failed; a pruned trial closes its tracker runs too."""
    import optuna

    from tunewise.tracking.run import abort_active
    from tunewise.training.recipe import finetune
    from tunewise.tune.pruning import PruningReporter

    started = time.perf_counter()
    run_dir = out / TRIAL_DIR.format(trial.number)
    trial.set_user_attr("run_dir", str(run_dir))
    try:
        params = suggest(trial, space)
        raw = with_params(base, params)
        raw.pop("tune", None)
        raw["output_dir"] = str(run_dir)
        raw["tracking"]["run_name"] = raw["tracking"].get("run_name") or run_dir.name
        result = finetune(load_config(raw), callbacks=[PruningReporter(trial, metric)])
        value = result.metrics.get("validation", {}).get(metric)
        if not isinstance(value, (int, float)):
            raise ConfigError(
                f"tune metric '{metric}' is not among the validation metrics "
                f"({', '.join(result.metrics.get('validation', {}))}); set tune.metric."
            )
        return float(value)
    except optuna.TrialPruned:
        abort_active("KILLED")
        raise
    except Exception as exc:
        abort_active("FAILED")
        trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        trial.set_user_attr("wall_seconds", round(time.perf_counter() - started, 2))


def prune_trial_dirs(study: Any, out: Path, keep: int) -> list[Path]:
    """Delete the run directories of finished trials outside the best `keep` complete ones.
    Only directories this tool created are touched: D/trial-NNNN recorded on the trial."""
    from optuna.trial import TrialState

    finished = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    ]
    complete = [t for t in finished if t.state == TrialState.COMPLETE and t.value is not None]
    maximize = study.direction.name == "MAXIMIZE"
    complete.sort(key=lambda t: t.value, reverse=maximize)
    kept = {t.number for t in complete[:keep]}
    removed = []
    for t in finished:
        run_dir = Path(t.user_attrs.get("run_dir", ""))
        ours = run_dir.name == TRIAL_DIR.format(t.number) and run_dir.parent == out
        if t.number not in kept and ours and run_dir.is_dir():
            shutil.rmtree(run_dir, ignore_errors=True)
            removed.append(run_dir)
    return removed
