"""One input file through validate → clean → measure → filter → deduplicate.

The rows stay a `datasets.Dataset` (Arrow, memory-mapped when read from disk); all per-record
work happens in one batched `map`, in several processes for big inputs. Only small per-record
numbers (hash keys, LSH band hashes, lengths) come into the main process as numpy arrays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunewise.data import dedup, filters
from tunewise.data.arrow import band_matrix, codes, column, equals, keep, take, texts_at
from tunewise.data.clean import Cleaner
from tunewise.data.load import Source, load_source, num_proc_for
from tunewise.data.schemas import Schema
from tunewise.data.validate import check_record, describe, raise_or_collect
from tunewise.errors import DataError
from tunewise.prepare_options import PrepareConfig


@dataclass
class Processed:
    """One file after the per-file steps; `rows` has the feature columns used later."""

    path: str
    rows: Any
    counts: dict[str, Any]
    rejected: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[list[dict[str, Any]]] = field(default_factory=list)
    duplicate_examples: list[dict[str, Any]] = field(default_factory=list)
    groups: np.ndarray | None = None


def first_pass(
    source: Source, schema: Schema, options: PrepareConfig, tokenizer: Any = None
) -> Any:
    """One batched `map` that parses, validates, cleans and measures every record.

    One pass, so each record is decoded from JSON and encoded again once. Columns: line,
    record (canonical, cleaned JSON; the raw text for rejected rows), reason (why the record is
    invalid, "blank" for empty lines, "" when valid), _changed_<step> flags, and the features
    later steps use: _text, _label, _key, _chars, _tokens, _empty, _lang, _bands.
    """
    d, f = options.dedup, options.filter
    hasher = dedup.BandHasher(d.threshold, d.num_perm, d.ngram) if d.near else None
    steps = options.clean.enabled()
    cleaner = Cleaner(options.clean)

    def run(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        out: dict[str, list] = {"line": [], "record": [], "reason": [], "_empty": []}
        flags: dict[str, list] = {s: [] for s in steps}
        texts, labels = [], []
        for line, raw, problem in source.parse(batch, indices):
            record, reason = (None, problem) if problem else check_record(raw, schema)
            out["line"].append(line)
            out["reason"].append(reason)
            if reason:  # invalid or blank: kept as it came, for rejected.jsonl
                out["record"].append(raw if isinstance(raw, str) else json.dumps(raw, default=str))
                out["_empty"].append("")
                texts.append("")
                labels.append("")
                for s in steps:
                    flags[s].append(False)
                continue
            assert record is not None
            if steps:
                cleaner.changed = set()
                record = schema.map_texts(record, cleaner)
                for s in steps:
                    flags[s].append(s in cleaner.changed)
                # cleaning can empty a field (a text that was only an emoji): check again
                again = schema.check(record, schema)
                out["_empty"].append(describe(again) if again else "")
            else:
                out["_empty"].append("")
            out["record"].append(json.dumps(record, ensure_ascii=False, default=str))
            texts.append(schema.text_of(record))
            labels.append(schema.label_key(record))
        chars, tokens = filters.measure(texts, tokenizer)
        out.update({f"_changed_{s}": v for s, v in flags.items()})
        out["_text"], out["_label"] = texts, labels
        out["_key"] = np.array([dedup.exact_key(t) for t in texts], dtype=np.uint64)
        out["_chars"], out["_tokens"] = chars, tokens
        if f.languages:
            out["_lang"] = filters.language_of(texts)
        if hasher is not None:
            out["_bands"] = hasher.batch(texts)
        return out

    return source.ds.map(
        run,
        batched=True,
        with_indices=True,
        remove_columns=source.ds.column_names,
        num_proc=num_proc_for(len(source), options.num_proc),
        desc="validating, cleaning, measuring",
    )


def process(
    path: str | Path,
    schema: Schema,
    options: PrepareConfig,
    fmt: str | None = "auto",
    tokenizer: Any = None,
) -> Processed:
    source = load_source(path, fmt)
    rows = first_pass(source, schema, options, tokenizer)
    blank = equals(rows, "reason", "blank")
    ok = equals(rows, "reason", "")
    bad = np.flatnonzero(~ok & ~blank)
    if len(bad):
        lines, raws = column(rows, "line")[bad], take(rows, "record", bad)
        reasons = take(rows, "reason", bad)
        triples = list(zip(lines.tolist(), raws, reasons, strict=True))
    else:
        triples = []
    rejected = raise_or_collect(path, triples, options.on_error)
    counts: dict[str, Any] = {"n_input": int(len(rows) - blank.sum()), "n_rejected": len(bad)}
    if not counts["n_input"]:
        raise DataError(f"Data file '{path}' holds no records.")
    steps = options.clean.enabled()
    counts["cleaned"] = {s: int(np.sum(column(rows, f"_changed_{s}"))) for s in steps}
    rows = keep(rows, ok).remove_columns(["reason", *(f"_changed_{s}" for s in steps)])
    out = Processed(str(path), rows, counts, rejected)

    # records that cleaning emptied, then length / language bounds
    why = np.full(len(rows), "", dtype=object)
    emptied = np.flatnonzero(~equals(rows, "_empty", ""))
    for i, w in zip(emptied.tolist(), take(rows, "_empty", emptied), strict=True):
        why[i] = f"empty after cleaning: {w}"
    if filters.active(options.filter):
        langs = column(rows, "_lang") if options.filter.languages else None
        bounds = filters.reasons(
            column(rows, "_chars"), column(rows, "_tokens"), langs, options.filter
        )
        why = np.where(why == "", bounds, why)
    counts["n_emptied"] = len(emptied)
    counts["n_filtered"] = int(np.sum(why != "")) - counts["n_emptied"]
    out.removed += _removed(rows, why != "", why, "filter", path)
    rows = keep(rows, why == "")

    # duplicates
    d = options.dedup
    labels = codes(rows, "_label")
    found = dedup.find_duplicates(
        column(rows, "_key") if d.exact else np.arange(len(rows), dtype=np.uint64),
        labels,
        band_matrix(rows) if d.near else None,
        lambda idx: texts_at(rows, idx),
        d.threshold,
        d.ngram,
    )
    counts["n_exact_duplicates"] = int(found.exact.sum())
    counts["n_near_duplicates"] = int(found.near.sum())
    counts["n_candidate_pairs"] = found.candidate_pairs
    counts["n_conflicting_groups"] = len(found.conflicts)
    out.conflicts = [_describe_group(rows, g, path) for g in found.conflicts[:20]]
    out.duplicate_examples = _duplicate_examples(rows, found, path)
    drop = np.zeros(len(rows), dtype=bool)
    if d.remove:
        drop |= found.exact | found.near
    if d.conflicts == "drop" and found.conflicts:
        drop[np.concatenate([np.asarray(g) for g in found.conflicts])] = True
    counts["n_conflicts_dropped"] = int(drop.sum() - (found.exact | found.near)[drop].sum())
    lines = column(rows, "line")
    reason = np.full(len(rows), "", dtype=object)
    for i in np.flatnonzero(drop).tolist():
        kind = "exact duplicate" if found.exact[i] else "near duplicate" if found.near[i] else ""
        origin = f"{_where(path)}{lines[found.group[i]]}"
        reason[i] = f"{kind} of {origin}" if kind else f"conflicting labels with {origin}"
    out.removed += _removed(rows, drop, reason, "dedup", path)
    out.groups = found.group[~drop]
    out.rows = keep(rows, ~drop)
    # group ids must index the kept rows: renumber by position of each group's first kept member
    _, out.groups = np.unique(out.groups, return_inverse=True)
    counts["n_output"] = len(out.rows)
    return out


def _where(path: str | Path) -> str:
    return "record " if str(path).lower().endswith(".json") else "line "


def _removed(rows: Any, mask: np.ndarray, why: np.ndarray, step: str, path: Any) -> list[dict]:
    idx = np.flatnonzero(mask)
    if not len(idx):
        return []
    lines = column(rows, "line")[idx]
    texts = texts_at(rows, idx)
    return [
        {"line": int(line), "step": step, "reason": str(why[i]), "text": text}
        for i, line, text in zip(idx.tolist(), lines.tolist(), texts, strict=True)
    ]


def _describe_group(rows: Any, members: list[int], path: Any) -> list[dict[str, Any]]:
    lines = column(rows, "line")
    labels = codes(rows, "_label")
    texts = texts_at(rows, np.asarray(members))
    return [
        {"line": int(lines[m]), "label": str(labels[m]), "text": t}
        for m, t in zip(members, texts, strict=True)
    ]


def _duplicate_examples(rows: Any, found: dedup.Duplicates, path: Any, n: int = 10) -> list[dict]:
    out = []
    lines = column(rows, "line")
    for kind, mask in (("exact", found.exact), ("near", found.near)):
        idx = np.flatnonzero(mask)[:n]
        if not len(idx):
            continue
        originals = found.group[idx]
        for (i, o), (t, u) in zip(
            zip(idx.tolist(), originals.tolist(), strict=True),
            zip(texts_at(rows, idx), texts_at(rows, originals), strict=True),
            strict=True,
        ):
            out.append(
                {
                    "kind": kind,
                    "line": int(lines[i]),
                    "text": t,
                    "of_line": int(lines[o]),
                    "of_text": u,
                }
            )
    return out
