"""What prompt tuning, prefix tuning and P-tuning share: virtual tokens on the backbone, via peft.

peft's prompt-learning models expect to be the whole model, but a tunewise task model is a head
around a bare backbone (BertModel, LlamaModel; or the base inside a *ForCausalLM). So the backbone
alone is wrapped with peft's FEATURE_EXTRACTION model, and `VirtualTokenBackbone` strips the
virtual tokens' output states again: every head (mask pooling, token-level heads, LM heads) then
sees exactly one state per real input token, aligned with its attention mask and labels, while
each real token still attends to the virtual ones. peft has no such wrapper; this is the glue.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from tunewise.errors import ConfigError
from tunewise.strategies.base import Strategy, set_trainable, train_heads

SEQ2SEQ = "AutoModelForSeq2SeqLM"
# Lester et al.'s soft-prompt length: the default for generative tasks, whose prompt is the whole
# adaptation (a strategy may default shorter where the task trains a head: `tokens_with_head`).
TOKENS_GENERATIVE = 20


def find_base_model(model: nn.Module) -> tuple[str, nn.Module]:
    """(path, module) of the outermost bare transformers base model (BertModel, LlamaModel):
    the task wrapper's `backbone`, or `model` inside a *ForCausalLM. Path "" is `model` itself."""
    from transformers import PreTrainedModel

    for name, module in model.named_modules():
        if isinstance(module, PreTrainedModel) and module.base_model is module:
            return name, module
    raise ConfigError(
        f"Virtual-token strategies need a transformers base model inside {type(model).__name__}; "
        "none was found. Use 'lora' or 'adapter' for this model."
    )


class VirtualTokenBackbone(nn.Module):
    """A backbone with learned virtual tokens whose outputs line up with the real tokens."""

    def __init__(self, peft_model: nn.Module, num_virtual_tokens: int, prepends: bool) -> None:
        super().__init__()
        self.peft_model = peft_model
        self.num_virtual_tokens = num_virtual_tokens
        # prompt tuning / P-tuning add input positions; prefix tuning only adds keys and values
        self.prepends = prepends

    @property
    def config(self) -> Any:
        return self.peft_model.get_base_model().config

    def get_input_embeddings(self) -> nn.Module:
        return self.peft_model.get_base_model().get_input_embeddings()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,  # peft drops segment ids for prompts
        position_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        n = self.num_virtual_tokens
        # the KV cache: `cache` in transformers >= 5.x, `past_key_values` before
        cache_key = "cache" if kwargs.get("cache") is not None else "past_key_values"
        cache = kwargs.get(cache_key)
        kwargs.pop("cache_position", None)  # recomputed from the cache by the model
        if cache is not None and cache.get_seq_length() > 0:
            # a generation step after the first: the virtual tokens already sit in the cache
            if attention_mask is not None:
                pad = attention_mask.new_ones(attention_mask.shape[0], n)
                attention_mask = torch.cat([pad, attention_mask], dim=1)
            if position_ids is not None:  # real tokens sit after the virtual ones
                position_ids = position_ids + n
            return self.peft_model.get_base_model()(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                **kwargs,
            )
        if not self.prepends:
            kwargs.pop("cache", None)  # prefix tuning brings its own cache ...
            kwargs.pop("past_key_values", None)
            kwargs["use_cache"] = True  # ... which attention reads only when caching is on
            if position_ids is not None:
                kwargs["position_ids"] = position_ids  # peft shifts them past the prefix
        if self.prepends and input_ids is not None and kwargs.get("inputs_embeds") is None:
            kwargs["inputs_embeds"] = self.get_input_embeddings()(input_ids)
            input_ids = None
        out = self.peft_model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        if self.prepends:
            out["last_hidden_state"] = out.last_hidden_state[:, n:]
            if out.get("hidden_states") is not None:
                out["hidden_states"] = tuple(h[:, n:] for h in out.hidden_states)
        return out


