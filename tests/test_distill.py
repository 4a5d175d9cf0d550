"""Knowledge distillation (`distill:`): the KD loss, layer-reduced students, refusals."""

from __future__ import annotations

import json

import pytest
import torch

import tunewise
from conftest import sentiment_records, toy_config, write_jsonl
from tunewise.config import load_config
from tunewise.errors import ConfigError
from tunewise.training.distill import kd_loss


def test_kd_loss_is_zero_for_identical_logits_and_matches_the_formula():
    torch.manual_seed(0)
    logits = torch.randn(4, 7, 11)
    mask = torch.rand(4, 7) > 0.3
    assert kd_loss(logits, logits.clone(), 1.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(logits, logits.clone(), 1.0, mask).item() == pytest.approx(0.0, abs=1e-6)
    other = torch.randn(4, 7, 11)
    t = 2.0
    p = torch.softmax(other / t, -1)
    manual = (p * (p.log() - torch.log_softmax(logits / t, -1))).sum(-1)[mask].mean() * t * t
    assert kd_loss(logits, other, t, mask).item() == pytest.approx(manual.item(), rel=1e-5)
    assert kd_loss(logits, other, t, mask).item() > 0


@pytest.fixture(scope="module")
def teacher(tiny_bert, tmp_path_factory):
    """A LoRA-trained teacher on toy sentiment (its adapters merge into the student's copy)."""
    root = tmp_path_factory.mktemp("distill")
    data = {
        "train": write_jsonl(root / "train.jsonl", sentiment_records(64, seed=1)),
        "validation": write_jsonl(root / "dev.jsonl", sentiment_records(32, seed=2)),
    }
    cfg = toy_config(tiny_bert, data, root / "teacher", "lora", training={"epochs": 2})
    return tunewise.finetune(cfg).run_dir, data, root


def test_layer_reduced_student_holds_the_chosen_teacher_blocks(tiny_bert, teacher):
    from tunewise.assemble import assemble
    from tunewise.registry import TASKS
    from tunewise.strategies.base import find_blocks
    from tunewise.training.distill_setup import merged_teacher

    run, data, root = teacher
    distill = {"teacher": str(run), "student_layers": [1]}
    cfg = load_config(toy_config(tiny_bert, data, root / "s", "full", distill=distill))
    task = TASKS.get("classification")(cfg.task, cfg.data, cfg.model)
    task.load_state(json.loads((run / "tunewise.json").read_text())["task"]["state"])
    student = assemble(cfg, task).model
    merged = merged_teacher(str(run))
    assert not any("lora" in n for n, _ in merged.named_parameters())
    t_blocks, s_blocks = find_blocks(merged)[1], find_blocks(student)[1]
    assert len(s_blocks) == 1 and student.config.num_hidden_layers == 1
    t_state, s_state = t_blocks[1].state_dict(), s_blocks[0].state_dict()
    assert t_state.keys() == s_state.keys()
    assert all(torch.equal(t_state[k], s_state[k]) for k in t_state)
    assert torch.equal(merged.classifier.weight, student.classifier.weight)
    assert not torch.equal(
        t_blocks[0].state_dict()[next(iter(t_state))], s_state[next(iter(t_state))]
    )


def test_distilled_student_trains_reports_and_reloads(tiny_bert, teacher):
    run, data, root = teacher
    distill = {"teacher": str(run), "student_layers": [1], "hidden_states": True, "alpha": 0.3}
    cfg = toy_config(tiny_bert, data, root / "student", "full", distill=distill)
    result = tunewise.finetune(cfg)
    comparison = result.manifest["distillation"]
    assert comparison["student"]["parameters"] < comparison["teacher"]["parameters"]
    assert comparison["student"]["latency_ms_per_example"] > 0
    assert "accuracy" in comparison["student"] and "accuracy" in comparison["teacher"]
    assert "Distillation: student vs teacher" in (result.run_dir / "report.md").read_text()
    preds = result.load().predict(["great superb film", "awful terrible movie"])
    assert len(preds) == 2
    assert result.load().evaluate(data["validation"])["accuracy"] == pytest.approx(
        result.metrics["validation"]["accuracy"]
    )


def test_cached_teacher_logits_match_on_the_fly(tiny_bert, teacher, tmp_path):
    from tunewise.training.distill_setup import make_distiller

    run, data, _root = teacher
    cfg = load_config(toy_config(tiny_bert, data, tmp_path / "c", distill={"teacher": str(run)}))
    from types import SimpleNamespace

    trainer = SimpleNamespace(model=tunewise.load(run).model)  # cache_teacher off: no loader
    distiller = make_distiller(cfg, trainer, tmp_path)
    task, tok = distiller.teacher.task, distiller.teacher.tokenizer
    encoded = task.tokenize(task.read(cfg.data.split("train")), tok).remove_columns("length")
    collate = task.collator(tok)
    batches = [collate([encoded[i] for i in range(j, j + 8)]) for j in range(0, 32, 8)]
    live = [distiller.teacher_logits(b) for b in batches]
    distiller.build_cache(batches)
    assert distiller.cache_path.is_file() and distiller.cache is not None
    for batch, expected in zip(batches, live, strict=True):
        assert torch.allclose(distiller.teacher_logits(batch), expected, atol=1e-6)


def test_mismatched_vocabulary_and_task_are_refused(tiny_bert, teacher, tmp_path):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    run, data, _root = teacher
    other = tmp_path / "other-bert"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film", "zebra"]
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    tok.save_pretrained(other)
    BertModel(
        BertConfig(
            vocab_size=len(vocab),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    ).save_pretrained(other)
    cfg = toy_config(other, data, tmp_path / "s", "full", distill={"teacher": str(run)})
    with pytest.raises(ConfigError, match="different vocabularies"):
        tunewise.finetune(cfg)
    assert not (tmp_path / "s").exists()  # refused before anything was written
    bad = toy_config(
        tiny_bert,
        data,
        tmp_path / "s2",
        "full",
        distill={"teacher": str(run), "student_layers": [0]},
    )
    bad["model"]["name"] = str(other)
    with pytest.raises(ConfigError, match="student_layers copies blocks"):
        tunewise.finetune(bad)


def test_transfer_inputs_join_training_for_the_kd_term_alone(tiny_bert, teacher):
    run, data, root = teacher
    texts = [{"text": r["text"]} for r in sentiment_records(40, seed=5)]  # no label column
    transfer = write_jsonl(root / "transfer.jsonl", texts)
    distill = {"teacher": str(run), "student_layers": [1], "transfer": str(transfer)}
    plain = tunewise.finetune(
        toy_config(tiny_bert, data, root / "plain", "full", distill={**distill, "transfer": None})
    )
    result = tunewise.finetune(toy_config(tiny_bert, data, root / "tr", "full", distill=distill))
    training = result.manifest["training"]
    assert training["n_transfer"] == 40 and training["n_train"] == 64
    assert "n_transfer" not in plain.manifest["training"]
    assert training["real_tokens"] > plain.manifest["training"]["real_tokens"] * 1.4
    assert len(result.load().predict(["great superb film"])) == 1


def test_unlabelled_rows_add_no_task_loss(tiny_bert, teacher, tmp_path):
    from types import SimpleNamespace

    import torch.nn.functional as F

    from tunewise.training.distill import Distiller

    run, data, _root = teacher
    distill = {"teacher": str(run), "alpha": 0.4, "temperature": 2.0}
    cfg = load_config(toy_config(tiny_bert, data, tmp_path / "c", distill=distill))
    student = tunewise.load(run).model
    with torch.no_grad():  # a student that disagrees with its teacher: a non-zero KD term
        for param in student.parameters():
            param.add_(torch.randn_like(param) * 0.2)
    distiller = Distiller(cfg, tunewise.load(run), student, tmp_path)
    torch.manual_seed(0)
    ids = torch.randint(5, 20, (4, 6))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def compute(model, inputs):
        out = model(**{k: v for k, v in inputs.items() if k != "labels"})
        return F.cross_entropy(out.logits, inputs["labels"]), SimpleNamespace(logits=out.logits)

    labels = torch.tensor([0, -100, 1, -100])
    loss, out = distiller.loss(student, {**batch, "labels": labels}, compute)
    teacher_logits = distiller.teacher_logits(batch)
    kd = kd_loss(out.logits, teacher_logits, 2.0)  # every row, labelled or not
    assert kd.item() > 1e-3
    task = F.cross_entropy(out.logits[[0, 2]], labels[[0, 2]])  # the labelled rows only
    assert loss.item() == pytest.approx((0.4 * task + 0.6 * kd).item(), rel=1e-5)
    only_transfer = torch.full((4,), -100)
    loss, out = distiller.loss(student, {**batch, "labels": only_transfer}, compute)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(0.6 * kd.item(), rel=1e-5)


def test_transfer_is_refused_where_it_cannot_work():
    from types import SimpleNamespace

    from tunewise.training import distill_transfer

    def cfg(task_type):
        return SimpleNamespace(
            task=SimpleNamespace(type=task_type), distill=SimpleNamespace(transfer="t.jsonl")
        )

    with pytest.raises(ConfigError, match="needs labelled positions"):
        distill_transfer.read(cfg("token_classification"), SimpleNamespace())
    with pytest.raises(ConfigError, match="multi-label"):
        distill_transfer.read(cfg("classification"), SimpleNamespace(multi_label=True))
