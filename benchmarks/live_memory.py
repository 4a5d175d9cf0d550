"""How low could a strategy's peak memory go with a perfect allocator? Live tensors vs resident.

    python benchmarks/live_memory.py                          # full, lora, lora_fa
    python benchmarks/live_memory.py --strategies full,ia3

peft_speed.py's SST-2 job (minilm, 4,000 examples, 2,048-token batches, 2 threads), each strategy
in its own process. Two training steps (the 6th and 7th) run under `torch.profiler` with its
memory profile, from the start of the forward pass to the end of the optimizer step, so every
tensor allocated or freed in them is seen; the tensors alive before (weights, Adam's moments) are
counted from the model and the optimizer. Per strategy:

- `resident_before_mb`: the process's resident memory when training starts (Python, the libraries,
  the data and the model);
- `live_peak_mb`: the highest sum of live tensors during the profiled steps, beyond the weights
  (already in `resident_before_mb`): what training needs at its peak, by the memory profiler's
  categories (activations, gradients, optimizer state, temporaries);
- `floor_mb` = resident before + live peak: the peak resident memory a perfect allocator (no
  freed memory kept, nothing else allocated) would give. The real peaks (VmHWM) are
  peft_speed.py's: the profiler's own records would raise them here.

The ratio of two strategies' floors is what their peak memory ratio tends to as the allocator's
share goes to zero. Two lower bounds on that ratio, against full fine-tuning's run:

- `no_activations`: both floors without their activations (everything else as measured): the
  ratio if a strategy kept exactly as many activations as full fine-tuning and both kept none;
- `torch_only`: both floors with the resident memory before training cut to `torch_import_mb`
  (the process's resident memory after `import torch`, before anything else), activations as
  measured: the ratio if the libraries, data and weights cost nothing.

Results: benchmarks/results/live_memory.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from _children import report_child, run_children, status_mb, write_results

PROFILED_STEPS = (6, 7)


def _live_peak(prof: Any) -> tuple[float, dict[str, float]]:
    """Highest sum of the tensors allocated (and not yet freed) inside the profile, in MB, and
    its make-up by category at that moment."""
    from torch.profiler._memory_profiler import Action

    memory = prof._memory_profile()  # private, but the only per-tensor CPU timeline torch offers
    live: dict[Any, tuple[int, Any]] = {}
    current = peak = 0
    at_peak: dict[str, float] = {}
    for _, action, (key, version), size in memory.timeline:
        if action == Action.CREATE:
            current += size
            live[key] = (size, version)
        elif action == Action.DESTROY:
            current -= live.pop(key, (size, None))[0]
        if current > peak:
            peak = current
            at_peak = {}
            for k, (sz, ver) in live.items():
                category = memory._categories.get(k, ver)
                name = category.name.lower() if category is not None else "unknown"
                at_peak[name] = at_peak.get(name, 0.0) + sz / 2**20
    return peak / 2**20, {k: round(v, 1) for k, v in sorted(at_peak.items())}


def child(name: str, n_train: int) -> dict[str, Any]:
    import torch

    torch_import = status_mb("VmRSS")
    import transformers
    from torch.optim.optimizer import register_optimizer_step_post_hook
    from torch.profiler import ProfilerActivity, profile

    import peft_speed  # benchmarks/ is on sys.path

    state: dict[str, Any] = {"step": 0, "prof": None, "peaks": [], "before": None}
    training_step = transformers.Trainer.training_step

    def profiled_step(self: Any, model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        state["step"] += 1
        if state["before"] is None:
            state["before"] = status_mb("VmRSS")
        if state["step"] in PROFILED_STEPS:
            optimizer = self.optimizer
            moments = sum(
                t.numel() * t.element_size()
                for s in optimizer.state.values()
                for t in s.values()
                if torch.is_tensor(t)
            )
            state["moments_mb"] = moments / 2**20
            state["prof"] = profile(
                activities=[ProfilerActivity.CPU],
                profile_memory=True,
                record_shapes=True,
                with_stack=True,
            )
            state["prof"].start()
            state["shape"] = list(inputs["input_ids"].shape)
        return training_step(self, model, inputs, *args, **kwargs)

    def after_optimizer(*_: Any) -> None:
        if state["prof"] is not None:
            state["prof"].stop()
            peak, parts = _live_peak(state["prof"])
            # tensors alive before the step and kept through it (Adam's moments) count too
            state["peaks"].append((peak + state["moments_mb"], parts, state["shape"]))
            state["prof"] = None

    transformers.Trainer.training_step = profiled_step
    register_optimizer_step_post_hook(after_optimizer)
    result = peft_speed.child(name, n_train)
    live, parts, shape = max(state["peaks"], key=lambda p: p[0])
    return {
        "strategy": name,
        "batch_shape": shape,
        "resident_before_mb": round(state["before"], 1),
        "optimizer_state_mb": round(state["moments_mb"], 1),
        "live_peak_mb": round(live, 1),
        "live_at_peak": parts,
        "floor_mb": round(state["before"] + live, 1),
        "torch_import_mb": round(torch_import, 1),
        "real_tokens_per_second": result["real_tokens_per_second"],  # slowed by the profiler
    }


def bounds(run: dict[str, Any], full: dict[str, Any]) -> dict[str, float]:
    """`run`'s floor over `full`'s with no activations in either, and with only torch resident."""

    def without_activations(r: dict[str, Any]) -> float:
        return r["floor_mb"] - r["live_at_peak"].get("activation", 0.0)

    def torch_only(r: dict[str, Any]) -> float:
        return r["floor_mb"] - r["resident_before_mb"] + r["torch_import_mb"]

    return {
        "no_activations": round(without_activations(run) / without_activations(full), 3),
        "torch_only": round(torch_only(run) / torch_only(full), 3),
    }


def markdown(out: dict[str, Any]) -> str:
    runs = out["runs"]
    full = next((r for r in runs if r["strategy"] == "full"), runs[0])
    lines = [
        "# Live tensors against resident memory: SST-2, minilm",
        "",
        f"{out['setup']}. Load average {out['load_average']['start']} at the start, "
        f"{out['load_average']['end']} at the end. Command: `python benchmarks/live_memory.py "
        f"--strategies {','.join(r['strategy'] for r in runs)}`.",
        "",
        "| strategy | resident before training MB | optimizer state MB "
        "| live peak MB (by category) | floor MB | × full | × full, no activations "
        "| × full, only torch resident |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        parts = ", ".join(f"{k} {v:,.0f}" for k, v in r["live_at_peak"].items() if v >= 1)
        b = bounds(r, full)
        lines.append(
            f"| {r['strategy']} | {r['resident_before_mb']:,.0f} | {r['optimizer_state_mb']:,.0f} "
            f"| {r['live_peak_mb']:,.0f} ({parts}) | {r['floor_mb']:,.0f} "
            f"| {r['floor_mb'] / full['floor_mb']:.2f} | {b['no_activations']:.2f} "
            f"| {b['torch_only']:.2f} |"
        )
    torch_mb = ", ".join(f"{r['torch_import_mb']:,.0f}" for r in runs)
    lines += [
        "",
        f"Resident memory after `import torch` alone: {torch_mb} MB. The last two columns are "
        "the floor ratio with neither run keeping any activation (the lowest a strategy that "
        "keeps as many activations as full fine-tuning can reach, however small they get), and "
        "with nothing resident before training but torch itself (activations as measured).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strategies", default="full,lora,lora_fa")
    parser.add_argument("--n", type=int, default=4000, help="training examples")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--output", default="live_memory")
    args = parser.parse_args()
    if args.child:
        report_child(child(args.child, args.n))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    start = round(os.getloadavg()[0], 2)
    runs = run_children(__file__, args.strategies.split(","), ["--n", str(args.n)])
    out = {
        "benchmark": "live tensor peak vs resident peak per strategy, SST-2, minilm",
        "setup": (
            f"{os.cpu_count()} CPU cores, {args.n} SST-2 training sentences, 2,048-token batches, "
            f"2 threads, each strategy's defaults; steps {PROFILED_STEPS} profiled; "
            f"{time.strftime('%Y-%m-%d')}"
        ),
        "runs": runs,
    }
    write_results(args.output, out, start, markdown)


if __name__ == "__main__":
    main()
