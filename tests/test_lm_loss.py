"""The answer-positions-only causal LM loss equals transformers' own loss and gradients, without
ever building a (tokens x vocabulary) tensor; packed rows equal the same examples unpadded."""

from __future__ import annotations

import pytest
import torch

from generation_fixtures import build_llama
from tunewise.training.lm_loss import (
    IGNORE,
    AnswerOnlyLoss,
    causal_nll,
    hidden_states_as_logits,
    supports_position_loss,
)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    path = build_llama(tmp_path_factory.mktemp("lm_loss"), init_std=0.3)
    return AutoModelForCausalLM.from_pretrained(path).float()


def _batch(vocab: int, seed: int = 0) -> tuple[dict, torch.Tensor]:
    """Two right-padded rows whose prompts carry no loss."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (2, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    labels = ids.clone()
    labels[0, :5] = IGNORE  # prompt
    labels[1, :3] = IGNORE
    labels[mask == 0] = IGNORE  # padding
    return {"input_ids": ids, "attention_mask": mask}, labels


def test_loss_and_gradients_equal_transformers(llama):
    inputs, labels = _batch(llama.config.vocab_size)
    llama.zero_grad()
    reference = llama(**inputs, labels=labels).loss  # mean over the shifted labelled tokens
    reference.backward()
    ref_grads = {n: p.grad.clone() for n, p in llama.named_parameters()}
    llama.zero_grad()
    # chunk=3 forces several recomputed chunks
    total, count = causal_nll(llama, {**inputs, "use_cache": False}, labels, chunk=3)
    assert count == int((labels[:, 1:] != IGNORE).sum())
    (total / count).backward()
    assert torch.allclose(total / count, reference, atol=1e-5)
    for name, p in llama.named_parameters():
        assert torch.allclose(p.grad, ref_grads[name], atol=1e-5), name


def test_frozen_head_takes_each_chunks_gradient_in_the_forward_loop(llama):
    """With the head (and the tied embeddings) frozen, as under LoRA: the same loss and
    gradients, the chunks' gradients taken in the forward loop, nothing recomputed."""
    import tunewise.training.lm_loss as lm_loss

    inputs, labels = _batch(llama.config.vocab_size, seed=2)
    head = llama.get_output_embeddings()
    head.weight.requires_grad_(False)
    try:
        llama.zero_grad()
        reference = llama(**inputs, labels=labels).loss
        reference.backward()
        ref_grads = {n: p.grad.clone() for n, p in llama.named_parameters() if p.requires_grad}
        llama.zero_grad()
        calls = []
        original = lm_loss._nll_sum
        lm_loss._nll_sum = lambda *a: calls.append(torch.is_grad_enabled()) or original(*a)
        try:
            total, count = causal_nll(llama, {**inputs, "use_cache": False}, labels, chunk=3)
            assert "FrozenHeadNll" in type(total.grad_fn).__name__
            n_chunks = len(calls)
            (total / count).backward()
        finally:
            lm_loss._nll_sum = original
        assert n_chunks == -(-count // 3) and len(calls) == n_chunks  # none in backward
        assert torch.allclose(total / count, reference, atol=1e-5)
        for name, grad in ref_grads.items():
            assert torch.allclose(dict(llama.named_parameters())[name].grad, grad, atol=1e-5)
    finally:
        head.weight.requires_grad_(True)


def test_head_is_restored_and_tied(llama):
    head = llama.get_output_embeddings()
    with hidden_states_as_logits(llama) as real:
        assert real is head
        out = llama(input_ids=torch.tensor([[3, 4, 5]]), use_cache=False)
        assert out.logits.shape[-1] == llama.config.hidden_size  # states, not logits
    assert llama.get_output_embeddings() is head
    assert head.weight is llama.get_input_embeddings().weight  # tying survived the swap
    out = llama(input_ids=torch.tensor([[3, 4, 5]]))
    assert out.logits.shape[-1] == llama.config.vocab_size


def test_trainer_loss_normalises_over_accumulated_tokens(llama):
    inputs, labels = _batch(llama.config.vocab_size, seed=1)
    loss = AnswerOnlyLoss()
    with torch.no_grad():
        mean = loss(llama, {**inputs, "labels": labels})
        over_all = loss(llama, {**inputs, "labels": labels}, num_items_in_batch=40)
        total, count = causal_nll(llama, dict(inputs), labels)
    assert torch.allclose(mean, total / count)
    assert torch.allclose(over_all, total / 40)


def test_works_through_peft_lora(llama):
    import copy

    from peft import LoraConfig, get_peft_model

    model = get_peft_model(copy.deepcopy(llama), LoraConfig(r=2, target_modules=["q_proj"]))
    assert supports_position_loss(model)
    inputs, labels = _batch(llama.config.vocab_size, seed=2)
    with torch.no_grad():
        reference = model(**inputs, labels=labels).loss
        total, count = causal_nll(model, {**inputs, "use_cache": False}, labels)
    assert torch.allclose(total / count, reference, atol=1e-5)


def test_softcapped_models_keep_their_own_loss(llama):
    import copy

    capped = copy.deepcopy(llama)
    capped.config.final_logit_softcapping = 30.0
    assert supports_position_loss(llama)
    assert not supports_position_loss(capped)


# -- packing ---------------------------------------------------------------------------------------


def _examples(vocab: int) -> list[dict]:
    g = torch.Generator().manual_seed(7)
    out = []
    for n, prompt in ((9, 4), (6, 2), (11, 5)):
        ids = torch.randint(3, vocab, (n,), generator=g).tolist()
        out.append({"input_ids": ids, "labels": [IGNORE] * prompt + ids[prompt:]})
    return out


def test_packed_rows_attend_within_each_example_only(llama):
    from transformers import DataCollatorWithFlattening

    examples = _examples(llama.config.vocab_size)
    packed = DataCollatorWithFlattening(return_position_ids=True)(examples)
    assert set(packed) == {"input_ids", "labels", "position_ids"}  # no mask: block-diagonal
    with torch.no_grad():
        together = llama(
            input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False
        ).logits[0]
        start = 0
        for ex in examples:
            alone = llama(input_ids=torch.tensor([ex["input_ids"]]), use_cache=False).logits[0]
            n = len(ex["input_ids"])
            assert torch.allclose(together[start : start + n], alone, atol=1e-5)
            start += n


def test_packed_loss_and_gradients_equal_unpacked(llama):
    from transformers import DataCollatorWithFlattening

    examples = _examples(llama.config.vocab_size)
    loss = AnswerOnlyLoss()

    def grads(batch: dict) -> tuple[torch.Tensor, dict]:
        llama.zero_grad()
        value = loss(llama, batch)
        value.backward()
        return value.detach(), {n: p.grad.clone() for n, p in llama.named_parameters()}

    packed_loss, packed_grads = grads(
        DataCollatorWithFlattening(return_position_ids=True)(examples)
    )
    width = max(len(e["input_ids"]) for e in examples)

    def pad(values: list, fill: int) -> list:
        return values + [fill] * (width - len(values))

    padded = {
        "input_ids": torch.tensor([pad(e["input_ids"], 0) for e in examples]),
        "attention_mask": torch.tensor([pad([1] * len(e["input_ids"]), 0) for e in examples]),
        "labels": torch.tensor([pad(e["labels"], IGNORE) for e in examples]),
    }
    padded_loss, padded_grads = grads(padded)
    assert torch.allclose(packed_loss, padded_loss, atol=1e-5)
    for name, g in packed_grads.items():
        assert torch.allclose(g, padded_grads[name], atol=1e-5), name


def test_packing_is_refused_where_it_cannot_work():
    from tunewise.config import load_config
    from tunewise.errors import ConfigError

    base = {"model": {"name": "m"}, "data": {"train": "-"}, "training": {"packing": True}}
    with pytest.raises(ConfigError, match="causal-LM generation tasks"):
        load_config({**base, "task": "classification", "strategy": "lora"})
    with pytest.raises(ConfigError, match="virtual tokens"):
        load_config({**base, "task": "instruction", "strategy": "prompt_tuning"})
    assert load_config({**base, "task": "instruction", "strategy": "lora"}).training.packing


def _instruction_run(tmp_path, strategy: str, **training) -> tuple:
    """A tiny instruction run on 24 records, batch 8: (result, its train set tokenized)."""
    from generation_fixtures import instruction_records, write
    from tunewise import api

    model = build_llama(tmp_path / "model")
    train = write(tmp_path / "train.jsonl", instruction_records(24, 1))
    dev = write(tmp_path / "dev.jsonl", instruction_records(6, 2))
    cfg = {
        "model": {"name": str(model), "max_length": 96},
        "task": {"type": "instruction", "eval_generate_samples": 0},
        "data": {"train": str(train), "validation": str(dev)},
        "strategy": strategy,
        "training": {"epochs": 1, "batch_size": 8, **training},
        "output_dir": str(tmp_path / "run"),
    }
    result = api.finetune(cfg)
    predictor = api.load(result.run_dir)
    return result, predictor.task.tokenize(predictor.read(train), predictor.tokenizer)


def test_packed_training_run_counts_every_real_token(tmp_path):
    result, encoded = _instruction_run(tmp_path, "full", packing=True, learning_rate=1e-3)
    training = result.manifest["training"]
    assert training["steps"] == 3
    assert training["real_tokens"] == sum(encoded["length"])  # no padding, every token once
    assert result.metrics["validation"]["loss"] < result.metrics["validation"]["loss_before"]


def test_answer_tokens_are_counted_as_the_trainer_counts_them():
    labels = [[IGNORE, 5, 6, IGNORE], [7, IGNORE, 8], [9]]
    # a row's first label is never predicted (the shift); the rest count unless ignored
    assert AnswerOnlyLoss.tokens(labels) == 3


def test_trainer_divides_a_training_step_by_the_epochs_tokens_per_step(llama, tmp_path):
    from transformers import TrainingArguments

    from tunewise.training.trainer import TunewiseTrainer

    inputs, labels = _batch(llama.config.vocab_size, seed=2)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    trainer = TunewiseTrainer(model=llama, args=args, loss_module=AnswerOnlyLoss())
    batch = {**inputs, "labels": labels}
    with torch.no_grad():
        total, count = causal_nll(llama, dict(inputs), labels)
        assert torch.allclose(trainer.compute_loss(llama, batch, num_items_in_batch=7), total / 7)
        trainer.loss_tokens_per_step = 40.0
        assert torch.allclose(trainer.compute_loss(llama, batch, num_items_in_batch=7), total / 40)
        # evaluation (no count from the Trainer) keeps the batch's own mean
        assert torch.allclose(trainer.compute_loss(llama, batch), total / count)


@pytest.mark.parametrize("normalization", ["epoch", "step"])
def test_a_run_records_the_epochs_loss_tokens_per_step(tmp_path, normalization):
    result, encoded = _instruction_run(tmp_path, "lora", epochs=2, loss_normalization=normalization)
    training = result.manifest["training"]
    assert training["steps"] == 6  # 3 per epoch
    if normalization == "epoch":
        want = AnswerOnlyLoss.tokens(encoded["labels"]) / 3
        assert training["loss_tokens_per_step"] == pytest.approx(want, abs=0.01)
    else:
        assert "loss_tokens_per_step" not in training
