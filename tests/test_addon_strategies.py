"""Training add-ons (adversarial training, distillation, multi-task) under the strategies that
train only part of the model (partial, ia3, prompt_tuning, bitfit): each run finishes, changes
only the tensors its strategy trains, shows its add-on at work in the logs, and reloads to the
same outputs; the combinations the matrix refuses are refused before any model loads."""

from __future__ import annotations

import pytest
import torch
from transformers import TrainerCallback

import tunewise
from conftest import sentiment_records, toy_config, write_jsonl
from strategy_helpers import batch_of, logits_of
from test_multitask import multitask_config, ner_records
from tunewise.errors import ConfigError

# Options that keep each strategy's trained part small and visible on the 2-block tiny BERT.
STRATEGIES = {
    "partial": {"top_blocks": 1},
    "ia3": {},
    "prompt_tuning": {"num_virtual_tokens": 4},
    "bitfit": {},
}
FAST = {"max_steps": 6, "logging_steps": 2, "batch_size": 8, "learning_rate": 1e-2}


def trains(strategy: str, name: str) -> bool:
    """Whether `strategy` trains the parameter `name` (the head always trains)."""
    head = "classifier" in name
    return {
        "partial": "layer.1." in name or head,
        "ia3": "ia3_l" in name or "modules_to_save" in name,  # the head is peft's copy
        "prompt_tuning": "prompt_encoder" in name or head,
        "bitfit": name.endswith(".bias") or head,
    }[strategy]


