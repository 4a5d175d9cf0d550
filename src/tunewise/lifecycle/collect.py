"""`tunewise data collect`: logged requests + their feedback → a training file for the run's task.

Each request that got feedback becomes one record in the task's own training format (the input
fields the client sent plus the corrected label/answer/output). The records then go through the
data pipeline's validation and exact deduplication (`tunewise.data.steps.process`, the code
`tunewise data prepare` runs), which decides which records survive; the survivors are written
in the task's format. Requests without feedback can be written as an unlabelled pool for
`tunewise data select` (active learning).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from tunewise.artifacts import atomic_write_text, read_manifest
from tunewise.errors import ConfigError, DataError
from tunewise.lifecycle.logs import input_of, read_logs

# Generative tasks: (main input field a bare text fills, field the feedback label fills).
GENERATIVE = {
    "instruction": ("instruction", "output"),
    "generative_qa": ("question", "answer"),
    "summarization": ("document", "summary"),
    "translation": ("source", "target"),
}


def _bio(text: str, entities: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Words of `text` and BIO tags from entity spans ({start, end, label|type|entity})."""
    from tunewise.tasks.token_classification.align import split_words

    words, spans = split_words(text)
    tags = ["O"] * len(words)
    for ent in entities:
        kind = ent.get("label") or ent.get("type") or ent.get("entity")
        inside = [i for i, (s, e) in enumerate(spans) if s < ent["end"] and e > ent["start"]]
        for n, i in enumerate(inside):
            tags[i] = f"{'B' if n == 0 else 'I'}-{kind}"
    return words, tags


def to_record(task: str, inp: dict[str, Any], label: Any) -> dict[str, Any]:
    """One training record of `task` from a request's input and its feedback label."""
    if task == "classification":
        label = label.get("label") if isinstance(label, dict) else label
        keep = {k: inp[k] for k in ("text", "text_pair") if k in inp}
        return {**keep, "label": label}
    if task == "token_classification":
        if isinstance(label, list) and label and all(isinstance(x, dict) for x in label):
            words, tags = _bio(str(inp.get("text", "")), label)
            return {"tokens": words, "tags": tags}
        from tunewise.tasks.token_classification.align import split_words

        tokens = inp.get("tokens")
        words = tokens if isinstance(tokens, list) else split_words(str(inp.get("text", "")))[0]
        return {"tokens": words, "tags": label}
    if task == "extractive_qa":
        record = {"question": inp.get("question"), "context": inp.get("context")}
        if isinstance(label, dict):
            text, start = label.get("text", label.get("answer")), label.get("answer_start")
        else:
            text, start = label, None
        if not text:  # no answer in the context (SQuAD v2)
            return {**record, "answers": {"text": [], "answer_start": []}}
        if start is None:
            start = str(record["context"] or "").find(str(text))
        return {**record, "answers": {"text": [text], "answer_start": [start]}}
    if task == "chat":
        messages = inp.get("messages") or [{"role": "user", "content": inp.get("text")}]
        answer = label.get("content") if isinstance(label, dict) else label
        return {"messages": [*messages, {"role": "assistant", "content": answer}]}
    if task in GENERATIVE:
        main, target = GENERATIVE[task]
        record = {main: inp["text"]} if set(inp) == {"text"} else dict(inp)
        if isinstance(label, dict):
            return {**record, **label}
        return {**record, target: label}
    return {**inp, "label": label}  # multiple choice and tasks added later: their own fields


def collect(
    requests_dir: str | Path,
    output: str | Path,
    task: str | None = None,
    run: str | Path | None = None,
    unlabelled: str | Path | None = None,
) -> dict[str, Any]:
    """Write the training file (and optionally the unlabelled pool); returns the counts."""
    if run is not None:
        run_task = read_manifest(Path(run))["config"]["task"]["type"]
        if task and task != run_task:
            raise ConfigError(f"--task {task} contradicts run '{run}', whose task is {run_task}.")
        task = run_task
    if not task:
        raise ConfigError("data collect needs --task T or --run RUN (whose task it takes).")
    from tunewise.registry import TASKS

    TASKS.get(task)  # an unknown task fails here, with the known ones
    logs = read_logs(requests_dir)
    labelled = [
        (r, logs.feedback[str(r["id"])]) for r in logs.requests if str(r["id"]) in logs.feedback
    ]
    if not labelled and unlabelled is None:
        raise DataError(
            f"No logged request in '{requests_dir}' has feedback (feedback.jsonl: "
            f"{len(logs.feedback)} labels, {logs.n_feedback_unmatched} for unknown ids). Pass "
            "--unlabelled FILE to write the requests as a pool to annotate (`data select`)."
        )
    counts: dict[str, Any] = {
        "task": task,
        "output": None,  # nothing is written while no request has feedback
        "n_requests": len(logs.requests),
        "n_with_feedback": len(labelled),
        "n_rejected": 0,
        "n_duplicates": 0,
        "n_output": 0,
        "n_feedback_unmatched": logs.n_feedback_unmatched,
        "n_bad_lines": len(logs.bad_lines),
        "rejected": [],
        "bad_lines": logs.bad_lines[:10],
    }
    if labelled:
        records = [to_record(task, input_of(r), label) for r, label in labelled]
        kept, rejected, n_dups = _validate_and_dedup(records, task)
        for r in rejected:  # line n of the collected records is the n-th labelled request
            r["id"] = labelled[r["line"] - 1][0]["id"]
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)
        atomic_write_text(Path(output), text)
        counts.update(
            output=str(output),
            n_rejected=len(rejected),
            n_duplicates=n_dups,
            n_output=len(kept),
            rejected=rejected[:10],
        )
    if unlabelled is not None:
        pool = _pool(logs)
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pool)
        atomic_write_text(Path(unlabelled), text)
        counts.update(unlabelled=str(unlabelled), n_unlabelled=len(pool))
    return counts


def _pool(logs: Any) -> list[dict[str, Any]]:
    """Requests without feedback as input records (+ id), exact duplicates dropped."""
    pool, seen = [], set()
    for r in logs.requests:
        if str(r["id"]) in logs.feedback:
            continue
        record = input_of(r)
        key = json.dumps(record, sort_keys=True, ensure_ascii=False)
        if key not in seen:
            seen.add(key)
            pool.append({**record, "id": r["id"]})
    return pool


def _validate_and_dedup(
    records: list[dict[str, Any]], task: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(kept records, rejected {line, reason}, duplicates removed) through the data pipeline's
    per-file steps; tasks without a pipeline schema only lose exact duplicates."""
    from tunewise.data.schemas import has_schema, schema_for

    if not has_schema(task):
        from tunewise.data.dedup import exact_key

        seen, kept = set(), []
        for r in records:
            key = exact_key(json.dumps(r, sort_keys=True, ensure_ascii=False))
            if key not in seen:
                seen.add(key)
                kept.append(r)
        return kept, [], len(records) - len(kept)
    from tunewise.data.arrow import column
    from tunewise.data.steps import process
    from tunewise.prepare_options import PrepareConfig

    with tempfile.TemporaryDirectory(prefix="tunewise-collect-") as tmp:
        path = Path(tmp) / "collected.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        p = process(path, schema_for(task), PrepareConfig(on_error="skip"), "jsonl")
        lines = column(p.rows, "line").tolist()
    rejected = [{"line": r["line"], "reason": r["reason"]} for r in p.rejected]
    # the pipeline decides which survive; they are written as the task reads them (its own
    # field names, which the pipeline's canonical form may rename)
    return [records[int(line) - 1] for line in lines], rejected, p.counts["n_exact_duplicates"]
