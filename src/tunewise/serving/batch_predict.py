"""Batch prediction over files of any size: `tunewise predict RUN --input FILE --output FILE`.

The input is read as a stream (JSONL line by line, CSV/TSV row by row) in windows of `window`
records; each window goes to the task's own `predict`, which sorts it by length into batches and
returns predictions in row order. Every output line is one good input record, in input order, and
carries that record's input line number as `"line"` (CSV/TSV: the line the row ends on, as the
readers count; a JSON list: the record's index). Bad records (invalid JSON, not an object,
missing or wrongly typed fields, anything the task refuses) go to `<output>.rejects.jsonl` with
their line and the reason, and the job goes on.

Outputs and rejects are written in input order, a line at a time, each flushed: whatever line was
completely written last (in either file) marks the input line everything before which is done.
`resume=True` finds that line, cuts a torn last line left by a kill, and continues after it, so a
resumed file has no duplicates and no gaps. (Hand-written: no library streams records through a
model with per-record rejects and line-exact resume.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tunewise.errors import TunewiseError
from tunewise.serving.stream_io import Item, count_records, iter_items, last_done_line

# Record fields any task may predict from; a task's options that name fields (`*_field`,
# `fields`) add its own, and a task that declares `input_fields` is taken at its word.
GENERIC_FIELDS = ("text", "text_pair", "question", "context", "choices", "tokens")
GENERIC_FIELDS += ("instruction", "input", "messages", "conversations", "document", "source")


@dataclass
class Summary:
    written: int = 0
    rejected: int = 0
    resumed_after: int | None = None  # input line the job continued after (resume)
    output: str = ""
    rejects: str = ""
    first_reject: str = ""  # "line N: reason" of the first rejected record
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "rejected": self.rejected,
            "resumed_after": self.resumed_after,
            "output": self.output,
            "rejects": self.rejects,
        }


def fold_for_inference(predictor: Any) -> bool:
    """Fold a mergeable strategy (LoRA, IA3, diff pruning) into plain weights in place, so each
    forward pass skips its extra matmuls; True if folded. The predictor then serves inference
    only (`api.merge` and training need an unmerged one: load another)."""
    from tunewise.registry import STRATEGIES
    from tunewise.strategies.base import Strategy

    if predictor.task.needs_unmerged_adapters:  # e.g. DPO: its reference is adapters-off
        return False
    strategy = STRATEGIES.get(predictor.config.strategy.name)(predictor.config.strategy)
    if type(strategy).merge is Strategy.merge:
        return False  # full, partial, frozen, BitFit: nothing to fold
    try:
        predictor.model = strategy.merge(predictor.model).eval()
    except TunewiseError:
        return False  # adapters, virtual tokens: they stay as trained
    except AttributeError:
        return False  # the strategy's wrapper is not at the top (a multi-task run's head)
    return True


def rejects_path(output: Path) -> Path:
    return output.with_name(output.name + ".rejects.jsonl")


# -- records the task can take -----------------------------------------------------------------
def input_fields(task: Any) -> set[str]:
    names = set(GENERIC_FIELDS) | set(task.predict_fields)  # what the task declares it reads
    for key, value in task.options.model_dump().items():
        if key.endswith("_field") or key == "fields":
            values = value.values() if isinstance(value, dict) else [value]
            for v in values:
                items = [v] if isinstance(v, str) else list(v or [])
                names.update(x for x in items if isinstance(x, str))
    return names


def shaper(predictor: Any, text_column: str | None = None) -> Any:
    """A function record → the record the task's `records_to_dataset` takes (the run's text
    columns, or `text_column`, renamed to `text` / `text_pair`, other fields dropped), raising
    ValueError with the reason when a needed field is missing or of the wrong type."""
    from tunewise.tasks.base import Task

    spec = predictor.config.data.split("validation") or predictor.config.data.split("train")
    texts = ([text_column] if text_column else []) + (_names(spec.text_column) if spec else [])
    pairs = _names(spec.text_pair_column) if spec else []
    keep = input_fields(predictor.task)
    cls = type(predictor.task)  # the base's columns (text, text_pair) unless the task has its own
    plain = cls.records_to_dataset is Task.records_to_dataset
    plain = plain and cls.input_columns is Task.input_columns

    def shape(record: dict[str, Any]) -> dict[str, Any]:
        if not plain:  # the task's input_columns / records_to_dataset validate its fields
            return {k: v for k, v in record.items() if k in keep}
        out: dict[str, Any] = {}
        # a second text only when the run was trained on pairs (as `read` does)
        for target, names in [("text", texts), *([("text_pair", pairs)] if pairs else [])]:
            name = next((n for n in [target, *names] if n in record), None)
            if name is None:
                raise ValueError(f"missing field '{(names or [target])[0]}'")
            value = record[name]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                raise ValueError(f"field '{name}' must be a string, got {type(value).__name__}")
            if not value.strip():
                raise ValueError(f"field '{name}' is empty")
            out[target] = value
        return out

    return shape


def _names(value: str | list[str] | None) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


# -- the job -------------------------------------------------------------------------------------
def predict_file(
    predictor: Any,
    input: str | Path,
    output: str | Path | None,
    resume: bool = False,
    batch_size: int = 64,
    window: int = 4096,
    progress: bool = True,
    fmt: str | None = "auto",
    text_column: str | None = None,
) -> dict[str, Any]:
    """Stream `input` through the predictor into `output` (JSONL; None: stdout, rejects to
    stderr); see the module docstring. Returns counts: written, rejected, resumed_after,
    output, rejects."""
    import sys

    from tqdm.auto import tqdm

    source = Path(input)
    if window < 1 or batch_size < 1:
        raise TunewiseError("--window and --batch-size must be at least 1.")
    items = iter_items(source, fmt)
    next_item = next(items, None)  # checks the file and format before anything is written
    items = _chain(next_item, items)
    bar = tqdm(total=count_records(source), unit="rec", desc="predict", disable=not progress)
    if output is None:
        summary = Summary(output="<stdout>", rejects="<stderr>")
        stream(
            predictor,
            items,
            sys.stdout,
            sys.stderr,
            summary,
            None,
            batch_size,
            window,
            bar,
            text_column,
        )
        bar.close()
        return _checked(summary, source)
    out_path = Path(output)
    rej_path = rejects_path(out_path)
    if source.resolve() in (out_path.resolve(), rej_path.resolve()):
        raise TunewiseError(
            f"--output '{out_path}' would overwrite the input file '{source}'; give another name."
        )
    after = None
    if resume:
        done = [n for n in (last_done_line(out_path), last_done_line(rej_path)) if n is not None]
        after = max(done) if done else None
    summary = Summary(resumed_after=after, output=str(out_path), rejects=str(rej_path))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    mode = "a" if resume else "w"
    with out_path.open(mode, encoding="utf-8") as out, _LazyFile(rej_path, mode) as rejects:
        stream(predictor, items, out, rejects, summary, after, batch_size, window, bar, text_column)
    bar.close()
    return _checked(summary, source)


def _checked(summary: Summary, source: Path) -> dict[str, Any]:
    """The counts; a file none of whose records could be predicted is an error, not a job that
    went on (its rejects stay written)."""
    if summary.rejected and not summary.written and summary.resumed_after is None:
        raise TunewiseError(
            f"No record of '{source}' could be predicted: all {summary.rejected} were rejected "
            f"(first: {summary.first_reject}; all in {summary.rejects}). If the text is in another "
            "field, name it with --text-column FIELD."
        )
    return summary.as_dict()


def _chain(first: Item | None, rest: Iterator[Item]) -> Iterator[Item]:
    if first is not None:
        yield first
        yield from rest


def stream(
    predictor: Any,
    items: Iterator[Item],
    out: IO[str],
    rejects: Any,
    summary: Summary,
    after: int | None = None,
    batch_size: int = 64,
    window: int = 4096,
    bar: Any = None,
    text_column: str | None = None,
) -> None:
    """Items (after input line `after`) predicted window by window into `out` / `rejects`
    (anything with `write`); `summary` counts them."""
    shape = shaper(predictor, text_column)
    pending: list[Item] = []
    for item in items:
        if after is not None and item.line <= after:
            if bar is not None:
                bar.update(1)
            continue
        pending.append(item)
        if len(pending) >= window:
            _flush(predictor, pending, shape, batch_size, out, rejects, summary)
            if bar is not None:
                bar.update(len(pending))
            pending = []
    if pending:
        _flush(predictor, pending, shape, batch_size, out, rejects, summary)
        if bar is not None:
            bar.update(len(pending))


def _flush(
    predictor: Any,
    items: list[Item],
    shape: Any,
    batch_size: int,
    out: IO[str],
    rejects: Any,
    summary: Summary,
) -> None:
    """Predict one window and write its outputs and rejects, merged in input order."""
    good: list[Item] = []
    for item in items:
        if item.record is not None and item.reason is None:
            try:
                item.record = shape(item.record)
                good.append(item)
            except ValueError as exc:
                item.reason = str(exc)
    results = _predict_items(predictor, good, batch_size)
    for item in items:
        if item.line in results and item.reason is None:
            line = json.dumps({**results[item.line], "line": item.line}, ensure_ascii=False)
            out.write(line + "\n")
            out.flush()
            summary.written += 1
        else:
            raw = item.raw or json.dumps(item.record, ensure_ascii=False)
            entry = {"line": item.line, "reason": item.reason, "record": raw[:1000]}
            rejects.write(json.dumps(entry, ensure_ascii=False) + "\n")
            summary.rejected += 1
            summary.first_reject = summary.first_reject or f"line {item.line}: {item.reason}"


def _predict_items(predictor: Any, items: list[Item], batch_size: int) -> dict[int, dict]:
    """line → prediction for every item the task accepts; the others get a `reason`. A window
    the task refuses as a whole is retried record by record to find the bad ones."""
    if not items:
        return {}
    try:
        preds = _run(predictor, [i.record for i in items], batch_size)
        return {i.line: p for i, p in zip(items, preds, strict=True)}
    except Exception as exc:  # isolate the record(s) at fault below
        if len(items) == 1:
            items[0].reason = _reason(exc)
            return {}
        first = exc
    out: dict[int, dict] = {}
    for item in items:
        try:
            out[item.line] = _run(predictor, [item.record], batch_size)[0]
        except Exception as exc:  # a bad record is rejected, the job goes on
            item.reason = _reason(exc)
    if not out and not isinstance(first, TunewiseError):
        raise first  # every record fails alike: not the records' fault
    return out


def _run(predictor: Any, records: list[Any], batch_size: int) -> list[dict[str, Any]]:
    return predictor.task.predict_records(
        predictor.model, predictor.tokenizer, records, batch_size, False
    )


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.removeprefix("input 0: ").splitlines()[0][:500]


class _LazyFile:
    """The rejects file, created on its first line (a clean job leaves none), flushed per line."""

    def __init__(self, path: Path, mode: str) -> None:
        self.path, self.mode, self.fh = path, mode, None
        if mode == "w" and path.exists():
            path.unlink()  # a fresh job's rejects start empty (the file is named for this job)

    def write(self, text: str) -> None:
        if self.fh is None:
            self.fh = self.path.open("a", encoding="utf-8")
        self.fh.write(text)
        self.fh.flush()

    def __enter__(self) -> _LazyFile:
        return self

    def __exit__(self, *_: object) -> None:
        if self.fh is not None:
            self.fh.close()