class VirtualTokenStrategy(Strategy):
    """Base of the three prompt-learning strategies; subclasses build the peft config."""

    prepends: ClassVar[bool] = True
    supports_packing: ClassVar[bool] = False  # one row's examples would share the virtual tokens
    lr_max_scale = 1.0  # already large rates; the head trains at the same rate

    @classmethod
    def incompatible(cls, task_cls: type) -> str | None:
        if getattr(task_cls, "auto_model", "") == SEQ2SEQ:
            return (
                "virtual tokens for encoder-decoder models are not supported here "
                "(the decoder would not see them); use lora or ia3"
            )
        return None

    # the default length where the task trains a head of its own (`num_virtual_tokens: null`)
    tokens_with_head: ClassVar[int] = TOKENS_GENERATIVE
    # the reference learning rate where the task trains a head of its own (the head trains at
    # the prompt's rate); None: `base_learning_rate` for every task
    learning_rate_with_head: ClassVar[float | None] = None

    def reference_learning_rate(self) -> float:
        if self.learning_rate_with_head and self.details.get("head"):
            return self.learning_rate_with_head
        return self.base_learning_rate

    @classmethod
    def reference_learning_rates(cls) -> tuple[float, ...]:
        with_head = (cls.learning_rate_with_head,) if cls.learning_rate_with_head else ()
        return (cls.base_learning_rate, *with_head)

    @classmethod
    def default_virtual_tokens(cls, task_cls: type) -> int:
        return TOKENS_GENERATIVE if getattr(task_cls, "generative", False) else cls.tokens_with_head

    @classmethod
    def resolve_options(cls, options: Any, task_cls: type) -> Any:
        if getattr(options, "num_virtual_tokens", 0) is None:
            n = cls.default_virtual_tokens(task_cls)
            resolved = options.model_copy(update={"num_virtual_tokens": n})
            # still a default, not the user's choice (a sweep must not carry it to P-tuning)
            resolved.__pydantic_fields_set__.discard("num_virtual_tokens")
            return resolved
        return options

    @classmethod
    def virtual_tokens_for(cls, task_cls: type) -> int:
        if cls.prepends:
            return cls.default_virtual_tokens(task_cls)
        return cls.advisor.virtual_tokens

    def peft_config(self, base: nn.Module, num_virtual_tokens: int) -> Any:
        raise NotImplementedError

    def apply(self, model: nn.Module, head_modules: list[str]) -> nn.Module:
        from peft import get_peft_model

        path, base = find_base_model(model)
        if getattr(base.config, "is_encoder_decoder", False):
            raise ConfigError(
                f"Strategy '{self.name}' does not support encoder-decoder models "
                f"({type(base).__name__}); use 'lora' or 'ia3'."
            )
        # a config resolved the length (`resolve_options`); options built by hand may leave it
        # None, and then a task model with head modules gets the short default
        length = self.options.num_virtual_tokens
        if length is None:
            length = self.tokens_with_head if head_modules else TOKENS_GENERATIVE
        set_trainable(model, False)
        # every place that holds the base model (a multi-task model's heads share one)
        paths = [n for n, m in model.named_modules(remove_duplicate=False) if m is base]
        peft_model = get_peft_model(base, self.peft_config(base, length))
        # peft keeps a second reference to the embedding table; checkpoints (safetensors)
        # refuse shared tensors, and the wrapper embeds the inputs itself.
        del peft_model.word_embeddings
        wrapped = VirtualTokenBackbone(peft_model, length, self.prepends)
        if not path:
            model = wrapped
        for where in paths if path else []:
            parent, _, leaf = where.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, leaf, wrapped)
        train_heads(model, head_modules)
        self.details = {"num_virtual_tokens": length, "wrapped": path, "head": bool(head_modules)}
        return model

    def merge(self, model: nn.Module) -> nn.Module:
        raise ConfigError(
            f"Strategy '{self.name}' cannot be merged into the base model: its virtual tokens are "
            "extra inputs on every forward pass, not weight updates. Serve the run with "
            "tunewise (Predictor) instead, or train with lora / ia3 for a mergeable model."
        )
