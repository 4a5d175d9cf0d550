"""The data preparation pipeline and its outputs.

load → validate → clean → filter → deduplicate (each input file), then split (one file) or check
leakage (separate files), augment the training split, and write `train/validation/test.jsonl`,
`rejected.jsonl` (invalid records), `removed.jsonl` (filtered and duplicate records, each with
its reason), `prepare.json` (every count) and `data_report.md`. Nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunewise.artifacts import write_json
from tunewise.data import dedup
from tunewise.data.arrow import band_matrix, codes, column, equals, keep, texts_at
from tunewise.data.schemas import schema_for
from tunewise.data.split import split_indices
from tunewise.data.steps import Processed, process
from tunewise.errors import DataError
from tunewise.prepare_options import PrepareConfig

SPLITS = ("train", "validation", "test")
# Every file prepare writes into its output directory.
OUTPUTS = (
    *(f"{name}.jsonl" for name in SPLITS),
    "rejected.jsonl",
    "removed.jsonl",
    "prepare.json",
    "data_report.md",
    "length_histogram.png",
)


def check_output_dir(inputs: dict[str, Any], output_dir: Path) -> None:
    """Before any work: the output directory can be one, and no file written there is an
    input (`--output-dir` = the input's folder would overwrite train.jsonl with a split)."""
    if output_dir.exists() and not output_dir.is_dir():
        raise DataError(f"--output-dir '{output_dir}' is a file, not a directory.")
    for parent in output_dir.parents:
        if parent.exists() and not parent.is_dir():
            raise DataError(f"--output-dir '{output_dir}': '{parent}' is not a directory.")
    targets = {(output_dir / name).resolve(): name for name in OUTPUTS}
    for split, path in inputs.items():
        if path and Path(path).resolve() in targets:
            raise DataError(
                f"data prepare would write {targets[Path(path).resolve()]} over its own input "
                f"'{path}' ({split}); choose an --output-dir that holds none of the inputs."
            )


@dataclass
class PrepareResult:
    output_dir: Path
    files: dict[str, Path]  # split name → JSONL file
    counts: dict[str, Any]  # what prepare.json holds
    fingerprint: str  # sha256 over the split files: identifies the prepared dataset


def prepare(
    inputs: str | Path | dict[str, str | Path],
    output_dir: str | Path,
    task: str = "classification",
    options: PrepareConfig | dict[str, Any] | None = None,
    seed: int = 42,
    fmt: str | None = "auto",
) -> PrepareResult:
    """Prepare one file (split by `options.split`) or {train, validation, test} files."""
    opts = _options(options)
    seed = opts.seed if opts.seed is not None else seed
    files = {"train": inputs} if isinstance(inputs, (str, Path)) else dict(inputs)
    if "train" not in files:
        raise DataError("data prepare needs a train file (or a single input to split).")
    check_output_dir(files, Path(output_dir))
    schema = schema_for(task, opts.columns, opts.labels)
    tokenizer = None
    if opts.filter.tokenizer:
        from tunewise.data.filters import load_tokenizer

        tokenizer = load_tokenizer(opts.filter.tokenizer)
    clock = _Clock()
    processed = {
        name: process(path, schema, opts, fmt, tokenizer) for name, path in files.items() if path
    }
    if len(processed) == 1:
        splits = _split(processed["train"], opts, seed)
    else:
        splits = {name: p.rows for name, p in processed.items()}
    clock.lap("load, validate, clean, filter, dedup")
    leakage = _leakage(splits, opts)
    clock.lap("split, leakage check")
    leaked_removed = _drop_leaked(splits, leakage)
    augmented: list[dict[str, Any]] = []
    made: dict[str, int] = {}
    if opts.augment:
        from tunewise.data.augment import augment_records

        originals = [json.loads(r) for r in column(splits["train"], "record")]
        augmented, made = augment_records(originals, schema, opts.augment, seed)

    clock.lap("augment")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.jsonl" for name in splits}
    if (out / "prepare.json").is_file():  # only splits an earlier prepare wrote go
        for stale in set(SPLITS) - set(splits):  # from an earlier run with more splits
            (out / f"{stale}.jsonl").unlink(missing_ok=True)
    for name, rows in splits.items():
        _write_split(paths[name], rows, augmented if name == "train" else [])
    rejected = [r for p in processed.values() for r in p.rejected]
    removed = [r for p in processed.values() for r in p.removed] + leaked_removed
    _write_jsonl(out / "rejected.jsonl", rejected)
    _write_jsonl(out / "removed.jsonl", removed)
    counts = _counts(processed, splits, leakage, augmented, made, seed, opts)
    digest = fingerprint(paths)
    clock.lap("write")
    counts["fingerprint"] = digest
    from tunewise.data.report import write_data_report

    write_data_report(out, counts, splits, processed, rejected, leakage, task)  # adds "stats"
    clock.lap("report")
    counts["seconds"] = clock.laps
    write_json(out / "prepare.json", counts)  # atomic: its presence marks a complete output
    return PrepareResult(out, paths, counts, digest)


def _drop_leaked(splits: dict[str, Any], leakage: dict[str, dict[str, Any]]) -> list[dict]:
    """Remove leaked eval records (policy `drop`) and describe them for removed.jsonl."""
    removed = []
    for name, info in leakage.items():
        if not (info["drop"] and info["n"]):
            continue
        rows = splits[name]
        lines, texts = column(rows, "line"), texts_at(rows, info["idx"])
        for i, text in zip(info["idx"].tolist(), texts, strict=True):
            removed.append(
                {
                    "line": int(lines[i]),
                    "step": "leakage",
                    "reason": f"{name} record also in train (train line {info['pairs'][i]})",
                    "text": text,
                }
            )
        splits[name] = keep(rows, ~np.isin(np.arange(len(rows)), info["idx"]))
    return removed


class _Clock:
    """Wall seconds per pipeline stage, for prepare.json."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.start, 2)
        self.start = now


def _options(options: PrepareConfig | dict[str, Any] | None) -> PrepareConfig:
    from pydantic import ValidationError

    from tunewise.config_errors import format_validation_error
    from tunewise.errors import ConfigError

    if isinstance(options, PrepareConfig):
        return options
    try:
        return PrepareConfig.model_validate(options or {})
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(exc, "data prepare options", PrepareConfig, "prepare")
        ) from None


def _split(p: Processed, opts: PrepareConfig, seed: int) -> dict[str, Any]:
    labels = codes(p.rows, "_label")
    labelled = not bool(equals(p.rows, "_label", "").all())
    groups = p.groups if p.groups is not None else np.arange(len(p.rows))
    parts = split_indices(labels, groups, opts.split, seed, opts.stratify and labelled)
    return {name: keep(p.rows, np.isin(np.arange(len(p.rows)), idx)) for name, idx in parts.items()}


def _leakage(splits: dict[str, Any], opts: PrepareConfig) -> dict[str, dict[str, Any]]:
    """Eval records whose text, or a near duplicate, is in train; acted on per `opts.leakage`."""
    train, d = splits["train"], opts.dedup
    out: dict[str, dict[str, Any]] = {}
    for name in ("validation", "test"):
        if name not in splits or not len(splits[name]):
            continue
        other = splits[name]
        found = dedup.leaked(
            column(train, "_key"),
            column(other, "_key"),
            band_matrix(train) if d.near else None,
            band_matrix(other) if d.near else None,
            lambda idx, other=other: _texts_across(train, other, idx),
            d.threshold,
            d.ngram,
        )
        idx = np.array(sorted(found), dtype=np.int64)
        lines_other, lines_train = column(other, "line"), column(train, "line")
        examples = [
            {"line": int(lines_other[j]), "train_line": int(lines_train[found[j]])}
            for j in idx[:10].tolist()
        ]
        if len(idx) and opts.leakage == "fail":
            raise DataError(
                f"{len(idx)} {name} record(s) also occur (or nearly) in train, e.g. {name} line "
                f"{examples[0]['line']} = train line {examples[0]['train_line']}. Remove them, "
                "or set data.prepare.leakage to drop or warn."
            )
        if len(idx) and opts.leakage == "warn":
            print(f"[tunewise] warning: {len(idx)} {name} record(s) leak from train (kept).")
        out[name] = {
            "n": len(idx),
            "idx": idx,
            "pairs": {j: int(lines_train[found[j]]) for j in idx.tolist()},
            "drop": opts.leakage == "drop",
            "examples": examples,
        }
    return out


def _texts_across(train: Any, other: Any, idx: np.ndarray) -> list[str]:
    n = len(train)
    idx = np.asarray(idx)
    first = texts_at(train, idx[idx < n])
    second = texts_at(other, idx[idx >= n] - n)
    lookup = dict(zip(idx[idx < n].tolist(), first, strict=True))
    lookup.update(zip(idx[idx >= n].tolist(), second, strict=True))
    return [lookup[i] for i in idx.tolist()]


def _write_split(path: Path, rows: Any, extra: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for batch in rows.select_columns(["record"]).iter(batch_size=10_000):
            fh.write("".join(r + "\n" for r in batch["record"]))
        for record in extra:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records),
        encoding="utf-8",
    )


def fingerprint(paths: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for name in sorted(paths):
        digest.update(name.encode())
        with paths[name].open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _counts(
    processed: dict[str, Processed],
    splits: dict[str, Any],
    leakage: dict[str, dict[str, Any]],
    augmented: list[dict[str, Any]],
    made: dict[str, int],
    seed: int,
    opts: PrepareConfig,
) -> dict[str, Any]:
    totals: dict[str, Any] = {}
    for key in ("n_input", "n_rejected", "n_emptied", "n_filtered", "n_exact_duplicates"):
        totals[key] = sum(p.counts[key] for p in processed.values())
    for key in ("n_near_duplicates", "n_conflicting_groups", "n_conflicts_dropped"):
        totals[key] = sum(p.counts[key] for p in processed.values())
    cleaned: dict[str, int] = {}
    for p in processed.values():
        for step, n in p.counts["cleaned"].items():
            cleaned[step] = cleaned.get(step, 0) + n
    sizes = {
        name: len(rows) + (len(augmented) if name == "train" else 0)
        for name, rows in splits.items()
    }
    return {
        **totals,
        "n_leaked": {name: info["n"] for name, info in leakage.items()},
        "n_leaked_dropped": sum(i["n"] for i in leakage.values() if i["drop"]),
        "n_augmented": len(augmented),
        "augmented_by": made,
        "n_output": sum(sizes.values()),
        "splits": sizes,
        **{f"n_{name}": n for name, n in sizes.items()},
        "cleaned": cleaned,
        "files": {name: {"path": p.path, **p.counts} for name, p in processed.items()},
        "seed": seed,
        "options": opts.model_dump(mode="json"),
    }


def stats(
    path: str | Path,
    task: str = "classification",
    fmt: str | None = "auto",
    columns: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Sizes, label distribution, lengths and duplicate counts of one file (nothing removed)."""
    from tunewise.data.report import length_histogram, split_stats
    from tunewise.prepare_options import DedupOptions

    opts = PrepareConfig(on_error="skip", columns=columns or {}, dedup=DedupOptions(remove=False))
    p = process(path, schema_for(task, opts.columns), opts, fmt)
    return {
        "path": str(path),
        "n_records": p.counts["n_input"],
        "n_invalid": p.counts["n_rejected"],
        "n_exact_duplicates": p.counts["n_exact_duplicates"],
        "n_conflicting_groups": p.counts["n_conflicting_groups"],
        **split_stats(p.rows),
        "invalid_examples": p.rejected[:5],
        "length_histogram": length_histogram(p.rows),
    }
