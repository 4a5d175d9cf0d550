"""peft-backed strategies added for the advisor issue (prompt tuning, prefix tuning, P-tuning,
IA3) on tiny BERT and LLaMA: exactly the intended tensors train, the loss falls, save → load
reproduces predictions, merge reproduces logits where allowed, the artifact holds only what
trained; plus the virtual-token wrapper's alignment and generation with a KV cache."""

from __future__ import annotations

import pytest
import torch

from strategy_helpers import (
    BLOCKS,
    HEAD,
    assert_only_trainable_moved,
    assert_size_matches,
    batch_of,
    build,
    logits_of,
    roundtrip,
    train_steps,
    trainable_elements,
    trainable_names,
)
from tunewise.errors import ConfigError

MODELS = ["tiny_bert", "tiny_llama"]
PROMPT = "backbone.peft_model.prompt_encoder.default."
# Independent of the code: key/value width per layer (LLaMA fixture: 1 KV head of 16 dims).
KV_DIM = {"tiny_bert": 32, "tiny_llama": 16}
IA3_TARGETS = {
    "tiny_bert": ({"attention.self.key": (32, 1), "attention.self.value": (32, 1)}, "output.dense"),
    "tiny_llama": ({"self_attn.k_proj": (16, 1), "self_attn.v_proj": (16, 1)}, "mlp.down_proj"),
}
PEFT = "base_model.model."


@pytest.fixture(params=MODELS)
def model(request):
    return request.param, request.getfixturevalue(request.param)


def expected_trainable(key: str, strategy: str) -> dict[str, tuple[int, ...]]:
    """Names and shapes that must train, written out from the architectures."""
    if strategy == "prompt_tuning":
        return {PROMPT + "embedding.weight": (8, 32), **{h: None for h in HEAD}}
    if strategy == "prefix_tuning":  # keys and values of 2 layers per virtual token
        return {PROMPT + "embedding.weight": (8, 2 * 2 * KV_DIM[key]), **{h: None for h in HEAD}}
    if strategy == "p_tuning":  # embedding + 3-layer MLP (peft's PromptEncoder)
        mlp = {f"{PROMPT}mlp_head.{i}.{w}": None for i in (0, 2, 4) for w in ("weight", "bias")}
        return {PROMPT + "embedding.weight": (8, 32), **mlp, **{h: None for h in HEAD}}
    attention, ffn = IA3_TARGETS[key]
    out = {}
    for i in range(2):
        for leaf, shape in attention.items():
            out[f"{PEFT}{BLOCKS[key]}.{i}.{leaf}.ia3_l.default"] = shape
        out[f"{PEFT}{BLOCKS[key]}.{i}.{ffn}.ia3_l.default"] = (1, 64)  # rescales FFN input
    out.update({f"{PEFT}classifier.modules_to_save.default.{w}": None for w in ("weight", "bias")})
    return out


OPTIONS = {
    "prompt_tuning": {"num_virtual_tokens": 8},
    "prefix_tuning": {"num_virtual_tokens": 8},
    "p_tuning": {"num_virtual_tokens": 8},
    "ia3": {},
}


@pytest.mark.parametrize("strategy", list(OPTIONS))
def test_exactly_the_intended_tensors_train_and_the_loss_falls(model, strategy, toy_data, tmp_path):
    key, model_dir = model
    built, task, train = build(model_dir, toy_data, tmp_path, strategy, **OPTIONS[strategy])
    expected = expected_trainable(key, strategy)
    assert set(trainable_names(built.model)) == set(expected)
    params = dict(built.model.named_parameters())
    for name, shape in expected.items():
        if shape is not None:
            assert tuple(params[name].shape) == shape, name
    batch = batch_of(task, built.tokenizer, train)
    assert_only_trainable_moved(built.model, batch, steps=20, lr=3e-2)


@pytest.mark.parametrize("strategy", list(OPTIONS))
def test_save_load_reproduces_predictions_and_saves_only_what_trained(
    model, strategy, toy_data, tmp_path
):
    _, model_dir = model
    built, task, train = build(model_dir, toy_data, tmp_path, strategy, **OPTIONS[strategy])
    batch = batch_of(task, built.tokenizer, train)
    train_steps(built.model, batch, steps=5, lr=3e-2)
    trained = logits_of(built.model, batch)
    untrained, loaded, size = roundtrip(
        built, model_dir, toy_data, tmp_path, strategy, batch, **OPTIONS[strategy]
    )
    assert not torch.allclose(untrained, trained, atol=1e-4)  # the load is what restores them
    torch.testing.assert_close(loaded, trained, atol=1e-5, rtol=0)
    n = len(trainable_names(built.model))
    assert_size_matches(size, trainable_elements(built.model), n)


