"""Freed heap memory goes back to the system (training.heap.trim), as after training."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from tunewise.training.heap import trim


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_trim_returns_freed_heap_pages_to_the_system():
    big = torch.ones(8 << 20, dtype=torch.uint8)
    del big  # a freed 8 MB mmap raises glibc's mmap threshold above 4 MB
    kept = [torch.ones(4 << 20, dtype=torch.uint8) for _ in range(100)]  # on the heap now
    del kept[:-1:2]  # free every other one: holes that the heap's top cannot give back
    before = rss_mb()
    assert trim() is True
    assert before - rss_mb() > 100, "trim gave back less than half of the 200 MB freed"
