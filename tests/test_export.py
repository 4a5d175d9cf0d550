"""`tunewise export`: hf directories that load with plain transformers Auto classes and match
the run (token classification: logits within 1e-4; causal LM: identical greedy text), the ONNX
graph's parity against onnxruntime, the int8 report, and the refusals with their reasons."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import tunewise
from conftest import POSITIVE, sentiment_records, toy_config, write_jsonl
from generation_fixtures import build_llama, instruction_records, write
from tunewise.cli import app
from tunewise.errors import TunewiseError

FAST = {"epochs": 1, "batch_size": 8, "learning_rate": 5e-3, "logging_steps": 50}


def _ner_records(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = rng.sample(["the", "film", "was", "a", "story", "plot", *POSITIVE[:4]], 5)
        out.append({"tokens": words, "tags": ["B-POS" if w in POSITIVE else "O" for w in words]})
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


def _train(cfg: dict) -> Path:
    cfg["training"] = FAST
    cfg["eval"] = {"each_epoch": False}
    return tunewise.finetune(cfg).run_dir


@pytest.fixture(scope="module")
def ner_run(tiny_bert, root) -> Path:
    data = {
        "train": write_jsonl(root / "ner_train.jsonl", _ner_records(24, 1)),
        "validation": write_jsonl(root / "ner_dev.jsonl", _ner_records(8, 2)),
    }
    cfg = toy_config(
        tiny_bert, data, root / "ner_run", "lora", task={"type": "token_classification"}
    )
    return _train(cfg)


@pytest.fixture(scope="module")
def cls_run(tiny_bert, root) -> Path:
    data = {
        "train": write_jsonl(root / "train.jsonl", sentiment_records(32, seed=1)),
        "validation": write_jsonl(root / "dev.jsonl", sentiment_records(24, seed=2)),
    }
    return _train(toy_config(tiny_bert, data, root / "cls_run", "lora"))


def test_hf_token_classification_loads_with_plain_transformers(ner_run, root):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    out = root / "ner_hf"
    report = tunewise.api.export(ner_run, format="hf", output=out)
    assert report["auto_class"] == "AutoModelForTokenClassification"
    assert report["max_abs_diff"] <= 1e-4 and report["examples_checked"] == 8
    assert json.loads((out / "export.json").read_text())["max_abs_diff"] == report["max_abs_diff"]
    card = (out / "README.md").read_text()
    for needed in ("token_classification", "lora", "sha256", "Intended use", "Limits", "B-POS"):
        assert needed in card
    assert not any(p.name.startswith("adapter") for p in out.iterdir())  # merged: no peft files
    model = AutoModelForTokenClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert set(model.config.id2label.values()) == {"O", "B-POS", "I-POS"}
    predictor = tunewise.load(ner_run)
    batch = tokenizer(["the film was good great story"], return_tensors="pt")
    with torch.no_grad():
        ours = predictor.model(**batch).logits
        theirs = model(**batch).logits
    assert torch.allclose(ours, theirs, atol=1e-4)
    assert not torch.allclose(ours, torch.zeros_like(ours))


def test_hf_causal_lm_gives_identical_greedy_text(tmp_path_factory, root):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = build_llama(tmp_path_factory.mktemp("llama"), init_std=0.3)
    data = {
        "train": write(root / "inst.json", instruction_records(16, 1)),
        "validation": write(root / "inst_dev.json", instruction_records(4, 2)),
    }
    cfg = toy_config(model_dir, data, root / "llm_run", "lora", task={"type": "instruction"})
    cfg["model"]["max_length"] = 64
    cfg["task"]["eval_generate_samples"] = 0
    cfg["task"]["max_new_tokens"] = 8
    run = _train(cfg)
    out = root / "llm_hf"
    report = tunewise.api.export(run, format="hf", output=out)
    assert report["auto_class"] == "AutoModelForCausalLM" and report["greedy_identical"] is True
    assert report["max_abs_diff"] <= 1e-4
    predictor = tunewise.load(run)
    ours = predictor.predict([{"instruction": "the opposite of", "input": "hot"}])
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "the opposite of\n\nhot"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    new = model.generate(**prompt, max_new_tokens=8, do_sample=False)[
        0, prompt["input_ids"].shape[1] :
    ]
    text = tokenizer.decode(new, skip_special_tokens=True).strip()
    assert text == ours[0]["generated_text"]


def test_hf_refuses_mean_pooled_classification_pointing_to_onnx(cls_run, root):
    with pytest.raises(TunewiseError, match="mean pooling") as err:
        tunewise.api.export(cls_run, format="hf", output=root / "cls_hf")
    assert "--format onnx" in str(err.value)
    assert not (root / "cls_hf").exists()
    busy = root / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(TunewiseError, match="not empty"):
        tunewise.api.export(cls_run, format="onnx", output=busy)
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]


def test_onnx_classification_parity_and_int8_report(cls_run, root):
    import onnxruntime as ort

    out = root / "cls_onnx"
    report = tunewise.api.export(cls_run, format="onnx", output=out, quantize="int8")
    written = json.loads((out / "export.json").read_text())
    assert written == report
    assert written["max_abs_diff"] <= 1e-4 and written["examples_checked"] == 16
    assert written["merged"] is True and written["labels"] == ["neg", "pos"]
    q = written["quantize"]
    for key in (
        "accuracy_fp32",
        "accuracy_int8",
        "accuracy_change",
        "latency_ms_batch1_fp32",
        "latency_ms_batch1_int8",
        "latency_change",
        "examples",
    ):
        assert key in q, key
    assert q["examples"] == 24 and q["metric"] == "accuracy"
    assert q["accuracy_change"] == pytest.approx(q["accuracy_int8"] - q["accuracy_fp32"])
    assert (out / "model.int8.onnx").stat().st_size < (out / "model.onnx").stat().st_size
    # int8 only where weights are constant: embeddings (Gather) and attention matmuls stay fp32
    import onnx

    ops = [n.op_type for n in onnx.load(str(out / "model.int8.onnx")).graph.node]
    assert "MatMulInteger" in ops and "Gather" in ops and "MatMul" in ops
    assert q["per_channel"] is True
    # the graph alone (pooling and head included) reproduces tunewise's scores
    predictor = tunewise.load(cls_run)
    texts = ["good film", "the plot was awful and very boring"]
    want = predictor.predict(texts)
    batch = predictor.tokenizer(texts, padding=True, return_tensors="np")
    session = ort.InferenceSession(str(out / "model.onnx"))
    names = {i.name for i in session.get_inputs()}
    logits = session.run(None, {k: v for k, v in batch.items() if k in names})[0]
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert probs[:, 1] == pytest.approx([w["scores"]["pos"] for w in want], abs=1e-5)


def test_unmergeable_and_generative_refusals_name_the_alternative(tiny_bert, root):
    data = {"train": root / "train.jsonl", "validation": root / "dev.jsonl"}
    cfg = toy_config(tiny_bert, data, root / "adapter_run", "adapter")
    cfg["task"] = {"type": "token_classification"}
    cfg["data"] = {
        "train": str(root / "ner_train.jsonl"),
        "validation": str(root / "ner_dev.jsonl"),
    }
    run = _train(cfg)
    result = CliRunner().invoke(
        app, ["export", str(run), "--format", "hf", "--output", str(root / "a")]
    )
    assert result.exit_code == 2
    assert "adapter" in result.output and "--format onnx" in result.output
    assert not (root / "a").exists()
    result = CliRunner().invoke(
        app, ["export", str(run), "--format", "onnx", "--output", str(root / "a")]
    )
    assert result.exit_code == 0, result.output  # the adapters stay in the ONNX graph
    assert json.loads((root / "a" / "export.json").read_text())["merged"] is False


def test_fold_for_inference_merges_lora_keeping_predictions(cls_run):
    from tunewise.serving.batch_predict import fold_for_inference

    predictor = tunewise.load(cls_run)
    texts = ["good film", "the plot was awful and very boring", "superb"]
    before = predictor.predict(texts)
    assert fold_for_inference(predictor) is True
    assert not any("lora_" in name for name, _ in predictor.model.named_parameters())
    after = predictor.predict(texts)
    assert [a["label"] for a in after] == [b["label"] for b in before]
    assert [a["score"] for a in after] == pytest.approx([b["score"] for b in before], abs=1e-5)


def test_extractive_qa_hf_and_onnx_match_the_run(tiny_bert, root):
    from transformers import AutoModelForQuestionAnswering

    from test_task_extractive_qa import qa_records

    data = {
        "train": write_jsonl(root / "qa_train.jsonl", qa_records(24, seed=1)),
        "validation": write_jsonl(root / "qa_dev.jsonl", qa_records(8, seed=2)),
    }
    cfg = toy_config(tiny_bert, data, root / "qa_run", "ia3")
    cfg["task"] = {"type": "extractive_qa", "doc_stride": 8}
    run = _train(cfg)
    hf = tunewise.api.export(run, format="hf", output=root / "qa_hf")
    assert hf["auto_class"] == "AutoModelForQuestionAnswering" and hf["max_abs_diff"] <= 1e-4
    model = AutoModelForQuestionAnswering.from_pretrained(root / "qa_hf").eval()
    predictor = tunewise.load(run)
    batch = predictor.tokenizer("which word is good", "the film was superb", return_tensors="pt")
    with torch.no_grad():
        ours, theirs = predictor.model(**batch), model(**batch)
    assert torch.allclose(ours.start_logits, theirs.start_logits, atol=1e-4)
    assert torch.allclose(ours.end_logits, theirs.end_logits, atol=1e-4)
    onnx = tunewise.api.export(run, format="onnx", output=root / "qa_onnx")
    assert onnx["outputs"] == ["start_logits", "end_logits"] and onnx["max_abs_diff"] <= 1e-4


def test_multiple_choice_onnx_graph_scores_like_the_run(tiny_bert, root):
    import onnxruntime as ort

    from test_task_multiple_choice import mc_config, mc_records

    data = {
        "train": write_jsonl(root / "mc_train.jsonl", mc_records(16, seed=1)),
        "validation": write_jsonl(root / "mc_dev.jsonl", mc_records(8, seed=2)),
    }
    run = _train(mc_config(tiny_bert, data, root / "mc_run", "full"))
    report = tunewise.api.export(run, format="onnx", output=root / "mc_onnx")
    assert report["max_abs_diff"] <= 1e-4 and report["examples_checked"] == 8
    session = ort.InferenceSession(str(root / "mc_onnx" / "model.onnx"))
    assert [len(i.shape) for i in session.get_inputs()] == [3, 3, 3]  # batch × choices × tokens


def test_batch_predict_of_a_task_with_its_own_fields(ner_run, root):
    """NER records (tokens or text) stream through the task's own validation: a wrongly typed
    record is rejected with the task's reason, the others keep their lines."""
    from tunewise.serving.batch_predict import predict_file

    source = root / "ner_in.jsonl"
    lines = [{"tokens": ["the", "film", "was", "good"]}, {"text": "a great story"}, {"tokens": 5}]
    source.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    out = root / "ner_preds.jsonl"
    report = predict_file(tunewise.load(ner_run), source, out, progress=False)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["line"] for r in rows] == [1, 2] and rows[0]["tokens"] == lines[0]["tokens"]
    rejects = [json.loads(x) for x in Path(report["rejects"]).read_text().splitlines()]
    assert [r["line"] for r in rejects] == [3] and "tokens" in rejects[0]["reason"]
