"""Continued pretraining: packing (property tests), reading raw text, the objective chosen from
the model, evaluation that agrees with the models' own loss and is independent of batching, and
whole runs (causal and masked LM, several strategies) whose perplexity falls, saved and loaded
back (tied embeddings included)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import NEGATIVE, POSITIVE, _tokenizer, write_jsonl
from tunewise import api
from tunewise.assemble import assemble
from tunewise.config import SplitFile, load_config
from tunewise.errors import ConfigError, DataError
from tunewise.registry import TASKS
from tunewise.tasks.packing import pack

# ----------------------------------------------------------------------------------- packing


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 1000), max_size=40), max_size=12),
    st.integers(1, 17),
)
def test_packing_keeps_every_token_once_in_order(sequences, block_size):
    blocks = pack(sequences, block_size)
    flat = [t for s in sequences for t in s]
    assert [t for b in blocks for t in b] == flat
    assert len(blocks) == math.ceil(len(flat) / block_size)
    assert all(len(b) == block_size for b in blocks[:-1])
    if blocks:
        assert 1 <= len(blocks[-1]) <= block_size


def test_packing_rejects_a_zero_block_size():
    with pytest.raises(ValueError, match="block_size"):
        pack([[1, 2]], 0)


# ------------------------------------------------------------------------------------- data


def documents(n: int, seed: int) -> list[str]:
    """Short documents with a repeated structure a tiny LM can learn."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = POSITIVE if rng.random() < 0.5 else NEGATIVE
        out.append(
            " ".join(
                f"the {rng.choice(['film', 'movie', 'plot', 'story'])} was very {rng.choice(words)}"
                for _ in range(rng.randint(1, 4))
            )
        )
    return out


@pytest.fixture
def lm_data(tmp_path) -> dict[str, Path]:
    return {
        "train": write_jsonl(tmp_path / "train.jsonl", [{"text": d} for d in documents(80, 1)]),
        "validation": write_jsonl(tmp_path / "dev.jsonl", [{"text": d} for d in documents(20, 2)]),
    }


def lm_config(model_dir: Path, data: dict[str, Path], out: Path, strategy: str = "full", **kw):
    cfg = {
        "model": {"name": str(model_dir), "max_length": 16},
        "task": {"type": "continued_pretraining"},
        "data": {"train": str(data["train"]), "validation": str(data["validation"])},
        "strategy": {"name": strategy},
        "training": {"epochs": 4, "batch_size": 8, "learning_rate": 1e-2, "logging_steps": 5},
        "eval": {"batch_size": 8},
        "output_dir": str(out),
        "seed": 0,
    }
    for section, values in kw.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    return cfg


def make_task(model_dir: Path, data: dict[str, Path], tmp_path: Path, **task_options):
    raw = lm_config(model_dir, data, tmp_path / "run", task=task_options)
    cfg = load_config(raw)
    return TASKS.get("continued_pretraining")(cfg.task, cfg.data, cfg.model), cfg


