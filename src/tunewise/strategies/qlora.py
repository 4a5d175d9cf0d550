"""QLoRA (Dettmers et al., 2023): LoRA on a base model stored in 4-bit NF4, via bitsandbytes and
peft. It needs a CUDA GPU and the bitsandbytes package; elsewhere it stops with an explanation
before any model is loaded."""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

from pydantic import ConfigDict
from torch import nn

from tunewise.errors import ConfigError
from tunewise.strategies.advisor_facts import AdvisorFacts
from tunewise.strategies.lora import LoraOptions, LoraStrategy


class QLoraOptions(LoraOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["qlora"] = "qlora"  # type: ignore[assignment]
    compute_dtype: Literal["bfloat16", "float16"] = "bfloat16"  # dtype of the 4-bit matmuls
    double_quant: bool = True  # quantise the quantisation constants too (saves ~0.4 bit/param)


def unavailable_reason() -> str | None:
    """Why QLoRA cannot run here (None: it can)."""
    import torch

    if not torch.cuda.is_available():
        return (
            "QLoRA stores the base model in 4-bit NF4 through bitsandbytes, whose 4-bit matmul "
            "kernels run only on a CUDA GPU, and this machine has none. Use 'lora' (the same "
            "adapters on an unquantised model) on CPU"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        return (
            "QLoRA needs the bitsandbytes package for 4-bit NF4 weights; install it "
            "(pip install bitsandbytes) or use 'lora'"
        )
    return None


class QLoraStrategy(LoraStrategy):
    fused_layers = False  # the targets are bitsandbytes' 4-bit layers, not plain nn.Linear
    name = "qlora"
    Options = QLoraOptions
    summary = "LoRA on a 4-bit NF4 base model (CUDA + bitsandbytes only)"
    base_learning_rate = 2e-4  # Dettmers et al. 2023 (1e-4…2e-4 for 7B–65B models)
    advisor = AdvisorFacts(
        prior=-1.0,  # set by hand near LoRA (Dettmers et al. 2023: QLoRA matches 16-bit LoRA)
        flops_factor=4.0,  # as LoRA
        weight_bytes=0.55,  # NF4 + double-quantised constants (Dettmers et al. 2023)
        family="reparam",
        source="Dettmers et al. 2023 (weight bytes); prior set by hand; short prior, memory "
        "and MFU not measured (QLoRA needs a CUDA GPU)",
    )

    def load_kwargs(self) -> dict[str, Any]:
        import torch
        from transformers import BitsAndBytesConfig

        reason = unavailable_reason()
        if reason:
            raise ConfigError(f"Strategy 'qlora' cannot run here: {reason}.")
        return {
            "quantization_config": BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=self.options.double_quant,
                bnb_4bit_compute_dtype=getattr(torch, self.options.compute_dtype),
            )
        }

    def apply(self, model: nn.Module, head_modules: list[str]) -> nn.Module:
        from peft import prepare_model_for_kbit_training

        reason = unavailable_reason()
        if reason:
            raise ConfigError(f"Strategy 'qlora' cannot run here: {reason}.")
        model = prepare_model_for_kbit_training(model)
        return super().apply(model, head_modules)

    def merge(self, model: nn.Module) -> nn.Module:
        raise ConfigError(
            "Strategy 'qlora' is not merged in place: the base weights are 4-bit, so folding "
            "the LoRA update in would lose it to rounding. Load the base model in 16/32-bit, "
            "load the run's adapters with strategy 'lora', and merge that."
        )
