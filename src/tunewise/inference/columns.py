"""Inputs held as plain columns in memory, used the way prediction uses a `datasets.Dataset`
(column names, a column, a row, a batched `map`).

Hand-written glue: a request of a few sentences built into a `Dataset` (`from_dict` + `map`)
cost ~15 ms on 2 cores, as much as minilm's forward pass; these few methods are all that
prediction reads from one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Columns:
    def __init__(self, data: dict[str, list[Any]]) -> None:
        sizes = {len(v) for v in data.values()}
        if len(sizes) > 1:
            raise ValueError(f"columns of different lengths: {sorted(sizes)}")
        self.data = data
        self.size = sizes.pop() if sizes else 0

    @property
    def column_names(self) -> list[str]:
        return list(self.data)

    def select_columns(self, names: list[str]) -> Columns:
        return Columns({k: self.data[k] for k in names})

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, str):
            return self.data[key]
        return {k: v[key] for k, v in self.data.items()}

    def map(
        self,
        fn: Callable[..., dict[str, list[Any]]],
        batched: bool = True,
        with_indices: bool = False,
        remove_columns: list[str] | None = None,
        desc: str | None = None,
    ) -> Columns:
        """`Dataset.map(fn, batched=True, ...)` over the whole table as one batch."""
        if not batched:
            raise ValueError("Columns.map runs batched functions only")
        args = (self.data, list(range(self.size))) if with_indices else (self.data,)
        out = dict(fn(*args))
        kept = {k: v for k, v in self.data.items() if k not in (remove_columns or []) + list(out)}
        return Columns({**kept, **out})

    def rename_column(self, old: str, new: str) -> Columns:
        return Columns({(new if k == old else k): v for k, v in self.data.items()})
