"""Generation tasks on tiny random models: a LLaMA with a ChatML template, one without a
template (fallback), and a T5 (seq2seq). Label masks, answer likelihood, training, save/load,
generation with left padding, and the CLI paths (base-model eval, streaming predict)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from generation_fixtures import (
    build_llama,
    build_t5,
    chat_records,
    instruction_records,
    pair_records,
    write,
)
from tunewise import api
from tunewise.cli import app
from tunewise.config import load_config
from tunewise.errors import ConfigError
from tunewise.registry import TASKS
from tunewise.tasks.generation import encoding


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gen-models")
    return {
        "llama": build_llama(root / "llama"),
        "plain": build_llama(root / "plain", chat_template=None),
        "t5": build_t5(root / "t5"),
        "noisy": build_llama(root / "noisy", init_std=0.5),  # emits varied text
    }


def tokenizer_of(path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def make_task(kind: str, model: Path, **options):
    cfg = load_config(
        {
            "model": {"name": str(model), "max_length": 96},
            "task": {"type": kind, **options},
            "data": {"train": "-"},
            "strategy": "full",
        }
    )
    return TASKS.get(kind)(cfg.task, cfg.data, cfg.model)


def labelled_runs(ids: list[int], labels: list[int]) -> list[list[int]]:
    """Maximal runs of consecutive labelled positions, as token ids."""
    runs: list[list[int]] = []
    previous = False
    for tok, lab in zip(ids, labels, strict=True):
        if lab != -100:
            assert lab == tok  # a label is the token itself (the model shifts)
            if not previous:
                runs.append([])
            runs[-1].append(tok)
        previous = lab != -100
    return runs


# -- label masks ---------------------------------------------------------------------------------


def test_single_turn_labels_only_the_answer_and_end_of_turn(models):
    tok = tokenizer_of(models["llama"])
    messages = [
        {"role": "user", "content": "the opposite of hot"},
        {"role": "assistant", "content": "cold"},
    ]
    enc = encoding.encode_conversation(tok, messages, 10_000)
    runs = labelled_runs(enc["input_ids"], enc["labels"])
    assert [tok.decode(r) for r in runs] == ["cold<|im_end|>"]
    # everything before the answer (system turn, user turn, assistant header) is masked
    first = enc["labels"].index(next(x for x in enc["labels"] if x != -100))
    assert tok.decode(enc["input_ids"][:first]).endswith("<|im_start|>assistant\n")


WORD = st.sampled_from(["red", "green", "good", "bad", "hot", "the", "of", "blue", "up", "?"])
TEXT = st.lists(WORD, min_size=1, max_size=6).map(" ".join)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(turns=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=4), system=st.booleans())
@pytest.mark.parametrize("model", ["llama", "plain"])
def test_multi_turn_every_assistant_turn_is_labelled_exactly(models, model, turns, system):
    """With the model's template (ChatML) and with the fallback one: the labelled tokens are
    exactly the assistant turns, each followed by the end-of-turn token, and nothing else."""
    tok = tokenizer_of(models[model])
    messages = [{"role": "system", "content": "be brief"}] if system else []
    for user, assistant in turns:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    enc = encoding.encode_conversation(tok, messages, 10_000)
    runs = labelled_runs(enc["input_ids"], enc["labels"])
    assert [tok.decode(r) for r in runs] == [a + "<|im_end|>" for _, a in turns]
    # and the tokens are the whole rendered conversation
    assert tok.decode(enc["input_ids"]) == encoding.render(tok, messages, generation_prompt=False)


def test_fallback_template_is_used_without_a_chat_template(models):
    tok = tokenizer_of(models["plain"])
    assert tok.chat_template is None
    text = encoding.render(tok, [{"role": "user", "content": "hi"}], generation_prompt=True)
    assert text == "<|im_start|>### User:\nhi\n\n### Assistant:\n"


def test_long_document_is_shortened_and_the_answer_kept(models):
    tok = tokenizer_of(models["llama"])
    task = make_task("summarization", models["llama"])
    document = " ".join(["red green blue black white"] * 60)
    from datasets import Dataset

    encoded = task.tokenize(
        Dataset.from_list([{"document": document, "summary": "red blue", "line": 1}]), tok
    )
    row = encoded[0]
    assert row["length"] == len(row["input_ids"]) <= 96
    runs = labelled_runs(row["input_ids"], row["labels"])
    assert [tok.decode(r) for r in runs] == ["red blue<|im_end|>"]
    assert "Summarize the following article." in tok.decode(row["input_ids"])


def test_seq2seq_encodes_source_and_target(models):
    tok = tokenizer_of(models["t5"])
    task = make_task(
        "translation", models["t5"], source_language="English", target_language="German"
    )
    assert task.seq2seq and task.auto_model == "AutoModelForSeq2SeqLM"
    assert type(task).auto_model == "AutoModelForCausalLM"  # the class-level trait stays a string
    from datasets import Dataset

    row = task.tokenize(Dataset.from_list([{"source": "red", "target": "rot", "line": 1}]), tok)[0]
    assert tok.decode(row["input_ids"]) == "translate English to German: red<|im_end|>"
    assert tok.decode(row["labels"]) == "rot<|im_end|>"


def test_config_errors(models):
    task = make_task("chat", models["t5"])
    with pytest.raises(ConfigError, match="decoder-only"):
        task.build_model(
            __import__("transformers").AutoModelForSeq2SeqLM.from_pretrained(models["t5"])
        )
    task = make_task("summarization", models["llama"], prompt="Sum up {doc}")
    with pytest.raises(ConfigError, match="placeholders may name the record's fields: document"):
        task.conversation({"document": "x", "summary": "y", "line": 1}, with_answer=True)


# -- likelihood and generation -------------------------------------------------------------------


@pytest.mark.parametrize("model,kind", [("llama", "instruction"), ("t5", "summarization")])
def test_answer_nll_matches_the_models_own_loss(models, model, kind):
    """The token-weighted loss equals what the model computes itself, batch by batch."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    from tunewise.tasks.generation.inference import answer_nll

    tok = tokenizer_of(models[model])
    task = make_task(kind, models[model])
    loader = AutoModelForSeq2SeqLM if task.seq2seq else AutoModelForCausalLM
    lm = loader.from_pretrained(models[model]).eval()
    rows = (
        instruction_records(6) if kind == "instruction" else pair_records(6, "document", "summary")
    )
    encoded = task.tokenize(Dataset.from_list([{**r, "line": i} for i, r in enumerate(rows)]), tok)
    nll, n = answer_nll(
        lm, encoded, task.collator(tok), causal=not task.seq2seq, batch_size=4, progress=False
    )
    expected_nll, expected_n = 0.0, 0
    with torch.no_grad():
        for row in encoded:  # one at a time: no padding at all
            ids = torch.tensor([row["input_ids"]])
            labels = torch.tensor([row["labels"]])
            count = (
                int((labels[:, 1:] != -100).sum())
                if not task.seq2seq
                else int((labels != -100).sum())
            )
            expected_nll += float(lm(input_ids=ids, labels=labels).loss) * count
            expected_n += count
    assert n == expected_n and nll == pytest.approx(expected_nll, rel=1e-4)