class Watch(TrainerCallback):
    """Every parameter before and after training, what trained, and the log history."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.model = model
        self.trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        self.before = {n: p.detach().clone() for n, p in model.named_parameters()}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.after = {n: p.detach().clone() for n, p in model.named_parameters()}
        self.logs = list(state.log_history)


def assert_only_trained_moved(watch: Watch, strategy: str) -> None:
    names = set(watch.before)
    assert watch.trainable == {n for n in names if trains(strategy, n)}, strategy
    moved = {n for n in names if not torch.equal(watch.before[n], watch.after[n])}
    assert moved <= watch.trainable, sorted(moved - watch.trainable)[:5]  # frozen: bit-identical
    assert any("classifier" not in n for n in moved), f"{strategy}: only the head trained"


def assert_reloads(trained: torch.nn.Module, run_dir, data_path, task: str | None = None) -> None:
    """The run directory rebuilds the trained model exactly, and predicts."""
    predictor = tunewise.load(run_dir, task=task)
    batch = batch_of(predictor.task, predictor.tokenizer, predictor.read(data_path), n=8)
    torch.testing.assert_close(logits_of(predictor.model, batch), logits_of(trained, batch))
    predictions = predictor.predict(["great superb film", "awful terrible movie"])
    assert len(predictions) == 2


def train(raw: dict, callback: TrainerCallback):
    """`tunewise.finetune` with a Trainer callback watching the run."""
    from tunewise.config import load_config
    from tunewise.training.recipe import finetune

    return finetune(load_config(raw), callbacks=[callback])


def run_config(model, data, out, strategy: str, **sections) -> dict:
    raw = toy_config(model, data, out, strategy, training=FAST, **sections)
    raw["strategy"].update(STRATEGIES[strategy])
    raw.update(eval={"each_epoch": False}, tracking={"backends": []})
    return raw


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("addons")
    return {
        "train": write_jsonl(root / "train.jsonl", sentiment_records(48, seed=1)),
        "validation": write_jsonl(root / "dev.jsonl", sentiment_records(16, seed=2)),
        "s_train": root / "train.jsonl",
        "s_dev": root / "dev.jsonl",
        "n_train": write_jsonl(root / "n.jsonl", ner_records(48, seed=3)),
        "n_dev": write_jsonl(root / "n_dev.jsonl", ner_records(16, seed=4)),
        "root": root,
    }


@pytest.fixture(scope="module")
def teacher(tiny_bert, data):
    raw = toy_config(tiny_bert, data, data["root"] / "teacher", "full", training=FAST)
    raw.update(eval={"each_epoch": False}, tracking={"backends": []})
    return tunewise.finetune(raw).run_dir


@pytest.mark.parametrize(
    "strategy,method",
    [("partial", "pgd"), ("ia3", "freelb"), ("prompt_tuning", "fgm"), ("bitfit", "fgm")],
)
def test_adversarial_training_under_strategy(tiny_bert, data, tmp_path, strategy, method):
    adversarial = {"method": method, "epsilon": 1.0, "steps": 2}
    raw = run_config(tiny_bert, data, tmp_path / "run", strategy)
    raw["training"]["adversarial"] = adversarial
    watch = Watch()
    result = train(raw, watch)
    assert_only_trained_moved(watch, strategy)  # the perturbation never touched the weights
    logged = [h for h in watch.logs if "adversarial_loss" in h]
    assert len(logged) == 3, watch.logs
    assert all(h["adversarial_loss"] != h["clean_loss"] for h in logged)
    assert_reloads(watch.model, result.run_dir, data["validation"])


@pytest.mark.parametrize(
    "strategy,layered",
    [("partial", False), ("ia3", False), ("prompt_tuning", True), ("bitfit", True)],
)
def test_distillation_under_strategy(tiny_bert, data, teacher, tmp_path, strategy, layered):
    """The student trains on α·task + (1−α)·KD (+ block outputs for a layer-reduced student),
    each term logged; prompt tuning's extra positions stay out of the block comparison."""
    distill = {"teacher": str(teacher), "alpha": 0.3}
    if layered:
        distill.update(student_layers=[1], hidden_states=True)
    watch = Watch()
    raw = run_config(tiny_bert, data, tmp_path / "student", strategy, distill=distill)
    result = train(raw, watch)
    if not layered:  # a layer-reduced student has one block: its names say layer.0
        assert_only_trained_moved(watch, strategy)
    logged = [h for h in watch.logs if "kd_loss" in h]
    assert len(logged) == 3, watch.logs
    for h in logged:
        extra = h.get("hidden_loss", 0.0)
        assert ("hidden_loss" in h) == layered
        assert h["kd_loss"] > 0 and h["loss"] != pytest.approx(h["task_loss"], abs=1e-3)
        expected = 0.3 * h["task_loss"] + 0.7 * (h["kd_loss"] + extra)
        assert h["loss"] == pytest.approx(expected, abs=2e-3)
    assert result.manifest["distillation"]["student"]["parameters"] > 0
    assert_reloads(watch.model, result.run_dir, data["validation"])


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_multitask_under_strategy(tiny_bert, data, tmp_path, strategy):
    from tunewise.multitask.task import MultiTask

    raw = multitask_config(tiny_bert, data, tmp_path / "mt", strategy)
    raw["strategy"].update(STRATEGIES[strategy])
    raw["training"].update(FAST)
    raw.update(eval={"each_epoch": False}, tracking={"backends": []})
    watch = Watch()
    result = train(raw, watch)
    assert_only_trained_moved(watch, strategy)
    sentiment, ner = (MultiTask.head(watch.model, n) for n in ("sentiment", "ner"))
    assert sentiment.backbone is ner.backbone  # both heads read the one (strategy-wrapped) body
    logged = [h for h in watch.logs if "loss" in h]
    assert len(logged) == 3 and all("loss_sentiment" in h and "loss_ner" in h for h in logged)
    assert_reloads(sentiment, result.run_dir, data["s_dev"], task="sentiment")
    predictor = tunewise.load(result.run_dir, task="ner")
    batch = batch_of(predictor.task, predictor.tokenizer, predictor.read(data["n_dev"]), n=8)
    torch.testing.assert_close(logits_of(predictor.model, batch), logits_of(ner, batch))


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_distilling_a_multitask_run_is_refused_before_any_model_loads(
    tiny_bert, data, teacher, tmp_path, strategy, monkeypatch
):
    from tunewise import assemble as assemble_module
    from tunewise.strategies.compat import matrix

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(assemble_module, "load_base", no_loading)
    raw = multitask_config(tiny_bert, data, tmp_path / "refused", strategy)
    raw["strategy"].update(STRATEGIES[strategy])
    raw["distill"] = {"teacher": str(teacher)}
    with pytest.raises(ConfigError) as info:
        tunewise.finetune(raw)
    message = str(info.value)
    assert "'distill' cannot train task 'multitask'" in message and "one head per task" in message
    assert not (tmp_path / "refused").exists()
    assert matrix()["addons"]["distill"]["multitask"]["compatible"] is False
