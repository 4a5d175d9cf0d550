"""`export --format hf`: a standalone transformers model directory.

Which tunewise models have an exact transformers class (decided from how tunewise builds its
heads, `tasks/heads.py` and the task modules):
- LM tasks (instruction, chat, generative QA, summarization, translation, continued
  pretraining): the trained model *is* a transformers LM (causal, seq2seq or masked): saved as is.
- token classification: backbone → dropout → linear on every token, which is exactly
  `AutoModelForTokenClassification` (BERT's `classifier`, LLaMA's `score`) without a pooler.
- extractive QA: backbone → linear(hidden, 2) split into start / end, exactly
  `AutoModelForQuestionAnswering` (tunewise also sets padding positions to -1e4; real tokens
  are identical).
- classification and multiple choice have none: tunewise pools itself (mean by default) and drops
  the backbone's pooler, while `*ForSequenceClassification` / `*ForMultipleChoice` use the
  pretrained [CLS] pooler (dense + tanh: BERT), a dense + activation head (RoBERTa, DeBERTa) or a
  bias-free last-token score (decoders). These are refused, pointing to `--format onnx`.
Every mapping is verified: the written directory is loaded back with the plain Auto class and
compared with the tunewise model (logits within `TOLERANCE`; greedy text for causal LMs).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tunewise.errors import TunewiseError
from tunewise.export.samples import batches, encoded_examples, max_diff, outputs

TOLERANCE = 1e-4
HEADED = {"token_classification": "AutoModelForTokenClassification"}
HEADED["extractive_qa"] = "AutoModelForQuestionAnswering"
HEAD_OF = {"token_classification": "classifier", "extractive_qa": "qa_outputs"}


def auto_class(predictor: Any) -> str:
    """The transformers Auto class the exported directory loads with, or TunewiseError saying
    why there is none."""
    task = predictor.task
    if not task.head_modules or task.name == "continued_pretraining":
        return task.auto_model
    if task.name in HEADED:
        return HEADED[task.name]
    pooling = getattr(predictor.model, "pooling", None) or _find_pooling(predictor.model)
    raise TunewiseError(
        f"Task '{task.name}' has no transformers class that computes what tunewise's head does "
        f"({pooling} pooling → dropout → linear, with the backbone's pooler removed): "
        "*ForSequenceClassification / *ForMultipleChoice use the pretrained [CLS] pooler "
        "(dense + tanh) or a bias-free last-token score instead, so a plain transformers "
        "directory would give different outputs. Export it with --format onnx (the whole "
        "graph, pooling and head included, runs in onnxruntime without tunewise), or serve "
        "the run with `tunewise serve`."
    )


def _find_pooling(model: nn.Module) -> str:
    for module in model.modules():
        if isinstance(getattr(module, "pooling", None), str):
            return module.pooling
    return "tunewise"


def to_transformers(predictor: Any, merged: nn.Module, name: str) -> nn.Module:
    """The merged tunewise model as an instance of the transformers class `name`."""
    task = predictor.task
    if name == task.auto_model:
        return merged  # an LM task: the model is the transformers LM itself
    import transformers

    backbone = merged.backbone
    config = copy.deepcopy(backbone.config)
    labels = getattr(task, "labels", None) or []
    if labels:
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
    else:
        config.num_labels = 2
    hf = getattr(transformers, name).from_config(config)
    base = hf.base_model
    result = base.load_state_dict(backbone.state_dict(), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise TunewiseError(
            f"The {type(base).__name__} inside {type(hf).__name__} does not take the trained "
            f"backbone's weights as they are (missing: {result.missing_keys[:3]}, unexpected: "
            f"{result.unexpected_keys[:3]}); export with --format onnx instead."
        )
    ours: nn.Linear = merged.get_submodule(HEAD_OF[task.name])
    heads = [
        (n, m)
        for n, m in hf.named_modules()
        if isinstance(m, nn.Linear) and not n.startswith(hf.base_model_prefix + ".")
    ]
    if len(heads) != 1 or heads[0][1].weight.shape != ours.weight.shape:
        raise TunewiseError(
            f"{type(hf).__name__}'s head ({[n for n, _ in heads]}) is not one linear layer of "
            f"shape {tuple(ours.weight.shape)}; export with --format onnx instead."
        )
    head = heads[0][1]
    if (head.bias is None) != (ours.bias is None):
        raise TunewiseError(
            f"{type(hf).__name__}'s head {'has no' if head.bias is None else 'has a'} bias, "
            "unlike tunewise's; export with --format onnx instead."
        )
    with torch.no_grad():
        head.weight.copy_(ours.weight)
        if head.bias is not None:
            head.bias.copy_(ours.bias)
    return hf.eval()


def export_hf(predictor: Any, merged_fn: Any, out: Path, n_check: int = 8) -> dict[str, Any]:
    """Write the directory into `out` (empty, existing); returns the report. `merged_fn` folds
    the strategy into plain weights (raising for strategies that cannot be merged)."""
    import transformers

    name = auto_class(predictor)  # refuse before any work
    encoded, source = encoded_examples(predictor, n_check)
    collator = predictor.task.collator(predictor.tokenizer)
    checks = batches(encoded, collator, 1)  # one example at a time: no padding to differ on
    reference = [outputs(predictor.model, b) for b in checks]
    causal = name == "AutoModelForCausalLM"
    prompt = checks[0]["input_ids"] if causal else None
    greedy = _greedy(predictor.model, prompt) if causal else None
    model = to_transformers(predictor, merged_fn(predictor.model), name)
    model.save_pretrained(out)
    predictor.tokenizer.save_pretrained(out)
    loaded = getattr(transformers, name).from_pretrained(out).eval()  # plain transformers
    diff = max(
        max_diff(ref, outputs(loaded, b), b["attention_mask"].numpy())
        for ref, b in zip(reference, checks, strict=True)
    )
    report: dict[str, Any] = {
        "auto_class": name,
        "architecture": type(loaded).__name__,
        "max_abs_diff": diff,
        "examples_checked": len(checks),
        "checked_on": source,
        "tolerance": TOLERANCE,
    }
    if causal:
        report["greedy_identical"] = bool(torch.equal(greedy, _greedy(loaded, prompt)))
    if diff > TOLERANCE or report.get("greedy_identical") is False:
        raise TunewiseError(
            f"The exported {name} directory does not reproduce the run (max |Δlogit| = "
            f"{diff:.2e}, greedy text identical: {report.get('greedy_identical')}); nothing "
            "was kept. Export with --format onnx instead."
        )
    return report


@torch.inference_mode()
def _greedy(model: nn.Module, prompt: torch.Tensor, new_tokens: int = 12) -> torch.Tensor:
    ids = model.generate(
        input_ids=prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=new_tokens,
        do_sample=False,
        temperature=None,
        top_p=None,
        top_k=None,
    )
    return ids[:, prompt.shape[1] :]
