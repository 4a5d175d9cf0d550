"""Defaults the recipe derives from the data: the batch size for small data, the grouping."""

from __future__ import annotations

from tunewise.config import load_config
from tunewise.registry import STRATEGIES
from tunewise.training.plan import length_grouping, small_data_batch


def config(**training) -> object:
    return load_config(
        {
            "model": {"name": "m"},
            "task": {"type": "classification"},
            "data": {"train": "t.jsonl"},
            "training": training,
        }
    )


def test_small_data_halves_the_default_batch_until_an_epoch_has_16_steps():
    for n, want in ((4000, 32), (512, 32), (511, 16), (300, 16), (100, 8), (10, 8)):
        cfg = config()
        small_data_batch(cfg, n)
        assert cfg.training.batch_size == want, n


def test_a_batch_size_or_token_budget_the_user_set_is_kept():
    cfg = config(batch_size=64)
    small_data_batch(cfg, 100)
    assert cfg.training.batch_size == 64
    cfg = config(max_tokens_per_batch=2048)
    small_data_batch(cfg, 100)
    assert cfg.training.batch_size == 32


def test_auto_grouping_follows_the_task_unless_a_token_budget_needs_windows():
    from tunewise.registry import TASKS

    classification, instruction = TASKS.get("classification"), TASKS.get("instruction")
    assert length_grouping(config(), classification) == "none"
    assert length_grouping(config(), instruction) == "window"
    assert length_grouping(config(max_tokens_per_batch=512), classification) == "window"
    assert length_grouping(config(length_grouping="global"), instruction) == "global"


def test_lora_short_runs_reach_eight_times_the_base_rate():
    lora = STRATEGIES.get("lora")(STRATEGIES.get("lora").Options())
    assert lora.default_learning_rate(38) == 4e-3  # √(4000/38) > 8: capped
    assert lora.default_learning_rate(4000) == lora.base_learning_rate
    assert lora.default_learning_rate(250) == 2e-3  # √16 = 4
