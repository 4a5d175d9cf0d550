"""Strategy sweeps: one config, several strategies, one comparison report.

    DIR/<strategy>/            the entry's run directory (a normal tunewise run)
    DIR/<strategy>.result.json the entry's result, written when it finishes or fails
    DIR/sweep.json, sweep.md   every entry, plus plots (metric vs. trainable %, vs. wall time,
                               peak memory per strategy)

Each entry trains in its own process, so its peak memory is its own and a crash (even an
out-of-memory kill) is recorded instead of ending the sweep. An entry with a result file is
never re-run, so a killed sweep continues where it stopped. The config's strategy options apply
where they fit; hyperparameters it leaves unset (e.g. the learning rate) take each strategy's
default, so one config compares strategies fairly.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tunewise.artifacts import write_json
from tunewise.config import load_config
from tunewise.errors import ConfigError


def entry_config(raw: dict[str, Any], strategy: str, out: Path) -> dict[str, Any]:
    """The base config with `strategy` (keeping the options that belong to it) and its own
    output directory."""
    cfg = json.loads(json.dumps(raw))
    options = dict(cfg.get("strategy") or {}) if isinstance(cfg.get("strategy"), dict) else {}
    options["name"] = strategy
    cfg["strategy"] = options
    cfg["output_dir"] = str(out)
    tracking = cfg.setdefault("tracking", {})
    if isinstance(tracking, dict) and not tracking.get("group"):
        tracking["group"] = out.parent.name  # every entry: a run in one experiment / group
    return cfg


def base_config(
    config: str | Path | dict[str, Any], overrides: list[str] | None = None
) -> tuple[Any, dict[str, Any]]:
    """(validated config, the dict entries start from). Validating first fails early on a bad
    config; the strategy block keeps only the options the user set, so one strategy's defaults
    (LoRA's rank 8, a resolved prompt length) never override another's (LoRA-FA's rank 16)."""
    base = load_config(config, overrides)
    raw = base.to_dict()
    raw["strategy"] = base.strategy.model_dump(mode="json", exclude_unset=True)
    return base, raw


def run_entry(cfg: dict[str, Any]) -> dict[str, Any]:
    """Train one entry in this process; the fields sweep.json keeps."""
    from tunewise.training.recipe import finetune

    started = time.perf_counter()
    result = finetune(load_config(cfg), overwrite=True)
    m = result.manifest
    return {
        "status": "ok",
        "metrics": result.metrics.get("validation", {}),
        "trainable_params": m["strategy"]["parameters"]["trainable"],
        "trainable_percent": m["strategy"]["parameters"]["percent"],
        "total_params": m["strategy"]["parameters"]["total"],
        "artifact_bytes": m["strategy"]["saved_weights"]["bytes"],
        "details": m["strategy"]["details"],
        "learning_rate": m["training"]["learning_rate"],
        "train_seconds": m["training"]["train_seconds"],
        "real_tokens_per_second": m["training"]["real_tokens_per_second"],
        "wall_seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": peak_rss_mb(),
        "run_dir": str(result.run_dir),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM belongs to the address space, which
    exec replaces; `ru_maxrss` survives exec and would report the parent's size at fork time
    (a sweep launched from a big process would show every entry at the parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_in_subprocess(cfg: dict[str, Any], log: Path) -> dict[str, Any]:
    """`run_entry` in a fresh Python process; failures come back as a failed result."""
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "tunewise.sweep", json.dumps(cfg)]
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=fh, text=True, env=os.environ)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    errors = [x for x in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt)\b", x)]
    message = errors[-1] if errors else f"exit status {proc.returncode} (see {log.name})"
    return {
        "status": "failed",
        "error": message,
        "traceback": "\n".join(lines[-15:]),
        "wall_seconds": round(time.perf_counter() - started, 2),
    }


def sweep(
    config: str | Path | dict[str, Any],
    strategies: list[str],
    output_dir: str | Path,
    overrides: list[str] | None = None,
    isolate: bool = True,
) -> list[dict[str, Any]]:
    """Run every strategy (skipping finished entries) and write the report; returns the rows."""
    from tunewise.registry import STRATEGIES

    base, raw = base_config(config, overrides)
    if not strategies:
        raise ConfigError("A sweep needs at least one strategy (--strategies full,lora,...).")
    for name in strategies:
        STRATEGIES.get(name)  # unknown names fail before anything runs
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in dict.fromkeys(strategies):
        result_file = out / f"{name}.result.json"
        if result_file.is_file():
            row = json.loads(result_file.read_text(encoding="utf-8"))
            print(f"[sweep] {name}: already done ({row['status']}), skipped")
            rows.append(row)
            continue
        cfg = entry_config(raw, name, out / name)
        print(f"[sweep] {name}: training ...", flush=True)
        if isolate:
            row = run_in_subprocess(cfg, out / f"{name}.log")
        else:
            started = time.perf_counter()
            try:
                row = run_entry(cfg)
            except Exception as exc:  # recorded; the other entries still run
                row = {
                    "status": "failed",
                    "error": f"{type(exc).__name__}: {exc}",
                    "wall_seconds": round(time.perf_counter() - started, 2),
                }
        row = {"strategy": name, **row}
        write_json(result_file, row)
        print(f"[sweep] {name}: {row['status']}", flush=True)
        rows.append(row)
    metric = base.eval.metric or _default_metric(base.task.type)
    write_report(rows, out, metric, raw)
    return rows


def _default_metric(task: str) -> str:
    from tunewise.registry import TASKS

    return TASKS.get(task).default_metric


def write_report(rows: list[dict[str, Any]], out: Path, metric: str, raw: dict) -> None:
    from tunewise.evaluation.sweep_plots import sweep_plots

    full = [
        {
            "metrics": {},
            "trainable_params": None,
            "wall_seconds": None,
            "peak_rss_mb": None,
            **r,
        }
        for r in rows
    ]
    write_json(out / "sweep.json", full)
    plots = sweep_plots(full, metric, out)
    lines = [
        f"# Strategy sweep: {raw['task']['type']} on {raw['model']['name']}",
        "",
        f"Metric: validation `{metric}`. Train data: `{_path(raw['data']['train'])}`"
        f" (max_train_samples: {raw['training'].get('max_train_samples') or 'all'}); "
        f"epochs {raw['training']['epochs']}; learning rate: "
        f"{raw['training'].get('learning_rate') or 'each strategy default'}.",
        "",
        f"| strategy | status | {metric} | trainable | trainable % | artifact KB "
        "| lr | wall s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in full:
        if r["status"] != "ok":
            error = str(r.get("error", "")).replace("|", "/").replace("\n", " ")[:160]
            lines.append(f"| {r['strategy']} | failed: {error} | | | | | | | |")
            continue
        value = r["metrics"].get(metric)
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(
            f"| {r['strategy']} | ok | {shown} | {r['trainable_params']:,} | "
            f"{r.get('trainable_percent', 0):.2f} | {r.get('artifact_bytes', 0) / 1024:,.0f} | "
            f"{r.get('learning_rate', 0):.3g} | {r['wall_seconds']:.0f} | "
            f"{r['peak_rss_mb']:,.0f} |"
        )
    lines.append("")
    lines += [f"![{name}]({path.name})" for name, path in plots.items()]
    (out / "sweep.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _path(spec: Any) -> str:
    return spec["path"] if isinstance(spec, dict) else str(spec)


if __name__ == "__main__":  # one entry, in a child process (see run_in_subprocess)
    print(json.dumps(run_entry(json.loads(sys.argv[1]))), flush=True)
