"""What a study leaves in D: trials.json, trials.md, best.yaml and report.md with Optuna's own
matplotlib plots (optimisation history, parameter importances)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tunewise.artifacts import atomic_write_text, write_json
from tunewise.config import load_config
from tunewise.tune.space import with_params

STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "fail"}


def trial_rows(study: Any) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=True):
        error = t.user_attrs.get("error")
        if t.state.name == "FAIL" and not error:  # e.g. a worker killed mid-trial
            error = t.system_attrs.get("fail_reason", "failed (no error recorded)")
        run_dir = t.user_attrs.get("run_dir")
        rows.append(
            {
                "number": t.number,
                "state": STATES.get(t.state.name, t.state.name.lower()),
                "params": t.params,
                "value": t.value,
                "error": error,
                "evaluations": {str(k): v for k, v in sorted(t.intermediate_values.items())},
                "wall_seconds": t.user_attrs.get("wall_seconds"),
                "run_dir": run_dir if run_dir and Path(run_dir).is_dir() else None,
            }
        )
    return rows


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))


def trials_table(rows: list[dict[str, Any]], metric: str) -> list[str]:
    keys = list(dict.fromkeys(k for r in rows for k in r["params"]))
    lines = [
        f"| # | state | {metric} | " + " | ".join(f"`{k}`" for k in keys) + " | s | error |",
        "|---|---|---|" + "---|" * len(keys) + "---|---|",
    ]
    for r in rows:
        error = (r["error"] or "").replace("|", "/").replace("\n", " ")[:120]
        cells = [_value(r["params"].get(k)) for k in keys]
        lines.append(
            f"| {r['number']} | {r['state']} | {_value(r['value'])} | "
            + " | ".join(cells)
            + f" | {_value(r['wall_seconds'])} | {error} |"
        )
    return lines


def plots(study: Any, out: Path) -> tuple[dict[str, Path], list[str]]:
    """Optuna's matplotlib figures; a plot that cannot be drawn yet (e.g. importances with
    fewer than two complete trials) is skipped with its reason."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    made, skipped = {}, []
    for title, fn, name in (
        ("optimisation history", ovm.plot_optimization_history, "optimization_history.png"),
        ("parameter importances", ovm.plot_param_importances, "param_importances.png"),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "experimental" warnings
                ax = fn(study)
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.set_size_inches(7, 4)
            fig.tight_layout()
            fig.savefig(out / name, dpi=100)
            plt.close(fig)
            made[title] = out / name
        except Exception as exc:  # not enough finished trials for this plot yet
            skipped.append(f"{title}: not drawn ({type(exc).__name__}: {exc})")
    return made, skipped


def write_outputs(study: Any, base: dict[str, Any], result: Any) -> None:
    out: Path = result.output_dir
    rows = trial_rows(study)
    result.trials = rows
    write_json(out / "trials.json", rows)
    table = trials_table(rows, result.metric)
    header = [
        f"# Study `{result.study_name}`: {result.direction} validation `{result.metric}`",
        "",
        f"Storage: `{result.storage}`. Trials: {len(rows)} ("
        + ", ".join(
            f"{sum(r['state'] == s for r in rows)} {s}" for s in ("complete", "pruned", "fail")
        )
        + ").",
        "",
    ]
    atomic_write_text(out / "trials.md", "\n".join(header + table) + "\n")
    complete = [r for r in rows if r["state"] == "complete" and r["value"] is not None]
    best = None
    if complete:
        best = (max if result.direction == "maximize" else min)(complete, key=lambda r: r["value"])
        raw = with_params(base, best["params"])
        raw.pop("tune", None)
        resolved = load_config(raw).to_dict()  # what `tunewise train best.yaml` will accept
        resolved.pop("tune", None)
        text = (
            f"# best trial {best['number']} of study '{result.study_name}': "
            f"{result.metric} = {best['value']:.6g}\n" + yaml.safe_dump(resolved, sort_keys=False)
        )
        atomic_write_text(out / "best.yaml", text)
    result.best = best
    made, skipped = plots(study, out)
    lines = header[:]
    if best:
        lines += [
            f"Best: trial {best['number']}, {result.metric} = {best['value']:.4f}, params "
            f"`{json.dumps(best['params'])}`; its config is `best.yaml` "
            f"(`tunewise train {out / 'best.yaml'}`).",
            "",
        ]
    else:
        lines += ["No trial has completed yet, so there is no best.yaml.", ""]
    lines += [*table, ""]
    for title, path in made.items():
        lines += [f"## {title}", "", f"![{title}]({path.name})", ""]
    lines += [f"- {s}" for s in skipped]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
