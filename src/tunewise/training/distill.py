"""Knowledge distillation from an earlier tunewise run, as a Trainer loss hook.

`distill: {teacher: RUN_DIR, alpha, temperature, student_layers, cache_teacher, hidden_states}`.
Loss = α·task loss + (1−α)·T²·KL(teacher ‖ student) on temperature-softened logits (Hinton et
al. 2015, "Distilling the Knowledge in a Neural Network"): per example for sequence-level tasks,
per token for token classification and language models (only the positions that carry a label;
causal LMs compare the logits that predict the same next token). With `hidden_states`, a
layer-reduced student's block outputs are also pulled (MSE, over real tokens) towards the outputs
of the teacher blocks they were copied from (as in DistilBERT / TinyBERT), with the same weight.
Written here: transformers and TRL have no distillation loss for an arbitrary task head.
"""

from __future__ import annotations

import hashlib
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Tasks whose outputs are not one distribution per example or per token.
UNSUPPORTED = {
    "extractive_qa": "its outputs are start/end span scores over windows of a context, not one "
    "distribution per example or token",
    "preference": "preference tuning learns from pairs of answers, not from a teacher's "
    "distribution",
    "multitask": "a multi-task run has one head per task; distil each task's head separately",
}


def kd_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    temperature: float,
    mask: torch.Tensor | None = None,
    multi_label: bool = False,
) -> torch.Tensor:
    """T²·KL(teacher ‖ student) of softened logits (..., classes), averaged over the positions
    where `mask` is true (all positions when None)."""
    t = temperature
    s, te = student.float() / t, teacher.float() / t
    if multi_label:  # independent labels: binary KL per label, summed
        p = torch.sigmoid(te)
        kl = (
            p * (F.logsigmoid(te) - F.logsigmoid(s))
            + (1 - p) * (F.logsigmoid(-te) - F.logsigmoid(-s))
        ).sum(-1)
    else:
        kl = F.kl_div(
            F.log_softmax(s, -1), F.log_softmax(te, -1), log_target=True, reduction="none"
        )
        kl = kl.sum(-1)
    if mask is not None:
        kl = kl[mask]
    return kl.mean() * t * t if kl.numel() else kl.sum()


def _is_causal(model: nn.Module) -> bool:
    return any(type(m).__name__.endswith("ForCausalLM") for m in model.modules())


