"""Tokenized inputs held as plain columns in memory, read the way `predict_logits` reads a
tokenized `datasets.Dataset` (column names, a column, a row).

Hand-written glue: a request of a few sentences built into a `Dataset` (`from_dict` + `map`)
cost ~15 ms on 2 cores, as much as minilm's forward pass; these few methods are all that
prediction reads from one.
"""

from __future__ import annotations

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
