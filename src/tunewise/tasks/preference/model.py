"""The policy being tuned: a causal LM that scores a chosen and a rejected answer in one pass.

DPO's reference model: when a peft strategy (LoRA, IA3...) wrapped the LM, the same model with
its adapter layers switched off (the switch peft's `PeftModel.disable_adapter()` flips), so no
second copy is held; otherwise a frozen copy of the model as it starts training. The copy is
taken in `keep_start`, which `init_from.build` calls once the model holds its starting weights
(a parent run's, with `init_from`) and before a loaded run's trained tensors go in, so training
and the reloaded run use the same reference. The mode is recorded in the task state.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from tunewise.tasks.preference import losses
from tunewise.training.shared_weights import dedupe_state_dict


@dataclass
class PreferenceOutput(ModelOutput):
    loss: torch.Tensor | None = None
    chosen_rewards: torch.Tensor | None = None
    rejected_rewards: torch.Tensor | None = None
    chosen_logps: torch.Tensor | None = None  # summed over the answer's tokens
    rejected_logps: torch.Tensor | None = None
    chosen_tokens: torch.Tensor | None = None


def answer_logps(lm: nn.Module, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor):
    """Summed log-probability of the labelled (answer) tokens of each row, and their count."""
    logits = lm(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    targets = labels[:, 1:]
    keep = targets != -100
    logp = torch.gather(logits.log_softmax(-1), 2, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logp * keep).sum(-1), keep.sum(-1)


def _pad(x: torch.Tensor, length: int, value: int) -> torch.Tensor:
    return F.pad(x, (0, length - x.shape[1]), value=value)


@contextmanager
def adapters_disabled(module: nn.Module) -> Iterator[bool]:
    """Switch every peft tuner layer off for the duration (yields whether there were any)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [m for m in module.modules() if isinstance(m, BaseTunerLayer)]
    was = [not m.disable_adapters for m in layers]
    for m in layers:
        m.enable_adapters(False)
    try:
        yield bool(layers)
    finally:
        for m, enabled in zip(layers, was, strict=True):
            m.enable_adapters(enabled)


class PreferenceModel(nn.Module):
    def __init__(self, lm: nn.Module, options: Any, shared: dict[str, Any]) -> None:
        super().__init__()
        self.lm = lm
        self.options = options
        self.shared = shared  # the task's state: {"reference": "adapters_disabled" | ...}
        self.__dict__["_reference"] = None  # hidden from parameters() / state_dict()
        dedupe_state_dict(self)  # tied embeddings: Trainer checkpoints keep one name

    def tie_weights(self, *args: Any, **kwargs: Any) -> None:
        self.lm.tie_weights(*args, **kwargs)

    @property
    def config(self) -> Any:
        return self.lm.config

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self.lm.generate(*args, **kwargs)

    def _freeze_copy(self) -> None:
        reference = copy.deepcopy(self.lm).eval()
        reference.requires_grad_(False)
        self.__dict__["_reference"] = reference

    def keep_start(self) -> None:
        """The model now holds the weights it starts training from (the base model's, or the
        `init_from` parent's, strategy applied): DPO's reference is fixed from them."""
        if self.options.method != "dpo":
            return
        with adapters_disabled(self.lm) as has_adapters:
            pass
        if has_adapters:
            self.shared["reference"] = "adapters_disabled"
            self.__dict__["_reference"] = None
        else:
            self.shared["reference"] = "frozen_copy"
            self._freeze_copy()

    @torch.no_grad()
    def reference_logps(self, ids, mask, labels) -> torch.Tensor:
        if self.__dict__["_reference"] is None:  # built outside `assemble`: decided at first use
            with adapters_disabled(self.lm) as has_adapters:
                if has_adapters:
                    self.shared["reference"] = "adapters_disabled"
                    return answer_logps(self.lm, ids, mask, labels)[0]
            self.shared["reference"] = "frozen_copy"
            self._freeze_copy()  # first use is before the first optimizer step
        reference = self.__dict__["_reference"].to(ids.device)
        return answer_logps(reference, ids, mask, labels)[0]

    def forward(
        self,
        chosen_input_ids: torch.Tensor,
        chosen_attention_mask: torch.Tensor,
        chosen_labels: torch.Tensor,
        rejected_input_ids: torch.Tensor,
        rejected_attention_mask: torch.Tensor,
        rejected_labels: torch.Tensor,
    ) -> PreferenceOutput:
        n = max(chosen_input_ids.shape[1], rejected_input_ids.shape[1])
        pad = self.config.pad_token_id or 0
        ids = torch.cat([_pad(chosen_input_ids, n, pad), _pad(rejected_input_ids, n, pad)])
        mask = torch.cat([_pad(chosen_attention_mask, n, 0), _pad(rejected_attention_mask, n, 0)])
        labels = torch.cat([_pad(chosen_labels, n, -100), _pad(rejected_labels, n, -100)])
        logps, counts = answer_logps(self.lm, ids, mask, labels)
        b = chosen_input_ids.shape[0]
        avg = logps / counts.clamp(min=1)
        o = self.options
        if o.method == "dpo":
            ref = self.reference_logps(ids, mask, labels)
            per_pair, c_r, r_r = losses.dpo(logps[:b], logps[b:], ref[:b], ref[b:], o.beta)
        elif o.method == "simpo":
            per_pair, c_r, r_r = losses.simpo(avg[:b], avg[b:], o.beta, o.simpo_gamma)
        else:
            per_pair, c_r, r_r = losses.orpo(avg[:b], avg[b:], -avg[:b], o.beta)
        return PreferenceOutput(
            loss=per_pair.mean(),
            chosen_rewards=c_r.detach(),
            rejected_rewards=r_r.detach(),
            chosen_logps=logps[:b].detach(),
            rejected_logps=logps[b:].detach(),
            chosen_tokens=counts[:b],
        )
