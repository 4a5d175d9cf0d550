"""tunewise: fine-tune pretrained language models, and pick the strategy that fits.

run = tunewise.finetune("cfg.yaml")
tunewise.load(run.run_dir).predict(["great film"])
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["evaluate", "finetune", "load", "load_config", "predict"]


def __getattr__(name: str) -> Any:  # lazy: `import tunewise` stays fast (no torch)
    if name in ("finetune", "load", "evaluate", "predict"):
        from tunewise import api

        return getattr(api, name)
    if name == "load_config":
        from tunewise.config import load_config

        return load_config
    raise AttributeError(f"module 'tunewise' has no attribute {name!r}")
