"""Token classification (NER): the task, its head, the CoNLL reader and word/sub-token alignment.

The task class is imported on first use, so reading this package's data modules stays light
(no torch import).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TokenClassificationOptions", "TokenClassificationTask"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tunewise.tasks.token_classification import task

        return getattr(task, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
