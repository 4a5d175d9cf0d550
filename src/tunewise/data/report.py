"""Statistics and `data_report.md`: sizes, labels, lengths (with histograms), what each step did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tunewise.data.arrow import column
from tunewise.data.arrow import table as arrow_table

SHOWN = 10  # examples per table


def split_stats(rows: Any) -> dict[str, Any]:
    """Size, label distribution and length statistics (characters, tokens) of one split."""
    labels: dict[str, int] = {}
    if len(rows):
        import pyarrow.compute as pc

        for item in pc.value_counts(arrow_table(rows).column("_label")).to_pylist():
            if item["values"]:
                labels[item["values"]] = item["counts"]
    out: dict[str, Any] = {"n_examples": len(rows), "labels": dict(sorted(labels.items()))}
    for name in ("chars", "tokens"):
        values = column(rows, f"_{name}").astype(float) if len(rows) else np.zeros(0)
        out[f"{name}"] = (
            {
                "min": int(values.min()),
                "mean": round(float(values.mean()), 2),
                "median": round(float(np.median(values)), 2),
                "p95": round(float(np.percentile(values, 95)), 2),
                "max": int(values.max()),
            }
            if len(values)
            else {}
        )
    return out


def length_histogram(rows: Any, bins: int = 20) -> dict[str, dict[str, list]]:
    """Per unit (chars, tokens): bin edges and record counts, for plotting elsewhere (the UI)."""
    out: dict[str, dict[str, list]] = {}
    for name in ("chars", "tokens"):
        values = column(rows, f"_{name}").astype(float) if len(rows) else np.zeros(0)
        if len(values):
            counts, edges = np.histogram(values, bins=min(bins, max(int(np.ptp(values)), 1)))
            out[name] = {"edges": [round(float(e), 2) for e in edges], "counts": counts.tolist()}
    return out


def length_histograms(splits: dict[str, Any], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any(len(rows) for rows in splits.values()):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    for ax, name, unit in ((axes[0], "_chars", "characters"), (axes[1], "_tokens", "tokens")):
        values = {s: column(r, name) for s, r in splits.items() if len(r)}
        top = max(float(np.percentile(v, 99.5)) for v in values.values())
        bins = np.linspace(0, max(top, 1), 40)
        for split, v in values.items():
            weights = np.full(len(v), 1.0 / len(v))  # bar height = share of the split
            ax.hist(np.minimum(v, top), bins=bins, alpha=0.55, label=split, weights=weights)
        ax.set_xlabel(f"length ({unit}; the top 0.5% clipped)")
        ax.set_ylabel("share of the split's examples")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        text = str(v).replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= 90 else text[:87] + "..."

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def write_data_report(
    out: Path,
    counts: dict[str, Any],
    splits: dict[str, Any],
    processed: dict[str, Any],
    rejected: list[dict[str, Any]],
    leakage: dict[str, dict[str, Any]],
    task: str,
) -> Path:
    stats = {name: split_stats(rows) for name, rows in splits.items()}
    counts["stats"] = stats
    md = [f"# Data report ({task})", ""]
    md += ["## Steps", ""]
    steps = [
        ["input records", counts["n_input"]],
        ["rejected (invalid; rejected.jsonl)", counts["n_rejected"]],
        *[[f"cleaned: {s} (records changed)", n] for s, n in counts["cleaned"].items()],
        ["emptied by cleaning (removed.jsonl)", counts["n_emptied"]],
        ["filtered by length / language (removed.jsonl)", counts["n_filtered"]],
        ["exact duplicates", counts["n_exact_duplicates"]],
        ["near duplicates", counts["n_near_duplicates"]],
        ["groups with conflicting labels", counts["n_conflicting_groups"]],
        ["leaked eval records dropped", counts["n_leaked_dropped"]],
        ["augmented training examples", counts["n_augmented"]],
        ["output records", counts["n_output"]],
    ]
    md += [*_table(["step", "records"], steps), ""]
    md += ["## Splits", ""]
    labels = sorted({lab for s in stats.values() for lab in s["labels"]})
    header = ["split", "examples", *labels, "chars mean / p95 / max", "tokens mean / p95 / max"]
    rows = []
    for name, s in stats.items():
        c, t = s["chars"], s["tokens"]
        rows.append(
            [name, counts["splits"].get(name, s["n_examples"])]
            + [s["labels"].get(lab, 0) for lab in labels]
            + [f"{c.get('mean')} / {c.get('p95')} / {c.get('max')}"]
            + [f"{t.get('mean')} / {t.get('p95')} / {t.get('max')}"]
        )
    md += [*_table(header, rows), ""]
    md += ["Sizes include augmented examples; label and length columns describe the originals.", ""]
    if length_histograms(splits, out / "length_histogram.png"):
        md += ["![length histograms](length_histogram.png)", ""]
    examples = [e for p in processed.values() for e in p.duplicate_examples]
    if examples:
        md += ["## Duplicates (examples)", ""]
        md += [
            *_table(
                ["kind", "line", "text", "kept line", "kept text"],
                [[e["kind"], e["line"], e["text"], e["of_line"], e["of_text"]] for e in examples],
            ),
            "",
        ]
    conflicts = [g for p in processed.values() for g in p.conflicts]
    if conflicts:
        md += ["## Conflicting labels (same or near-same text)", ""]
        md += [
            *_table(
                ["group", "line", "label", "text"],
                [
                    [i, m["line"], m["label"], m["text"]]
                    for i, g in enumerate(conflicts[:SHOWN])
                    for m in g
                ],
            ),
            "",
        ]
    if any(info["n"] for info in leakage.values()):
        md += ["## Leakage between splits", ""]
        md += [
            *_table(
                ["split", "leaked records", "examples (line = train line)"],
                [
                    [n, i["n"], ", ".join(f"{e['line']}={e['train_line']}" for e in i["examples"])]
                    for n, i in leakage.items()
                ],
            ),
            "",
        ]
    if rejected:
        md += ["## Rejected records (examples)", ""]
        md += _table(["line", "reason"], [[r["line"], r["reason"]] for r in rejected[:SHOWN]])
        md += [""]
    path = out / "data_report.md"
    path.write_text("\n".join(md) + "\n", encoding="utf-8")
    return path