def test_ia3_merge_reproduces_logits(model, toy_data, tmp_path):
    _, model_dir = model
    built, task, train = build(model_dir, toy_data, tmp_path, "ia3")
    batch = batch_of(task, built.tokenizer, train)
    assert_only_trainable_moved(built.model, batch, steps=8, lr=5e-2)
    before = logits_of(built.model, batch)
    merged = built.strategy.merge(built.model)
    assert not [n for n, _ in merged.named_parameters() if "ia3" in n]
    assert type(merged).__name__ == "PooledClassifier"
    torch.testing.assert_close(logits_of(merged, batch), before, atol=1e-4, rtol=0)


@pytest.mark.parametrize("strategy", ["prompt_tuning", "prefix_tuning", "p_tuning"])
def test_virtual_token_strategies_refuse_to_merge(strategy, toy_data, tmp_path, tiny_bert):
    built, _, _ = build(tiny_bert, toy_data, tmp_path, strategy, num_virtual_tokens=4)
    with pytest.raises(ConfigError, match="virtual tokens"):
        built.strategy.merge(built.model)


@pytest.mark.parametrize("strategy", ["prompt_tuning", "p_tuning"])
def test_virtual_token_outputs_are_stripped_so_pooling_sees_real_tokens(
    strategy, model, toy_data, tmp_path
):
    """The backbone returns one state per real token (mask-aligned), and a padded example
    gives the same logits as the same example alone: the pad positions stay masked."""
    _, model_dir = model
    built, _, _ = build(model_dir, toy_data, tmp_path, strategy, num_virtual_tokens=5)
    texts = ["good", "the film was really very good and nice"]
    batch = dict(built.tokenizer(texts, padding=True, return_tensors="pt"))
    batch.pop("token_type_ids", None)
    batch["labels"] = torch.tensor([1, 1])
    m = built.model.eval()
    with torch.no_grad():
        hidden = m.backbone(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        assert hidden.shape[:2] == batch["input_ids"].shape
        n = int(batch["attention_mask"][0].sum())
        assert n < batch["input_ids"].shape[1]  # the first text is padded in the batch
        alone = {
            "input_ids": batch["input_ids"][:1, :n],
            "attention_mask": batch["attention_mask"][:1, :n],
        }
        torch.testing.assert_close(m(**alone).logits[0], m(**batch).logits[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("strategy", ["prompt_tuning", "prefix_tuning"])
def test_generation_with_virtual_tokens_matches_uncached_greedy_decoding(strategy, tiny_llama):
    """Inside a causal LM, the cached generation path (virtual tokens already in the cache)
    gives the same tokens as recomputing the whole sequence each step."""
    from transformers import AutoModelForCausalLM

    from tunewise.registry import STRATEGIES

    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_pretrained(tiny_llama)
    cls = STRATEGIES.get(strategy)
    lm = cls(cls.Options(num_virtual_tokens=3)).apply(lm, [])
    with torch.no_grad():  # a non-trivial prompt
        for p in lm.parameters():
            if p.requires_grad:
                p.normal_(0, 1.0)
    lm.eval()
    ids = torch.tensor([[5, 9, 12, 7]])
    cached = lm.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=5, do_sample=False
    )
    seq = ids
    with torch.no_grad():
        for _ in range(5):
            logits = lm(input_ids=seq, attention_mask=torch.ones_like(seq), use_cache=False).logits
            assert logits.shape[1] == seq.shape[1]  # one position per real token
            seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert cached.tolist() == seq.tolist()
    plain = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    with torch.no_grad():  # the virtual tokens really take part
        assert not torch.allclose(plain(input_ids=ids).logits, lm(input_ids=ids).logits, atol=1e-3)


@pytest.mark.parametrize("strategy", ["prompt_tuning", "prefix_tuning"])
def test_virtual_tokens_train_a_token_level_task_end_to_end(strategy, tiny_bert, tmp_path):
    """NER through the real recipe: one logit row per real token (aligned with the labels),
    the loss falls, and the saved run predicts entity spans."""
    import json as json_

    from conftest import write_jsonl
    from tunewise import api

    people = ["alice", "bob", "carol", "dave"]  # out of the toy vocabulary: position is the cue
    records = []
    for i in range(48):
        name = people[i % 4]
        records.append({"tokens": [name, "is", "very", "happy"], "tags": ["B-PER", "O", "O", "O"]})
    train = write_jsonl(tmp_path / "ner.jsonl", records)
    raw = {
        "model": {"name": str(tiny_bert), "max_length": 16},
        "task": {"type": "token_classification"},
        "data": {"train": str(train), "validation": str(train)},
        "strategy": {"name": strategy, "num_virtual_tokens": 4},
        "training": {"epochs": 4, "batch_size": 8, "learning_rate": 3e-2, "logging_steps": 1},
        "eval": {"each_epoch": False},
        "output_dir": str(tmp_path / "run"),
        "seed": 0,
    }
    result = api.finetune(raw)
    history = json_.loads((tmp_path / "run" / "tunewise.json").read_text())["training"]
    assert history["final_train_loss"] < 0.6  # from ~ln(3) = 1.1 for three labels
    assert result.metrics["validation"]["f1"] > 0.9
    prediction = result.load().predict(["bob is very happy"])[0]
    assert [e["text"] for e in prediction["entities"]] == ["bob"]


def test_prompt_tuning_init_text_starts_from_the_text_embeddings(toy_data, tmp_path, tiny_bert):
    built, _, _ = build(
        tiny_bert, toy_data, tmp_path, "prompt_tuning", num_virtual_tokens=4, init_text="good film"
    )
    prompt = dict(built.model.named_parameters())[PROMPT + "embedding.weight"].detach()
    table = built.model.backbone.get_input_embeddings().weight.detach()
    ids = built.tokenizer("good film")["input_ids"]
    text_rows = table[ids]
    for row in prompt:  # every virtual token starts as one of the text's token embeddings
        assert any(torch.equal(row, t) for t in text_rows)
    good = table[built.tokenizer.convert_tokens_to_ids("good")]
    assert any(torch.equal(row, good) for row in prompt)
    random_init, _, _ = build(
        tiny_bert, toy_data, tmp_path / "r", "prompt_tuning", num_virtual_tokens=4
    )
    other = dict(random_init.model.named_parameters())[PROMPT + "embedding.weight"].detach()
    assert not any(torch.equal(row, good) for row in other)


def test_default_prompt_length_follows_the_task(toy_data, tmp_path, tiny_bert):
    """Unset, prompt tuning's soft prompt is 4 tokens where the task trains a head of its own and
    20 for generative tasks; the saved config holds the length used, a set length is kept; the
    same for P-tuning."""
    from tunewise.config import load_config

    built, _, _ = build(tiny_bert, toy_data, tmp_path, "prompt_tuning")
    assert built.strategy.options.num_virtual_tokens == 4
    assert built.strategy.details["num_virtual_tokens"] == 4
    assert built.model.backbone.peft_model.prompt_encoder["default"].embedding.weight.shape[0] == 4
    base = {"model": {"name": "m"}, "data": {"train": "t.jsonl"}, "strategy": "prompt_tuning"}
    assert load_config({**base, "task": "instruction"}).strategy.num_virtual_tokens == 20
    assert load_config({**base, "task": "classification"}).strategy.num_virtual_tokens == 4
    chosen = {
        **base,
        "task": "instruction",
        "strategy": {"name": "prompt_tuning", "num_virtual_tokens": 7},
    }
    assert load_config(chosen).strategy.num_virtual_tokens == 7
    p_tuning = {**base, "task": "classification", "strategy": "p_tuning"}
    assert load_config(p_tuning).strategy.num_virtual_tokens == 4
    assert load_config({**p_tuning, "task": "instruction"}).strategy.num_virtual_tokens == 20


def test_p_tuning_learning_rate_follows_the_task(toy_data, tmp_path, tiny_bert, tiny_llama):
    """P-tuning's default rate is 1e-2 where the task trains a head (the head trains at the
    prompt's rate) and peft's 1e-3 for a generative model; tune's space covers both."""
    from transformers import AutoModelForCausalLM

    from tunewise.strategies.p_tuning import PTuningOptions, PTuningStrategy

    built, _, _ = build(tiny_bert, toy_data, tmp_path, "p_tuning")
    assert built.strategy.details["num_virtual_tokens"] == 4
    assert built.strategy.default_learning_rate(4000) == pytest.approx(1e-2)
    generative = PTuningStrategy(PTuningOptions())
    generative.apply(AutoModelForCausalLM.from_pretrained(tiny_llama), [])
    assert generative.details["num_virtual_tokens"] == 20
    assert generative.default_learning_rate(4000) == pytest.approx(1e-3)
    space = PTuningStrategy.default_search_space()["training.learning_rate"]
    assert space["low"] < 1e-3 and space["high"] > 1e-2
