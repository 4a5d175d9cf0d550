"""What the side-by-side benchmarks share: each variant trains in its own process (so its peak
memory is its own), prints one RESULT line, and the parent writes the JSON and Markdown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def status_mb(key: str) -> float:
    """A memory figure of this process from /proc/self/status (VmHWM, VmRSS, ...), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def vm_hwm_mb() -> float:
    """This process's resident-memory high-water mark (model loading included)."""
    return status_mb("VmHWM")


def report_child(result: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def run_children(
    script: str, names: list[str], extra: list[str], env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """`script --child NAME *extra` for each name, one process at a time (with `env`, else
    this process's environment); their results."""
    runs = []
    for name in names:
        cmd = [sys.executable, script, "--child", name, *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
        runs.append(json.loads(line[len("RESULT ") :]))
        print(json.dumps(runs[-1]), flush=True)
    return runs


def write_results(
    stem: str, out: dict[str, Any], start_load: float, markdown: Callable[[dict], str]
) -> None:
    """Add the load averages and date, then write results/STEM.json and .md."""
    out["load_average"] = {"start": start_load, "end": round(os.getloadavg()[0], 2)}
    out["date"] = time.strftime("%Y-%m-%d")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(out))
    print(markdown(out))