def _aligned(
    student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None, causal: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Student and teacher logits at the positions that carry a label, and the mask."""
    if student.dim() == 2 or labels is None or labels.dim() < 2:
        return student, teacher, None
    if causal:  # logits at t predict label t+1
        student, teacher, labels = student[:, :-1], teacher[:, :-1], labels[:, 1:]
    return student, teacher, labels != -100


class Distiller:
    """The teacher (a loaded run), its optional logit cache and the combined loss."""

    def __init__(self, cfg: Any, teacher: Any, student: nn.Module, cache_dir: Path) -> None:
        self.cfg = cfg.distill
        self.teacher = teacher  # a Predictor
        self.teacher.model.requires_grad_(False)
        self.causal = _is_causal(student)
        self.multi_label = bool(getattr(getattr(teacher.task, "options", None), "multi_label", 0))
        self.cache: dict[str, torch.Tensor] | None = None
        self.cache_path = cache_dir / "teacher_logits.safetensors"
        self.block_pairs: list[tuple[nn.Module, nn.Module]] = []
        if self.cfg.hidden_states:
            from tunewise.strategies.base import find_blocks

            t_blocks = find_blocks(teacher.model)[1]
            s_blocks = find_blocks(student)[1]
            layers = self.cfg.student_layers or list(range(len(s_blocks)))
            self.block_pairs = [(s_blocks[i], t_blocks[j]) for i, j in enumerate(layers)]

    # -- teacher logits ---------------------------------------------------------------------------
    @staticmethod
    def _key(ids: torch.Tensor, mask: torch.Tensor | None) -> str:
        kept = ids[mask.bool()] if mask is not None else ids.flatten()
        return hashlib.sha1(kept.cpu().numpy().tobytes()).hexdigest()

    @torch.no_grad()
    def teacher_logits(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.cache is not None:
            masks = inputs.get("attention_mask")
            rows = [
                self.cache[self._key(ids, None if masks is None else masks[i])]
                for i, ids in enumerate(inputs["input_ids"])
            ]
            return torch.stack(rows).to(inputs["input_ids"].device)
        model = self.teacher.model
        model.eval()
        device = next(model.parameters()).device
        batch = {k: v.to(device) for k, v in inputs.items() if k in MODEL_INPUTS}
        return model(**batch).logits.to(inputs["input_ids"].device)

    def build_cache(self, dataloader: Any) -> None:
        """Teacher logits of every training example, computed once and stored on disk (rows
        keyed by their tokens, so any batching finds them)."""
        from safetensors.torch import load_file, save_file

        if not self.cache_path.is_file():
            rows: dict[str, torch.Tensor] = {}
            for batch in dataloader:
                logits = self.teacher_logits(batch).cpu()
                masks = batch.get("attention_mask")
                for i, ids in enumerate(batch["input_ids"]):
                    rows[self._key(ids, None if masks is None else masks[i])] = logits[i]
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous() for k, v in rows.items()}, str(self.cache_path))
        self.cache = load_file(str(self.cache_path))

    # -- the loss ---------------------------------------------------------------------------------
    def loss(self, model: nn.Module, inputs: dict[str, torch.Tensor], compute: Any) -> Any:
        """`compute(model, inputs)` → (task loss, outputs) from the Trainer; returns the
        combined loss and the student's outputs."""
        captured: dict[str, list[torch.Tensor]] = {"student": [], "teacher": []}
        with ExitStack() as stack:
            for s_block, t_block in self.block_pairs:
                for block, side in ((s_block, "student"), (t_block, "teacher")):
                    handle = block.register_forward_hook(
                        lambda _m, _i, out, side=side: captured[side].append(
                            out[0] if isinstance(out, tuple) else out
                        )
                    )
                    stack.callback(handle.remove)
            task_loss, outputs = compute(model, inputs)
            teacher = self.teacher_logits(inputs)
        labels = inputs.get("labels")
        if labels is not None and labels.dim() == 1 and not (labels != -100).any():
            task_loss = outputs.logits.sum() * 0  # only distill.transfer inputs: no task term
        student_logits, teacher_logits, mask = _aligned(
            outputs.logits, teacher, labels, self.causal
        )
        kd = kd_loss(student_logits, teacher_logits, self.cfg.temperature, mask, self.multi_label)
        loss = self.cfg.alpha * task_loss + (1 - self.cfg.alpha) * kd
        if self.block_pairs:
            attention = inputs.get("attention_mask")
            real = attention.bool() if attention is not None else None
            pairs = [
                # a student with prepended virtual tokens (prompt tuning, P-tuning) has more
                # positions in its blocks: its real tokens are the last ones
                (s[:, s.shape[1] - t.shape[1] :], t)
                for s, t in zip(captured["student"], captured["teacher"], strict=True)
            ]
            hidden = sum(
                F.mse_loss(s[real], t[real]) if real is not None else F.mse_loss(s, t)
                for s, t in pairs
            ) / max(len(self.block_pairs), 1)
            loss = loss + (1 - self.cfg.alpha) * hidden
        self.last = {"task_loss": float(task_loss.detach()), "kd_loss": float(kd.detach())}
        if self.block_pairs:
            self.last["hidden_loss"] = float(hidden.detach())
        return loss, outputs


class DistillMixin:
    """Trainer mixin: while training, `compute_loss` adds the teacher's term; each log carries
    the mean task and KD terms (and block-output term) since the last one beside `loss`."""

    distiller: Distiller | None = None
    _kd_terms: list[dict[str, float]]

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], *args: Any, **kw: Any):
        if self.distiller is None or not model.training:
            return super().compute_loss(model, inputs, *args, **kw)  # type: ignore[misc]
        return_outputs = kw.pop("return_outputs", args[0] if args else False)
        kw.pop("num_items_in_batch", None)

        def compute(m: nn.Module, x: dict[str, Any]) -> Any:
            return super(DistillMixin, self).compute_loss(m, x, return_outputs=True)  # type: ignore[misc]

        loss, outputs = self.distiller.loss(model, inputs, compute)
        if not getattr(self, "_adv_pass", False):  # an adversarial pass re-reads the batch
            self._kd_terms = [*getattr(self, "_kd_terms", []), self.distiller.last]
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kw: Any) -> None:
        terms = getattr(self, "_kd_terms", [])
        if "loss" in logs and terms:
            for key in terms[0]:
                logs[key] = round(sum(t[key] for t in terms) / len(terms), 4)
            self._kd_terms = []
        super().log(logs, *args, **kw)  # type: ignore[misc]
