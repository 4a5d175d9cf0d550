"""The strategy × task matrix: computed from the registries and task traits (a task registered
at run time shows up), enforced at assembly with a clear error, printed by the CLI; and merge
into plain weights for the strategies that allow it."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from strategy_helpers import batch_of, build, logits_of, train_steps
from tunewise.cli import app
from tunewise.errors import ConfigError
from tunewise.registry import STRATEGIES, TASKS
from tunewise.strategies.compat import check_compatible, matrix
from tunewise.tasks.classification import ClassificationTask


class _GenerativeProbe(ClassificationTask):
    """A task with a generative trait and no new head, to see the matrix follow traits."""

    name = "probe_generative"
    generative = True
    head_modules: list[str] = []  # noqa: RUF012


class _Seq2SeqProbe(ClassificationTask):
    name = "probe_seq2seq"
    auto_model = "AutoModelForSeq2SeqLM"


@pytest.fixture
def probes():
    TASKS.register("probe_generative", f"{__name__}:_GenerativeProbe")
    TASKS.register("probe_seq2seq", f"{__name__}:_Seq2SeqProbe")
    yield
    for name in ("probe_generative", "probe_seq2seq"):
        TASKS._entries.pop(name, None)
        TASKS._loaded.pop(name, None)


def test_matrix_covers_every_registered_task_and_strategy(probes):
    data = matrix()
    assert set(data["tasks"]) == set(TASKS.names())
    assert set(data["strategies"]) == set(STRATEGIES.names()) - {"auto"}
    m = data["matrix"]
    assert all(m[s][t]["compatible"] for s in data["strategies"] for t in ["classification"])
    # traits decide: no head → frozen cannot train; encoder-decoder → no virtual tokens
    assert not m["frozen"]["probe_generative"]["compatible"]
    assert "no new head" in m["frozen"]["probe_generative"]["reason"]
    assert m["lora"]["probe_generative"]["compatible"]
    for s in ("prompt_tuning", "prefix_tuning", "p_tuning"):
        assert not m[s]["probe_seq2seq"]["compatible"]
        assert m[s]["probe_generative"]["compatible"]
    assert m["lora"]["probe_seq2seq"]["compatible"]


def test_incompatible_pair_is_a_config_error_naming_alternatives(probes):
    with pytest.raises(ConfigError) as info:
        check_compatible(STRATEGIES.get("frozen"), TASKS.get("probe_generative"))
    message = str(info.value)
    assert "'frozen' cannot train task 'probe_generative'" in message
    assert "lora" in message and "frozen," not in message


def test_cli_strategies_prints_the_matrix_as_json_and_text(probes):
    result = CliRunner().invoke(app, ["strategies", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["matrix"]["frozen"]["probe_generative"]["compatible"] is False
    text = CliRunner().invoke(app, ["strategies"]).output
    assert "probe_generative" in text and "no[" in text and "adapter" in text


@pytest.mark.parametrize("strategy", ["lora", "ia3", "diff_pruning"])
def test_merge_folds_the_update_into_plain_weights(strategy, toy_data, tmp_path, tiny_bert):
    """Strategies whose merge builds a new model: the same logits from a plain PooledClassifier
    whose parameters are exactly the untouched task model's (no adapter tensors left), and not
    the base model's (the trained update is in the weights)."""
    plain, _, _ = build(tiny_bert, toy_data, tmp_path / "plain", "full")
    built, task, train = build(tiny_bert, toy_data, tmp_path, strategy)
    batch = batch_of(task, built.tokenizer, train)
    base = logits_of(plain.model, batch)
    train_steps(built.model, batch, steps=4, lr=1e-2)
    before = logits_of(built.model, batch)
    merged = built.strategy.merge(built.model)
    assert type(merged).__name__ == "PooledClassifier"
    names = {n for n, _ in merged.named_parameters()}
    assert names == {n for n, _ in plain.model.named_parameters()}
    torch.testing.assert_close(logits_of(merged, batch), before, atol=1e-4, rtol=0)
    assert not torch.allclose(logits_of(merged, batch), base, atol=1e-3)


@pytest.mark.parametrize("strategy", ["full", "bitfit", "partial"])
def test_merge_keeps_what_trained_in_place(strategy, toy_data, tmp_path, tiny_bert):
    """Strategies that train the model's own tensors: merge hands back the trained model
    itself (nothing reloaded from the base weights)."""
    built, task, train = build(tiny_bert, toy_data, tmp_path, strategy)
    batch = batch_of(task, built.tokenizer, train)
    trained = {n: p.detach().clone() for n, p in built.model.named_parameters()}
    train_steps(built.model, batch, steps=4, lr=1e-2)
    merged = built.strategy.merge(built.model)
    assert merged is built.model
    changed = [n for n, p in merged.named_parameters() if not torch.equal(p, trained[n])]
    assert changed and all(p.requires_grad for n, p in merged.named_parameters() if n in changed)


def test_qlora_on_cpu_explains_why(toy_data, tmp_path, tiny_bert):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="CUDA GPU"):
        build(tiny_bert, toy_data, tmp_path, "qlora")


def test_api_merge_folds_a_saved_lora_run_and_refuses_an_adapter_run(toy_data, tmp_path, tiny_bert):
    from conftest import toy_config
    from tunewise import api

    run = api.finetune(toy_config(tiny_bert, toy_data, tmp_path / "lora", "lora"))
    predictor = run.load()
    batch = batch_of(predictor.task, predictor.tokenizer, predictor.read(toy_data["validation"]))
    expected = logits_of(predictor.model, batch)
    merged = api.merge(run.run_dir)
    assert type(merged).__name__ == "PooledClassifier"
    assert not [n for n, _ in merged.named_parameters() if "lora" in n]
    torch.testing.assert_close(logits_of(merged, batch), expected, atol=1e-4, rtol=0)
    adapter = api.finetune(toy_config(tiny_bert, toy_data, tmp_path / "adapter", "adapter"))
    with pytest.raises(ConfigError, match="cannot be merged"):
        api.merge(adapter.run_dir)
