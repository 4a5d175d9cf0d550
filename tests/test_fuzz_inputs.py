"""Fuzzing what users feed tunewise (issue 10): random config values and data files with random
corruption (bad bytes, truncated lines, huge fields, wrong types). Every outcome is success or a
TunewiseError (the CLI's exit 2 with a message); never another exception, never a changed
input file."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import sentiment_records
from tunewise.cli import app
from tunewise.config import load_config
from tunewise.errors import TunewiseError

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
KEYS = [
    "training.epochs",
    "training.batch_size",
    "training.learning_rate",
    "training.warmup",
    "training.max_steps",
    "training.save_steps",
    "training.optimizer",
    "training.early_stopping_patience",
    "eval.metric",
    "eval.each_epoch",
    "eval.batch_size",
    "model.max_length",
    "model.pooling",
    "data.format",
    "data.validation_fraction",
    "data.label_map",
    "data.prepare",
    "strategy",
    "strategy.r",
    "task",
    "seed",
    "output_dir",
]


def base() -> dict:
    return {
        "model": {"name": "minilm"},
        "data": {"train": "train.jsonl"},
        "task": {"type": "classification"},
        "strategy": {"name": "lora"},
    }


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), values, min_size=1, max_size=4))
def test_random_config_values_validate_or_raise_a_config_error(changes):
    raw = base()
    for key, value in changes.items():
        section, _, leaf = key.partition(".")
        if leaf:
            if not isinstance(raw.get(section), dict):
                raw[section] = {}
            raw[section][leaf] = value
        else:
            raw[section] = value
    try:
        load_config(raw)
    except TunewiseError as exc:
        assert str(exc)


@FUZZ
@given(st.binary(max_size=300))
def test_random_config_file_bytes_validate_or_raise_a_config_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    path.write_bytes(content)
    try:
        load_config(path)
    except TunewiseError as exc:
        assert str(exc)


def valid_file(fmt: str) -> bytes:
    records = sentiment_records(12, seed=5)
    if fmt == "jsonl":
        return "".join(json.dumps(r) + "\n" for r in records).encode()
    if fmt == "json":
        return json.dumps(records).encode()
    sep = "," if fmt == "csv" else "\t"
    return (
        "text" + sep + "label\n" + "".join(f"{r['text']}{sep}{r['label']}\n" for r in records)
    ).encode()


corruptions = st.lists(
    st.one_of(
        st.tuples(st.just("bytes"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(b"")),
        st.tuples(
            st.just("huge"),
            st.integers(0, 10**6),
            st.sampled_from([b"x" * 200_000, b'"' + b"y" * 150_000 + b'"']),
        ),
        st.tuples(
            st.just("type"),
            st.integers(0, 10**6),
            st.sampled_from(
                [
                    b'{"text": 3, "label": []}\n',
                    b"[1, 2]\n",
                    b'{"text": null}\n',
                    b"null\n",
                    b",,,\n",
                ]
            ),
        ),
    ),
    min_size=1,
    max_size=3,
)


def corrupt(data: bytes, changes: list[tuple[str, int, bytes]]) -> bytes:
    for kind, at, payload in changes:
        at = at % (len(data) + 1)
        if kind == "truncate":
            data = data[:at]
        elif kind == "type":
            start = data.rfind(b"\n", 0, at) + 1
            data = data[:start] + payload + data[start:]
        else:
            data = data[:at] + payload + data[at:]
    return data


def write_corrupt(root: Path, fmt: str, changes: list) -> tuple[Path, bytes]:
    path = root / f"data.{fmt}"
    content = corrupt(valid_file(fmt), changes)
    path.write_bytes(content)
    return path, content


HUGE_CSV = [("huge", 20, b"x" * 200_000)]
BAD_BYTES = [("bytes", 40, b"\xff\xfe")]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fmt=st.sampled_from(["jsonl", "json", "csv", "tsv"]), changes=corruptions)
@example(fmt="csv", changes=HUGE_CSV)
@example(fmt="jsonl", changes=BAD_BYTES)
def test_corrupt_data_files_read_for_training_or_raise_a_data_error(tmp_path_factory, fmt, changes):
    """The readers the tasks train from (cheap, so many examples)."""
    from tunewise.config import SplitFile
    from tunewise.data.load import load_source
    from tunewise.data.readers import read_records
    from tunewise.registry import TASKS

    path, content = write_corrupt(tmp_path_factory.mktemp("fuzz"), fmt, changes)
    cfg = load_config(base())
    task = TASKS.get("classification")(cfg.task, cfg.data, cfg.model)
    for read in (
        lambda: read_records(path),
        lambda: task.read(SplitFile(path=str(path)), fit=True),
        lambda: load_source(path),
    ):
        try:
            read()
        except TunewiseError as exc:
            assert str(exc)
    assert path.read_bytes() == content


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fmt=st.sampled_from(["jsonl", "json", "csv", "tsv"]), changes=corruptions, skip=st.booleans()
)
@example(fmt="csv", changes=HUGE_CSV, skip=False)
@example(fmt="jsonl", changes=BAD_BYTES, skip=True)
def test_corrupt_data_files_through_data_prepare_exit_0_or_2_and_are_never_changed(
    tmp_path_factory, fmt, changes, skip
):
    root = tmp_path_factory.mktemp("fuzz")
    path, content = write_corrupt(root, fmt, changes)
    on_error = "skip" if skip else "fail"
    result = CliRunner().invoke(
        app,
        [
            "data",
            "prepare",
            "--input",
            str(path),
            "--output-dir",
            str(root / "out"),
            "--on-error",
            on_error,
            "--split",
            "0.8,0.2",
        ],
    )
    assert result.exit_code in (0, 2), (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 2:
        assert "error: " in result.output
    assert path.read_bytes() == content
    assert sorted(p.name for p in root.iterdir() if p.name != "out") == [path.name]