def test_batched_left_padded_generation_matches_one_by_one(models):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    tok = tokenizer_of(models["llama"])
    task = make_task("instruction", models["llama"], max_new_tokens=6)
    torch.manual_seed(1)
    lm = AutoModelForCausalLM.from_pretrained(models["llama"]).eval()
    # Larger random weights and no special tokens: varied text instead of the newlines and
    # end-of-turn markers a near-zero-initialised model repeats (which all decode to "").
    with torch.no_grad():
        for p in lm.parameters():
            p.normal_(0.0, 0.5)
    lm.generation_config.suppress_tokens = [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id]
    rows = [
        {"instruction": "red", "input": "", "output": "", "line": 0},
        {
            "instruction": "the opposite of good and of hot and up",
            "input": "blue",
            "output": "",
            "line": 1,
        },
        {"instruction": "green blue", "input": "", "output": "", "line": 2},
    ]
    ds = Dataset.from_list(rows)
    batched = task.generate(lm, tok, ds, batch_size=3)
    single = [task.generate(lm, tok, ds.select([i]), batch_size=1)[0] for i in range(3)]
    assert batched == single
    assert all(isinstance(t, str) and t for t in batched)


def test_generative_qa_scores_with_squad():
    from tunewise.config import DataConfig, ModelConfig

    options = TASKS.get("generative_qa").Options()
    task = TASKS.get("generative_qa")(options, DataConfig(train="-"), ModelConfig(name="-"))
    scores = task.score(
        ["Paris", "the big red house"], [["paris", "Paris, France"], ["a red house"]]
    )
    # EM: 1 and 0; F1: 1 and 2·(2/3·1)/(2/3+1) = 0.8 ("big red house" vs "red house")
    assert scores == {"exact_match": 50.0, "f1": pytest.approx(90.0)}


# -- training end to end -------------------------------------------------------------------------


