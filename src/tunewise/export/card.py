"""The model card (README.md) written beside an exported model, from the run's manifest."""

from __future__ import annotations

import json
from typing import Any

INTENDED = {
    "classification": "Assigning one of the labels below to a text (or text pair).",
    "token_classification": "Tagging the words of a text with the entity labels below.",
    "extractive_qa": "Extracting the answer to a question as a span of a given context.",
    "multiple_choice": "Picking the best of several candidate answers to a question.",
    "continued_pretraining": "A language model adapted to the domain of its training text.",
}


def model_card(manifest: dict[str, Any], fmt: str, report: dict[str, Any]) -> str:
    """Markdown: task, labels, base model, data fingerprint, strategy, metrics, intended use,
    limits, and how to load the export."""
    task = manifest.get("task", {})
    name = task.get("type", "?")
    labels = (task.get("state") or {}).get("labels") or []
    base = manifest.get("base_model", {})
    strategy = manifest.get("strategy", {})
    metrics = manifest.get("metrics", {})
    data = manifest.get("data", {})
    intended = INTENDED.get(name, "Generating text for the task below, as trained (prompted).")
    lines = [
        "---",
        f"base_model: {base.get('name', '?')}",
        "library_name: " + ("transformers" if fmt == "hf" else "onnxruntime"),
        "tags: [tunewise, " + name + "]",
        "---",
        "",
        f"# {name} model fine-tuned with tunewise",
        "",
        f"- **Task:** `{name}`",
        f"- **Base model:** `{base.get('name', '?')}` ({base.get('model_type', '?')})",
        f"- **Strategy:** `{strategy.get('name', '?')}` ({strategy.get('summary', '')}); "
        f"trainable parameters: {strategy.get('parameters', {}).get('percent', '?')}%"
        + ("; merged into plain weights" if fmt == "hf" else ""),
        f"- **Export:** `{fmt}` ({_how(fmt, report)})",
    ]
    if labels:
        shown = ", ".join(f"`{label}`" for label in labels[:50])
        more = f" … ({len(labels)} in all)" if len(labels) > 50 else ""
        lines.append(f"- **Labels:** {shown}{more}")
    lines += ["", "## Training data", "", "| split | file | examples | sha256 |"]
    lines.append("|---|---|---|---|")
    for split, info in data.items():
        lines.append(
            f"| {split} | `{info.get('path', '?')}` | {info.get('n_examples', '?')} | "
            f"`{info.get('sha256', '?')}` |"
        )
    lines += ["", "## Metrics", ""]
    for split, values in metrics.items():
        if isinstance(values, dict):
            shown = {k: v for k, v in values.items() if isinstance(v, (int, float))}
            lines.append(f"- {split}: " + json.dumps(shown))
    lines += [
        "",
        "## Intended use",
        "",
        intended,
        "",
        "## Limits",
        "",
        "- Measured only on the data above; expect lower quality on text unlike it (domain, "
        "language, length). Inputs longer than the trained maximum length "
        f"({manifest.get('config', {}).get('model', {}).get('max_length', '?')} tokens) are "
        "truncated or windowed.",
        "- It inherits the base model's biases and limitations; check outputs before automated "
        "decisions about people.",
    ]
    if fmt == "onnx":
        lines.append(
            "- The ONNX graph returns raw scores (logits); softmax, thresholds and span decoding "
            "are left to the caller (the labels, in output order, are in `export.json`)."
        )
    return "\n".join(lines) + "\n"


def _how(fmt: str, report: dict[str, Any]) -> str:
    if fmt == "hf":
        return f"`transformers.{report.get('auto_class')}.from_pretrained(DIR)`"
    return "`onnxruntime.InferenceSession('DIR/model.onnx')`"
