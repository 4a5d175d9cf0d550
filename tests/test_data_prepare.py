"""The `tunewise data` commands (interface contract) and `data.prepare` inside `tunewise train`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import sentiment_records, toy_config, write_jsonl
from tunewise.cli import app
from tunewise.config import load_config
from tunewise.errors import ConfigError

runner = CliRunner()


def _messy(tmp_path):
    records = sentiment_records(40, seed=5)
    records[3]["text"] = "<b>" + records[3]["text"] + "</b> &amp; 👍"
    records.append(dict(records[0]))  # exact duplicate
    lines = [json.dumps(r) for r in records]
    lines.insert(10, '{"text": "no label"}')  # line 11
    lines.insert(20, "{broken")  # line 21
    path = tmp_path / "messy.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_prepare_command_writes_the_contract_files(tmp_path):
    out = tmp_path / "out"
    args = ["data", "prepare", "--input", str(_messy(tmp_path)), "--task", "classification"]
    args += ["--output-dir", str(out), "--clean", "all", "--dedup", "near", "--split"]
    args += ["0.8,0.1,0.1", "--on-error", "skip", "--seed", "3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in ("train", "validation", "test", "rejected"):
        assert (out / f"{name}.jsonl").is_file()
    assert (out / "data_report.md").is_file() and (out / "length_histogram.png").is_file()
    counts = json.loads((out / "prepare.json").read_text())
    assert counts["n_input"] == 43
    assert counts["n_rejected"] == 2 and counts["n_exact_duplicates"] == 1
    assert counts["n_near_duplicates"] >= 0 and counts["cleaned"]["html"] == 1
    assert counts["n_output"] == 43 - 2 - 1 - counts["n_near_duplicates"]
    assert sum(counts["splits"].values()) == counts["n_output"]
    assert counts["n_train"] == counts["splits"]["train"]
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"][:20]) for r in rejected] == [
        (11, "field 'label' is mis"),
        (21, "not valid JSON (Expe"),
    ]
    train = (out / "train.jsonl").read_text()
    assert "<b>" not in train and "&amp;" not in train
    # same seed, same output
    again = runner.invoke(app, [a if a != str(out) else str(tmp_path / "b") for a in args])
    assert again.exit_code == 0, again.output
    assert (
        json.loads((tmp_path / "b/prepare.json").read_text())["fingerprint"]
        == (counts["fingerprint"])
    )


def test_prepare_fail_policy_exits_2_with_the_first_problems(tmp_path):
    args = [
        "data",
        "prepare",
        "--input",
        str(_messy(tmp_path)),
        "--output-dir",
        str(tmp_path / "o"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "line 11: field 'label' is missing" in result.output
    assert "line 21: not valid JSON" in result.output


def test_bad_split_ratios_are_config_errors(tmp_path):
    args = [
        "data",
        "prepare",
        "--input",
        str(_messy(tmp_path)),
        "--output-dir",
        str(tmp_path / "o"),
    ]
    result = runner.invoke(app, [*args, "--split", "0.8,0.3"])
    assert result.exit_code == 2 and "sum to 1" in result.output


def test_stats_json(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [*sentiment_records(30, seed=1), {"text": "x"}])
    result = runner.invoke(app, ["data", "stats", str(path), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)  # progress bars go to stderr
    assert stats["n_records"] == 31 and stats["n_invalid"] == 1 and stats["n_examples"] == 30
    assert stats["labels"] == {"neg": 15, "pos": 15}
    assert stats["tokens"]["min"] == stats["tokens"]["max"] == 5
    assert set(stats["chars"]) == {"min", "mean", "median", "p95", "max"}
    text = runner.invoke(app, ["data", "stats", str(path)])
    assert "label pos: 15 (50.0%)" in text.output


def test_prepare_section_is_validated_with_hints(tmp_path):
    raw = toy_config(tmp_path, {"train": "t.jsonl", "validation": "v.jsonl"}, tmp_path / "run")
    raw["data"]["prepare"] = {"dedupe": {"near": True}}
    with pytest.raises(ConfigError, match="did you mean 'dedup'"):
        load_config(raw)
    raw["data"]["prepare"] = {"clean": "all", "split": "0.9,0.1", "on_error": "skip"}
    cfg = load_config(raw)
    assert cfg.data.prepare.split == [0.9, 0.1] and cfg.data.prepare.clean.html


def test_train_runs_the_prepare_section(tiny_bert, tmp_path):
    from tunewise import api

    data = _messy(tmp_path)
    raw = toy_config(tiny_bert, {"train": data, "validation": data}, tmp_path / "run")
    raw["data"] = {
        "train": str(data),
        "prepare": {"on_error": "skip", "clean": "all", "split": [0.7, 0.3]},
    }
    raw["training"]["epochs"] = 1
    result = api.finetune(raw)
    run = result.run_dir
    assert (run / "rejected.jsonl").is_file() and (run / "data_report.md").is_file()
    assert len((run / "rejected.jsonl").read_text().splitlines()) == 2
    prepared = result.manifest["prepared_data"]
    assert len(prepared["fingerprint"]) == 64
    assert prepared["n_input"] == 43 and prepared["n_exact_duplicates"] == 1
    assert result.manifest["data"]["train"]["n_examples"] == prepared["splits"]["train"]
    assert result.manifest["data"]["validation"]["n_examples"] == prepared["splits"]["validation"]
    assert result.metrics["validation"]["n_examples"] == prepared["splits"]["validation"]