def test_plain_text_one_document_per_line_or_paragraph(tiny_llama, lm_data, tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("first doc\n\nsecond doc\nstill second\n\n\nthird\n", encoding="utf-8")
    task, _ = make_task(tiny_llama, lm_data, tmp_path)
    lines = task.read(SplitFile(path=str(path), format="auto"))
    assert lines["text"] == ["first doc", "second doc", "still second", "third"]
    assert lines["line"] == [1, 3, 4, 7]
    task, _ = make_task(tiny_llama, lm_data, tmp_path, text_documents="paragraph")
    paragraphs = task.read(SplitFile(path=str(path), format="auto"))
    assert paragraphs["text"] == ["first doc", "second doc still second", "third"]
    assert paragraphs["line"] == [1, 3, 7]


def test_bad_text_records_name_file_line_and_field(tiny_llama, lm_data, tmp_path):
    task, _ = make_task(tiny_llama, lm_data, tmp_path)
    path = write_jsonl(tmp_path / "bad.jsonl", [{"text": "fine"}, {"text": "  "}])
    with pytest.raises(DataError, match=r"bad.jsonl, line 2: field 'text' is missing or empty"):
        task.read(SplitFile(path=str(path), format="auto"))
    path = write_jsonl(tmp_path / "other.jsonl", [{"body": "fine"}])
    with pytest.raises(DataError, match=r"no text field 'text'; the records have 'body'"):
        task.read(SplitFile(path=str(path), format="auto"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no text"):
        task.read(SplitFile(path=str(empty), format="auto"))


def test_objective_and_model_class_come_from_the_model(tiny_llama, tiny_bert, lm_data, tmp_path):
    decoder, _ = make_task(tiny_llama, lm_data, tmp_path)
    encoder, _ = make_task(tiny_bert, lm_data, tmp_path)
    assert (decoder.objective, decoder.auto_model) == ("causal", "AutoModelForCausalLM")
    assert (encoder.objective, encoder.auto_model) == ("masked", "AutoModelForMaskedLM")
    assert TASKS.get("continued_pretraining").auto_model == "AutoModelForCausalLM"  # class level
    forced, _ = make_task(tiny_bert, lm_data, tmp_path, objective="causal")
    assert forced.auto_model == "AutoModelForCausalLM"


@pytest.mark.parametrize("model_fixture", ["tiny_llama", "tiny_bert"])
def test_blocks_hold_every_document_token_in_order(model_fixture, lm_data, tmp_path, request):
    model_dir = request.getfixturevalue(model_fixture)
    task, cfg = make_task(model_dir, lm_data, tmp_path)
    built = assemble(cfg, task)
    tok = built.tokenizer
    ds = task.read(cfg.data.split("train"))
    enc = task.tokenize(ds, tok)
    per_doc = [tok(t)["input_ids"] for t in ds["text"]]  # [CLS] ... [SEP]: ends with the separator
    flat = [t for ids in per_doc for t in ids]
    assert [t for b in enc["input_ids"] for t in b] == flat
    assert all(n == 16 for n in enc["length"][:-1]) and enc["length"] == [
        len(b) for b in enc["input_ids"]
    ]
    if task.objective == "causal":
        assert enc["labels"] == enc["input_ids"]
    else:
        assert "labels" not in enc.column_names  # the masking collator makes them


def test_decoder_documents_end_with_eos(tiny_llama, lm_data, tmp_path):
    """Each document ends with EOS, appended when the tokenizer does not put it there itself
    (SmolLM2's adds no end marker); documents then stay apart once packed."""
    from datasets import Dataset

    task, cfg = make_task(tiny_llama, lm_data, tmp_path)
    tok = assemble(cfg, task).tokenizer
    texts = Dataset.from_dict({"text": ["good film", "bad plot"]})
    plain = [tok(t)["input_ids"] for t in texts["text"]]  # [CLS] ... [SEP]
    tok.eos_token = "[SEP]"  # already last: nothing added
    assert task._document_ids(texts, tok) == plain
    tok.eos_token = "[MASK]"  # stands in for an EOS the tokenizer never adds
    assert task._document_ids(texts, tok) == [[*ids, tok.mask_token_id] for ids in plain]


# ------------------------------------------------------------------------------- evaluation


@pytest.mark.parametrize("model_fixture", ["tiny_llama", "tiny_bert"])
def test_loss_matches_the_models_own_loss(model_fixture, lm_data, tmp_path, request):
    """Summed per-token NLL / target count equals the HF model's mean loss on the same block."""
    model_dir = request.getfixturevalue(model_fixture)
    task, cfg = make_task(model_dir, lm_data, tmp_path)
    built = assemble(cfg, task)
    ds = task.read(cfg.data.split("validation"))
    enc = task.tokenize(ds, built.tokenizer)
    one = enc.select([0])
    metrics = task.evaluate(built.model, built.tokenizer, ds.select([0]), one, progress=False)
    row = task._eval_rows(one, built.tokenizer)[0]
    with torch.no_grad():
        out = built.model(
            input_ids=torch.tensor([row["input_ids"]]),
            attention_mask=torch.tensor([row["attention_mask"]]),
            labels=torch.tensor([row["labels"]]),
        )
    assert metrics["loss"] == pytest.approx(out.loss.item(), rel=1e-5)
    assert metrics["perplexity"] == pytest.approx(math.exp(out.loss.item()), rel=1e-5)


@pytest.mark.parametrize("model_fixture", ["tiny_llama", "tiny_bert"])
def test_evaluation_does_not_depend_on_batch_size(model_fixture, lm_data, tmp_path, request):
    """Padding is ignored and masked-LM masks are fixed per block, so any batching agrees."""
    model_dir = request.getfixturevalue(model_fixture)
    task, cfg = make_task(model_dir, lm_data, tmp_path)
    built = assemble(cfg, task)
    ds = task.read(cfg.data.split("validation"))
    enc = task.tokenize(ds, built.tokenizer)
    a = task.evaluate(built.model, built.tokenizer, ds, enc, batch_size=1, progress=False)
    b = task.evaluate(built.model, built.tokenizer, ds, enc, batch_size=7, progress=False)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    assert a["n_tokens"] == b["n_tokens"] > 0 and a["n_examples"] == 20
    if task.objective == "masked":  # ~15% of the non-special tokens are targets
        assert 0.05 < a["n_tokens"] / sum(enc["length"]) < 0.3


def test_frozen_is_refused_before_loading(tiny_llama, lm_data, tmp_path):
    cfg = load_config(lm_config(tiny_llama, lm_data, tmp_path / "run", "frozen"))
    task = TASKS.get("continued_pretraining")(cfg.task, cfg.data, cfg.model)
    with pytest.raises(ConfigError, match=r"frozen.*trains nothing"):
        assemble(cfg, task)


# ------------------------------------------------------------------------------- whole runs


@pytest.fixture(scope="module")
def tied_llama(tmp_path_factory) -> Path:
    """A tiny random LLaMA whose LM head shares the embedding matrix (as SmolLM2's does)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    directory = tmp_path_factory.mktemp("tied-llama")
    tok = _tokenizer(directory)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def lm_runs(tmp_path_factory, tiny_llama, tiny_bert, tied_llama):
    base = tmp_path_factory.mktemp("cpt")
    data = {
        "train": write_jsonl(base / "train.jsonl", [{"text": d} for d in documents(80, 1)]),
        "validation": write_jsonl(base / "dev.jsonl", [{"text": d} for d in documents(20, 2)]),
    }
    runs = {}
    for key, model_dir, strategy in [
        ("llama-full", tiny_llama, "full"),
        ("llama-lora", tiny_llama, "lora"),
        ("llama-partial", tiny_llama, "partial"),
        ("tied-full", tied_llama, "full"),
        ("bert-full", tiny_bert, "full"),
        ("bert-lora", tiny_bert, "lora"),
    ]:
        runs[key] = api.finetune(lm_config(model_dir, data, base / key, strategy))
    return runs, data


RUNS = ["llama-full", "llama-lora", "llama-partial", "tied-full", "bert-full", "bert-lora"]


@pytest.mark.parametrize("key", RUNS)
def test_training_lowers_held_out_perplexity(key, lm_runs):
    runs, _ = lm_runs
    val = runs[key].metrics["validation"]
    assert val["perplexity"] < val["perplexity_before"]
    assert val["loss"] < val["loss_before"]
    assert val["perplexity"] == pytest.approx(math.exp(val["loss"]))
    manifest = runs[key].manifest
    assert manifest["before_training"]["validation"]["perplexity"] == val["perplexity_before"]
    assert manifest["task"]["state"]["objective"] == ("masked" if "bert" in key else "causal")


def test_masked_lm_trains_the_prediction_heads_own_layers(lm_runs):
    """LoRA on an encoder: adapters plus the MLM head's transform (not the tied decoder)."""
    runs, _ = lm_runs
    saved = json.loads((runs["bert-lora"].run_dir / "tunewise.json").read_text())
    from safetensors.torch import load_file

    names = load_file(str(runs["bert-lora"].run_dir / "model" / "trained.safetensors"))
    assert any("cls.predictions.transform" in n for n in names)
    assert not any("word_embeddings" in n or "decoder" in n for n in names)
    assert saved["strategy"]["parameters"]["percent"] < 60


@pytest.mark.parametrize("key", ["llama-lora", "tied-full", "bert-full"])
def test_predictor_round_trip(key, lm_runs):
    runs, data = lm_runs
    run = runs[key]
    predictor = run.load()
    again = predictor.evaluate(data["validation"], progress=False)
    assert again["loss"] == pytest.approx(run.metrics["validation"]["loss"], rel=1e-5)
    assert again["n_tokens"] == run.metrics["validation"]["n_tokens"]
    preds = predictor.predict(["the film was very good", "the plot was very awful " * 6])
    assert len(preds) == 2
    for p in preds:
        assert p["n_tokens"] > 0 and p["perplexity"] == pytest.approx(math.exp(p["loss"]))


def test_tied_embeddings_stay_tied_after_save_and_load(lm_runs, tied_llama):
    runs, _ = lm_runs
    from transformers import AutoModelForCausalLM

    model = runs["tied-full"].load().model
    assert model.lm_head.weight is model.model.embed_tokens.weight
    base = AutoModelForCausalLM.from_pretrained(tied_llama)
    # the loaded embedding is the trained one, not the base model's
    assert not torch.allclose(model.model.embed_tokens.weight, base.model.embed_tokens.weight)


def test_cli_eval_writes_loss_and_perplexity(lm_runs, tmp_path):
    from typer.testing import CliRunner

    from tunewise.cli import app

    runs, data = lm_runs
    out = tmp_path / "m.json"
    run_dir = runs["llama-lora"].run_dir
    result = CliRunner().invoke(
        app, ["eval", str(run_dir), "--data", str(data["validation"]), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert metrics["perplexity"] == pytest.approx(
        runs["llama-lora"].metrics["validation"]["perplexity"], rel=1e-5
    )
    corpus = tmp_path / "docs.txt"
    corpus.write_text("the film was very good\nthe plot was very bad\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["eval", str(run_dir), "--data", str(corpus), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["n_examples"] == 2  # a plain text file, one doc per line


def test_base_model_evaluation_is_the_runs_before_figure(lm_runs, tiny_llama):
    """`tunewise eval --model M --task continued_pretraining` scores the untrained model exactly
    as the run's `perplexity_before` did. (Not for the tiny BERT: its checkpoint has no MLM head,
    so an untrained head is random and depends on the seed.)"""
    runs, data = lm_runs
    base = api.evaluate_base(
        str(tiny_llama), "continued_pretraining", data["validation"], None, ["model.max_length=16"]
    )
    before = runs["llama-full"].metrics["validation"]
    assert base["perplexity"] == pytest.approx(before["perplexity_before"], rel=1e-5)
    assert base["n_tokens"] == before["n_tokens"]
