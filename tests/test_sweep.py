"""Strategy sweeps: a 3-entry sweep on a tiny model writes a complete report, a failing entry is
recorded without stopping the rest, an interrupted sweep resumes without redoing finished
entries, entries in their own process report their own peak memory, and the CLI wiring."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from conftest import toy_config
from tunewise import sweep as sweep_mod
from tunewise.cli import app
from tunewise.errors import ConfigError

FIELDS = {"strategy", "status", "metrics", "trainable_params", "wall_seconds", "peak_rss_mb"}


def base_config(tiny_bert, toy_data, tmp_path) -> dict:
    raw = toy_config(tiny_bert, toy_data, tmp_path / "unused", "lora")
    raw["training"].pop("learning_rate")  # each strategy's own default
    raw["training"]["epochs"] = 1
    raw["eval"] = {"each_epoch": False}
    return raw


def test_three_entry_sweep_writes_a_complete_report(tiny_bert, toy_data, tmp_path):
    out = tmp_path / "sweep"
    rows = sweep_mod.sweep(
        base_config(tiny_bert, toy_data, tmp_path),
        ["frozen", "qlora", "bitfit"],
        out,
        isolate=False,
    )
    data = json.loads((out / "sweep.json").read_text())
    assert (
        [r["strategy"] for r in data]
        == ["frozen", "qlora", "bitfit"]
        == [r["strategy"] for r in rows]
    )
    for r in data:
        assert set(r) >= FIELDS
    ok = {r["strategy"]: r for r in data if r["status"] == "ok"}
    assert set(ok) == {"frozen", "bitfit"}  # qlora fails on CPU; the sweep went on
    failed = next(r for r in data if r["strategy"] == "qlora")
    assert failed["status"] == "failed" and "CUDA" in failed["error"]
    assert ok["frozen"]["trainable_params"] == 32 * 2 + 2
    assert ok["bitfit"]["trainable_params"] > ok["frozen"]["trainable_params"]
    for r in ok.values():
        assert 0.0 <= r["metrics"]["accuracy"] <= 1.0
        assert r["wall_seconds"] > 0 and r["peak_rss_mb"] > 0
        assert r["artifact_bytes"] >= 4 * r["trainable_params"]
        # each entry took its own default learning rate
        assert r["learning_rate"] > 0
    assert ok["frozen"]["learning_rate"] != ok["bitfit"]["learning_rate"]
    md = (out / "sweep.md").read_text()
    for name in ("frozen", "qlora", "bitfit", "failed", "accuracy"):
        assert name in md
    for png in ("metric_vs_trainable.png", "metric_vs_time.png", "peak_memory.png"):
        assert (out / png).stat().st_size > 1000
        assert png in md


def test_interrupted_sweep_resumes_without_redoing_entries(
    tiny_bert, toy_data, tmp_path, monkeypatch
):
    out = tmp_path / "sweep"
    raw = base_config(tiny_bert, toy_data, tmp_path)
    real, calls = sweep_mod.run_entry, []

    def interrupted(cfg):
        calls.append(cfg["strategy"]["name"])
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user (or the OOM killer) stops the sweep here
        return real(cfg)

    monkeypatch.setattr(sweep_mod, "run_entry", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep_mod.sweep(raw, ["frozen", "bitfit", "partial"], out, isolate=False)
    assert (out / "frozen.result.json").is_file()
    assert not (out / "bitfit.result.json").exists()
    first = (out / "frozen.result.json").read_text()

    calls.clear()
    monkeypatch.setattr(
        sweep_mod, "run_entry", lambda cfg: calls.append(cfg["strategy"]["name"]) or real(cfg)
    )
    rows = sweep_mod.sweep(raw, ["frozen", "bitfit", "partial"], out, isolate=False)
    assert calls == ["bitfit", "partial"]  # frozen was not trained again
    assert (out / "frozen.result.json").read_text() == first
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"]
    assert len(json.loads((out / "sweep.json").read_text())) == 3


def test_entry_in_its_own_process_reports_its_own_memory(tiny_bert, toy_data, tmp_path):
    out = tmp_path / "sweep"
    rows = sweep_mod.sweep(base_config(tiny_bert, toy_data, tmp_path), ["frozen"], out)
    assert rows[0]["status"] == "ok", rows[0]
    assert 100 < rows[0]["peak_rss_mb"] < 4000
    assert (out / "frozen.log").is_file()
    assert (out / "frozen" / "tunewise.json").is_file()  # a normal run directory


def test_unknown_strategy_fails_before_anything_runs(tiny_bert, toy_data, tmp_path):
    with pytest.raises(ConfigError, match="lorra"):
        sweep_mod.sweep(base_config(tiny_bert, toy_data, tmp_path), ["full", "lorra"], tmp_path)
    assert not (tmp_path / "full.result.json").exists()


def test_cli_sweep_reuses_finished_entries_and_writes_the_report(tiny_bert, toy_data, tmp_path):
    raw = base_config(tiny_bert, toy_data, tmp_path)
    out = tmp_path / "sweep"
    sweep_mod.sweep(raw, ["frozen"], out, isolate=False)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    (out / "sweep.json").unlink()
    result = CliRunner().invoke(
        app, ["sweep", str(cfg), "--strategies", "frozen", "--output-dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "already done" in result.output
    assert json.loads((out / "sweep.json").read_text())[0]["status"] == "ok"
    bad = CliRunner().invoke(
        app, ["sweep", str(cfg), "--strategies", "nope", "--output-dir", str(out)]
    )
    assert bad.exit_code == 2 and "Unknown strategy 'nope'" in bad.output


def test_entries_keep_their_own_defaults_and_the_options_the_user_set(
    tiny_bert, toy_data, tmp_path
):
    """LoRA's rank 8 (the default base strategy) must not become LoRA-FA's; a prompt length
    resolved for prompt tuning must not become prefix tuning's; an option the user set
    carries."""
    from tunewise.config import load_config
    from tunewise.sweep import base_config, entry_config

    raw = toy_config(tiny_bert, toy_data, tmp_path / "base", "lora")
    raw["strategy"] = {"name": "lora"}
    _, start = base_config(raw)
    entry = load_config(entry_config(start, "lora_fa", tmp_path / "fa"))
    assert entry.strategy.r == 16 and entry.strategy.alpha == 32
    raw["strategy"] = {"name": "lora", "r": 4}
    _, start = base_config(raw)
    assert load_config(entry_config(start, "lora_fa", tmp_path / "fa")).strategy.r == 4
    raw["strategy"] = {"name": "prompt_tuning"}
    base, start = base_config(raw)
    assert base.strategy.num_virtual_tokens == 4  # resolved for a classifier
    entry = load_config(entry_config(start, "prefix_tuning", tmp_path / "pt"))
    assert entry.strategy.num_virtual_tokens == 20
