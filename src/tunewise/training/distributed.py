"""Multi-process training helpers (torchrun / accelerate launch set RANK and WORLD_SIZE).

The Trainer (through accelerate) does the DDP work: process group, gradient all-reduce, gathered
evaluation. tunewise only needs to know who writes the run directory, to wait for that rank,
and to gather its own final-evaluation predictions.
"""

from __future__ import annotations

import os
from typing import Any


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """Rank 0 writes the run directory, reports, tracking and the progress bar."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process); starts the process group if needed."""
    if world_size() > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def all_gather(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order ([obj] in a single process)."""
    if world_size() == 1:
        return [obj]
    import torch.distributed as dist

    barrier()  # makes sure the process group exists
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
