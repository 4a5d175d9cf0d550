"""`data.prepare` inside `tunewise train`: prepare the configured files, train on the result.

The prepared splits are written to a temporary directory first (the run directory is only
cleared once data and model have loaded); the report files are copied into the run directory
afterwards, and the prepared dataset's fingerprint and counts go into the manifest.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunewise.config import Config, SplitFile
from tunewise.data.prepare import PrepareResult, prepare

REPORT_FILES = (
    "rejected.jsonl",
    "removed.jsonl",
    "data_report.md",
    "prepare.json",
    "length_histogram.png",
)


@dataclass
class PreparedRun:
    config: Config  # the run's config with data pointing at the prepared splits
    result: PrepareResult

    def manifest(self) -> dict[str, Any]:
        c = self.result.counts
        keys = ("n_input", "n_rejected", "n_exact_duplicates", "n_near_duplicates", "n_output")
        return {
            "fingerprint": self.result.fingerprint,
            **{k: c[k] for k in keys},
            "splits": c["splits"],
            "inputs": {name: f["path"] for name, f in c["files"].items()},
        }

    def copy_reports(self, run_dir: Path) -> None:
        """Report files into the run directory."""
        for name in REPORT_FILES:
            source = self.result.output_dir / name
            if source.is_file():
                shutil.copy2(source, run_dir / name)

    def cleanup(self) -> None:
        """Remove the temporary splits (a copy of the user's data); the recipe calls it on
        every exit path."""
        shutil.rmtree(self.result.output_dir, ignore_errors=True)


def prepare_for_run(cfg: Config) -> PreparedRun | None:
    """Run `data.prepare` on the configured files (None when the section is absent)."""
    options = cfg.data.prepare
    if options is None:
        return None
    train = cfg.data.split("train")
    assert train is not None
    columns = dict(options.columns)
    if cfg.task.type == "classification":  # the data section already names the columns
        for canonical, value in (
            ("text", train.text_column),
            ("text_pair", train.text_pair_column),
            ("label", train.label_column),
        ):
            if value and canonical not in columns:
                columns[canonical] = value if isinstance(value, str) else value[0]
    options = options.model_copy(update={"columns": columns})
    inputs: dict[str, str] = {"train": train.path}
    for name in ("validation", "test"):
        spec = cfg.data.split(name)
        if spec is not None:
            inputs[name] = spec.path
    out = Path(tempfile.mkdtemp(prefix="tunewise-prepare-"))
    try:
        result = prepare(inputs, out, cfg.task.type, options, seed=cfg.seed, fmt=train.format)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    data = cfg.data.model_copy(deep=True)
    pair = "text_pair" if "text_pair" in columns else None
    for name in ("train", "validation", "test"):
        path = result.files.get(name)
        spec = None
        if path is not None and (name == "train" or result.counts["splits"].get(name)):
            spec = SplitFile(path=str(path), format="jsonl")
            if cfg.task.type == "classification":
                spec = spec.model_copy(
                    update={
                        "text_column": "text",
                        "text_pair_column": pair,
                        "label_column": "label",
                    }
                )
        object.__setattr__(data, name, spec)  # bypass re-validation of the other fields
    return PreparedRun(cfg.model_copy(update={"data": data}), result)
