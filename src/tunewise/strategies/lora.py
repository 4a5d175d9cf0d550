"""LoRA (Hu et al., 2021) through peft: low-rank updates on the blocks' linear layers.

Default targets are *every* linear layer inside the transformer blocks, found from the model
itself (BERT: query/key/value/dense, LLaMA: q/k/v/o/gate/up/down_proj): on minilm + SST-2 this
beats peft's query/value default by ~4 points (see ../shared/reference).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import StrategyOptions
from tunewise.errors import ConfigError
from tunewise.strategies.advisor_facts import SST, SW, SW1, AdvisorFacts
from tunewise.strategies.base import Strategy, find_blocks


class LoraOptions(StrategyOptions):
    model_config = ConfigDict(extra="forbid")
    name: Literal["lora"] = "lora"
    r: int = Field(8, gt=0)  # rank: capacity of the update vs. parameters trained
    alpha: float = Field(16, gt=0)  # scale of the update is alpha / r
    # Dropout on each adapted layer's input. Off by default: on CPU its masks and copies took 35%
    # of a minilm LoRA step (torch.profiler; 36 adapted layers), which made LoRA slower than
    # full fine-tuning. Turn it on (0.05-0.1) where a small dataset needs the regularisation.
    dropout: float = Field(0.0, ge=0, lt=1)
    # Leaf names of the linear layers to adapt (e.g. [query, value]); None: all inside blocks.
    target_modules: list[str] | None = None
    use_rslora: bool = False  # rank-stabilised scaling alpha / sqrt(r)
    use_dora: bool = False  # weight-decomposed LoRA (slower, sometimes better)


class LoraStrategy(Strategy):
    name = "lora"
    Options = LoraOptions
    summary = "low-rank adapters on the linear layers; the head trains fully"
    base_learning_rate = 5e-4
    advisor = AdvisorFacts(
        prior=-0.7,  # sweep_sst2_4000.json
        short_prior=8.1,  # short_prior.json (3 seeds): B starts at zero, but 4e-3 moves it fast
        # full's activations plus a dropout copy of every adapted layer's input (~10 hidden widths
        # per token and block for BERT/LLaMA-like blocks), as measured with dropout 0.1; the
        # default 0 makes no copy, so this now over-estimates. The measured minilm LoRA peak
        # (2,416 MB) is ~0.5 GB above this; a fitted 73 would, wrongly, put LoRA above full
        # fine-tuning on billion-parameter models, where weights and Adam moments dominate.
        activation_factor=44.0,
        flops_factor=4.0,  # forward 2N + activation gradients 2N; weight gradients are tiny
        # peft_speed_pairs.json: median of 5 seeds with dropout 0, the fused layers and fast
        # dropout masks (0.412 in sst2.json with dropout 0.1 and peft's own layers)
        mfu=0.66,
        family="reparam",
        preferred_for_generation=True,  # Hu et al. 2021; Dettmers et al. 2023
        source=f"{SST}; {SW}; {SW1}",
    )
    # Short runs get up to 8x the base rate (4e-3): in a 20-trial Optuna study on BBC News
    # (300 examples, 2 epochs; benchmarks/tune_bbc.py) the best trials all ran at 3.5-4.4e-3,
    # 5 points above the 1.5e-3 that a cap of 3 gave.
    lr_max_scale = 8.0
    # Plain nn.Linear targets get peft's layer with one fused autograd node (lora_fused.py);
    # off for subclasses whose targets are other linear types (qlora's 4-bit layers).
    fused_layers = True

    @classmethod
    def default_search_space(cls) -> dict[str, Any]:
        return {
            **super().default_search_space(),
            "strategy.r": {"type": "categorical", "choices": [4, 8, 16, 32]},
            "strategy.dropout": {"type": "uniform", "low": 0.0, "high": 0.2},
        }

    def apply(self, model: nn.Module, head_modules: list[str]) -> nn.Module:
        from peft import LoraConfig, get_peft_model

        prefix, blocks = find_blocks(model)
        wanted = set(self.options.target_modules or [])
        targets = [
            f"{prefix}.{name}"
            for name, module in blocks.named_modules()
            if isinstance(module, nn.Linear) and (not wanted or name.rsplit(".", 1)[-1] in wanted)
        ]
        if not targets:
            leaves = sorted(
                {
                    n.rsplit(".", 1)[-1]
                    for n, m in blocks.named_modules()
                    if isinstance(m, nn.Linear)
                }
            )
            raise ConfigError(
                f"strategy.target_modules {sorted(wanted)} matches no linear layer in "
                f"{prefix}; the blocks' linear layers are: {', '.join(leaves)}."
            )
        config = LoraConfig(
            r=self.options.r,
            lora_alpha=self.options.alpha,
            lora_dropout=self.options.dropout,
            target_modules=targets,
            modules_to_save=list(head_modules),
            use_rslora=self.options.use_rslora,
            use_dora=self.options.use_dora,
        )
        if self.fused_layers:
            from tunewise.strategies.lora_fused import FusedLoraLinear

            config._register_custom_module({nn.Linear: FusedLoraLinear})
        leaves = sorted({t.rsplit(".", 1)[-1] for t in targets})
        self.details = {"target_modules": leaves, "n_adapted_layers": len(targets)}
        return get_peft_model(model, config)

    def merge(self, model: nn.Module) -> nn.Module:
        """W + (alpha/r)·BA folded into each adapted weight; the head's trained copy kept."""
        return model.merge_and_unload()
