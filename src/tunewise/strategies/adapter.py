"""Houlsby bottleneck adapters (Houlsby et al., 2019): a small down-project → non-linearity →
up-project module with a residual connection after the attention and feed-forward sublayers of
every block; the backbone stays frozen, the adapters, layer norms and head train.

peft has no Houlsby adapters, so this is hand-written. It is injected without editing model code
by wrapping each sublayer's *output projection* (the Linear whose output goes into the residual
sum), found from the module tree instead of a per-architecture table:
  attention: the last Linear inside the block's attention submodule that returns hidden_size
             (BERT `attention.output.dense`, LLaMA `self_attn.o_proj`);
  feed-forward: the last Linear outside it that maps a wider intermediate back to hidden_size
             (BERT `output.dense`, LLaMA `mlp.down_proj`).
The up-projection starts at zero, so the adapted model starts exactly as the pretrained one.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import StrategyOptions
from tunewise.errors import ConfigError
from tunewise.strategies.advisor_facts import SW, SW1, AdvisorFacts
from tunewise.strategies.base import Strategy, find_blocks, set_trainable, train_heads

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class AdapterOptions(StrategyOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["adapter"] = "adapter"
    reduction_factor: int = Field(16, gt=0)  # bottleneck width = hidden_size / reduction_factor
    non_linearity: Literal["relu", "gelu", "silu", "tanh"] = "gelu"  # bottleneck activation
    placement: Literal["both", "attention", "ffn"] = "both"  # which sublayers get an adapter
    train_norms: bool = True  # Houlsby et al. also train the layer norms


class Bottleneck(nn.Module):
    """x + up(act(down(x))); near-identity at initialisation."""

    def __init__(self, hidden: int, bottleneck: int, activation: str) -> None:
        super().__init__()
        self.down = nn.Linear(hidden, bottleneck)
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(bottleneck, hidden)
        nn.init.normal_(self.down.weight, std=1e-2)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.act(self.down(x)))


class AdaptedOutput(nn.Module):
    """A sublayer's output projection followed by its adapter."""

    def __init__(self, base: nn.Linear, adapter: Bottleneck) -> None:
        super().__init__()
        self.base = base
        self.adapter = adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.base(x))


def sublayer_outputs(block: nn.Module, hidden: int) -> dict[str, str | None]:
    """Block-relative names of the attention and feed-forward output projections."""
    linears = [(n, m) for n, m in block.named_modules() if isinstance(m, nn.Linear)]
    attention_roots = [
        n for n, _ in block.named_children() if "attn" in n.lower() or "attention" in n.lower()
    ]
    in_attention = [
        n for n, m in linears if n.split(".")[0] in attention_roots and m.out_features == hidden
    ]
    ffn = [
        n
        for n, m in linears
        if n.split(".")[0] not in attention_roots
        and m.out_features == hidden
        and m.in_features > hidden
    ]
    return {
        "attention": in_attention[-1] if in_attention else None,
        "ffn": ffn[-1] if ffn else None,
    }


class AdapterStrategy(Strategy):
    name = "adapter"
    Options = AdapterOptions
    summary = "bottleneck adapters after attention and feed-forward (Houlsby) + norms + head"
    base_learning_rate = 1e-3  # Houlsby et al. searched 3e-5…3e-3; small adapters like 1e-3
    advisor = AdvisorFacts(
        prior=-1.5,  # sweep_sst2_4000.json
        short_prior=-5.0,  # short_prior.json (3 seeds)
        # sweep_sst2_1000.json: 19.3 relative to full's 20 there, scaled to full = 34
        activation_factor=33.0,
        flops_factor=4.0,  # forward 2N + activation gradients 2N
        family="reparam",
        source=f"{SW}; {SW1} (activation factor); MFU not measured",
    )

    @classmethod
    def default_search_space(cls) -> dict[str, Any]:
        choices = [8, 16, 32]  # bottleneck = hidden / reduction_factor
        return {
            **super().default_search_space(),
            "strategy.reduction_factor": {"type": "categorical", "choices": choices},
        }

    def apply(self, model: nn.Module, head_modules: list[str]) -> nn.Module:
        _, blocks = find_blocks(model)
        hidden = getattr(getattr(model, "config", None), "hidden_size", None)
        if hidden is None:
            raise ConfigError(f"Strategy 'adapter' needs config.hidden_size on {type(model)}.")
        placement = self.options.placement
        places = ["attention", "ffn"] if placement == "both" else [placement]
        found = sublayer_outputs(blocks[0], hidden)
        missing = [p for p in places if found[p] is None]
        if missing:
            raise ConfigError(
                f"Strategy 'adapter' found no {' or '.join(missing)} output projection (an "
                f"nn.Linear returning hidden_size={hidden}) in {type(blocks[0]).__name__}; "
                "use strategy.placement to skip it, or 'lora'."
            )
        set_trainable(model, False)
        width = max(1, hidden // self.options.reduction_factor)
        for block in blocks:
            for place in places:
                path = found[place]
                parent_name, _, leaf = path.rpartition(".")
                parent = block.get_submodule(parent_name) if parent_name else block
                adapter = Bottleneck(hidden, width, self.options.non_linearity)
                setattr(parent, leaf, AdaptedOutput(getattr(parent, leaf), adapter))
        if self.options.train_norms:
            for block in blocks:
                for module in block.modules():
                    if "norm" in type(module).__name__.lower():
                        set_trainable(module, True)
        for name, param in model.named_parameters():
            if ".adapter." in f".{name}":
                param.requires_grad_(True)
        train_heads(model, head_modules)
        self.details = {"sublayers": {p: found[p] for p in places}, "bottleneck": width}
        return model

    def merge(self, model: nn.Module) -> nn.Module:
        raise ConfigError(
            "Strategy 'adapter' cannot be merged into the base model: the adapters' "
            "non-linearity makes them extra layers, not a weight update. Serve the run with "
            "tunewise (Predictor), or train with lora / ia3 for a mergeable model."
        )