def run_config(model: Path, kind: str, strategy: str, data: dict[str, Path], out: Path, **task):
    return {
        "model": {"name": str(model), "max_length": 64},
        "task": {"type": kind, "eval_generate_samples": 4, "max_new_tokens": 6, **task},
        "data": {"train": str(data["train"]), "validation": str(data["validation"])},
        "strategy": {"name": strategy},
        "training": {
            "epochs": 3,
            "batch_size": 8,
            # adapters on a tiny random model need bigger steps to move in 18 steps
            "learning_rate": 1e-2 if strategy == "lora" else 5e-3,
            "logging_steps": 50,
        },
        "eval": {"each_epoch": False},
        "output_dir": str(out),
        "seed": 0,
    }


CASES = [
    ("llama", "instruction", "full", ("rouge1", "rougeL")),
    ("llama", "chat", "lora", ("rougeL",)),
    ("plain", "generative_qa", "partial", ("exact_match", "f1")),
    ("t5", "summarization", "full", ("rouge1", "rouge2", "rougeL")),
    ("t5", "translation", "lora", ("bleu", "chrf")),
]


def data_for(kind: str, root: Path) -> dict[str, Path]:
    def records(n: int, seed: int) -> list[dict]:
        if kind == "instruction":
            return instruction_records(n, seed)
        if kind == "chat":
            return chat_records(n, seed)
        if kind == "generative_qa":
            return [
                {
                    "question": "which colour is first",
                    "context": r["source"],
                    "answers": [r["target"].split()[0]],
                }
                for r in pair_records(n, "source", "target", seed)
            ]
        names = ("document", "summary") if kind == "summarization" else ("source", "target")
        return pair_records(n, *names, seed=seed)

    return {
        "train": write(root / f"{kind}-train.jsonl", records(48, 1)),
        "validation": write(root / f"{kind}-dev.jsonl", records(12, 2)),
    }


@pytest.mark.parametrize(("model", "kind", "strategy", "keys"), CASES)
def test_training_lowers_loss_and_the_run_reloads(models, tmp_path, model, kind, strategy, keys):
    data = data_for(kind, tmp_path)
    result = api.finetune(run_config(models[model], kind, strategy, data, tmp_path / "run"))
    m = result.metrics["validation"]
    assert m["loss"] < m["loss_before"] - 0.1
    assert m["perplexity"] == pytest.approx(math.exp(m["loss"]))
    assert all(0.0 <= m[k] <= 100.0 for k in keys) and m["n_generated"] == 4
    assert m["n_examples"] == 12 and m["n_tokens"] > 12
    # the saved run (trained tensors only; tied embeddings for full) rebuilds the same model
    predictor = api.load(result.run_dir)
    again = predictor.evaluate(data["validation"], progress=False)
    assert again["loss"] == pytest.approx(m["loss"], rel=1e-5)
    preds = predictor.predict(
        [{"text": "red green"}]
        if kind != "generative_qa"
        else [{"question": "which colour is first", "context": "the red green blue"}]
    )
    assert len(preds) == 1 and isinstance(preds[0]["generated_text"], str)


# -- command line --------------------------------------------------------------------------------


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_cli_eval_of_a_base_model(models, tmp_path):
    data = write(tmp_path / "alpaca.json", instruction_records(8))
    out = tmp_path / "m.json"
    result = invoke(
        "eval", "--model", models["llama"], "--task", "instruction", "--data", data, "--output", out
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert {"loss", "perplexity", "n_examples"} <= set(metrics)
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    # the same numbers through the API
    assert api.evaluate_base(str(models["llama"]), "instruction", data)["loss"] == pytest.approx(
        metrics["loss"]
    )
    result = invoke("eval", "--data", data)
    assert result.exit_code == 2 and "--model NAME with --task" in result.output
    result = invoke("eval", "--model", models["llama"], "--task", "classification", "--data", data)
    assert result.exit_code == 2


def test_cli_predict_streams_one_prompt_and_batches_a_file(models, tmp_path):
    data = data_for("instruction", tmp_path)
    cfg = run_config(models["noisy"], "instruction", "lora", data, tmp_path / "run")
    cfg["training"]["max_steps"] = 2
    run = api.finetune(cfg).run_dir
    predictor = api.load(run)
    expected = predictor.predict(["the opposite of hot"])[0]["generated_text"]
    assert expected  # non-empty, so the streamed text below is a real check
    result = invoke("predict", run, "--text", "the opposite of hot")
    assert result.exit_code == 0 and result.stdout.strip() == expected
    out = tmp_path / "preds.jsonl"
    result = invoke("predict", run, "--input", data["validation"], "--output", out)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 12 and all(isinstance(x["generated_text"], str) for x in lines)
