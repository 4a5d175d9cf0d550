"""Single- and multi-label text classification: the task, its options and reader.

The task class is imported on first use, so reading this package's data modules stays light
(no torch import).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ClassificationOptions", "ClassificationTask"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tunewise.tasks.classification import task

        return getattr(task, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
