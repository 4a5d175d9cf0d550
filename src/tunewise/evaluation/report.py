"""report.md for a run: what ran, how fast, how well, with the plots beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunewise.artifacts import atomic_write_text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _checkpoint_choice(train: dict[str, Any], metrics: dict[str, Any]) -> str:
    """Which split chose the saved weights, and which split no choice was made on."""
    split = train.get("best_checkpoint_split")
    if not split:
        chosen = "the last step (no per-epoch evaluation chose among epochs)"
    else:
        chosen = f"the best epoch by {split} {train.get('best_checkpoint_metric', '')}".rstrip()
    if "test" in metrics:
        return f"{chosen}; the test metrics are on data no choice was made on"
    if split:
        return f"{chosen}; no test split given, so the {split} figures are the ones it chose on"
    return chosen


def write_report(run_dir: Path, manifest: dict[str, Any], plots: dict[str, Path]) -> Path:
    params = manifest["strategy"]["parameters"]
    train = manifest["training"]
    base = manifest["base_model"]
    lines = [
        f"# tunewise run: {manifest['task']['type']} with {manifest['strategy']['name']}",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{base['name']}` ({base['model_type']}) |",
        f"| strategy | {manifest['strategy']['name']}: {manifest['strategy']['summary']} |",
        f"| trainable parameters | {params['trainable']:,} of {params['total']:,} "
        f"({params['percent']:.2f}%) |",
        f"| learning rate | {train['learning_rate']:g} ({train['learning_rate_source']}) |",
        f"| examples (train / validation) | {train['n_train']:,} / {train['n_validation']:,} |",
        f"| optimizer steps | {train['steps']:,} ({train['epochs']:g} epochs) |",
        f"| wall time (training) | {train['train_seconds']:.1f} s |",
        f"| real (non-pad) tokens/s | {train['real_tokens_per_second']:,.0f} |",
        f"| checkpoint | {_checkpoint_choice(train, manifest['metrics'])} |",
        "",
    ]
    for split, metrics in manifest["metrics"].items():
        lines += [f"## {split} metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in metrics.items() if isinstance(v, (int, float))]
        per_class = metrics.get("per_class")
        if per_class:
            lines += ["", "| label | precision | recall | f1 | support |", "|---|---|---|---|---|"]
            for name, row in per_class.items():
                lines.append(
                    f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | "
                    f"{row['f1-score']:.3f} | {int(row['support'])} |"
                )
        lines.append("")
    for title, path in plots.items():
        lines += [f"## {title}", "", f"![{title}]({path.name})", ""]
    path = run_dir / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
