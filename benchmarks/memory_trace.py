"""Where a training run's resident memory goes, phase by phase (peft_speed.py's SST-2 job).

    python benchmarks/memory_trace.py lora          # or full, ia3, ...: a peft_speed.py strategy
    python benchmarks/memory_trace.py lora --n 400  # fewer training examples

A thread samples VmRSS every 50 ms while `peft_speed.child` trains; the recipe's phases (reading
the data, assembling the model, building the Trainer, each logged step, the final evaluation)
are marked as they start. Prints, per phase, the highest resident memory until the next mark, and
writes benchmarks/results/memory_trace_<strategy>.md.
"""

from __future__ import annotations

import argparse
import io
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _children import status_mb  # benchmarks/ is on sys.path

RESULTS = Path(__file__).resolve().parent / "results"


class Marks(io.TextIOBase):
    """stdout/stderr that also records each printed line (not progress bars) as a mark."""

    def __init__(self, stream: Any, marks: list[tuple[float, str]]) -> None:
        self.stream, self.marks = stream, marks

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip() and "it/s" not in line and "%|" not in line:
                self.marks.append((time.perf_counter(), line.strip()[:90]))
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def marked(module: Any, name: str, marks: list[tuple[float, str]]) -> None:
    """Mark entering and leaving `module.name` (a function the recipe looks up at call time)."""
    fn = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        marks.append((time.perf_counter(), f"enter {name}"))
        try:
            return fn(*args, **kwargs)
        finally:
            marks.append((time.perf_counter(), f"exit {name}"))

    setattr(module, name, wrapper)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("strategy")
    p.add_argument("--n", type=int, default=4000, help="training examples")
    args = p.parse_args()
    samples: list[tuple[float, float]] = []

    def sample() -> None:
        while True:
            samples.append((time.perf_counter(), status_mb("VmRSS")))
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    marks = [(time.perf_counter(), "start")]
    sys.stdout, sys.stderr = Marks(sys.stdout, marks), Marks(sys.stderr, marks)
    import peft_speed  # benchmarks/ is on sys.path
    import tunewise.assemble
    import tunewise.training.recipe as recipe

    marks.append((time.perf_counter(), "imported torch, transformers, peft, datasets, tunewise"))
    phases = [(recipe, "_read_splits"), (tunewise.assemble, "assemble")]
    for module, name in [*phases, (recipe, "_make_trainer"), (recipe, "_evaluate")]:
        marked(module, name, marks)
    result = peft_speed.child(args.strategy, args.n)
    marks.append((time.perf_counter(), "done"))
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    rows = []
    for i, (t, mark) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else float("inf")
        window = [m for ts, m in samples if t <= ts < end]
        peak = f"{max(window):,.0f}" if window else ""
        rows.append(f"| {t - marks[0][0]:.1f} | {peak} | {mark.replace('|', '/')} |")
    text = "\n".join(
        [
            f"# Resident memory by phase: {args.strategy}, SST-2, {args.n} examples",
            "",
            f"`python benchmarks/memory_trace.py {args.strategy} --n {args.n}`; VmRSS every 50 ms. "
            f"Peak (VmHWM) {result['peak_rss_mb']:,.0f} MB; "
            f"{result['real_tokens_per_second']:,.0f} real tokens/s.",
            "",
            "| s | peak MB until the next mark | mark |",
            "|---|---|---|",
            *rows,
        ]
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"memory_trace_{args.strategy}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
