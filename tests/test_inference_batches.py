"""Inference batches cut by cost (`pack_batches(..., forward_cost=)`, `forward_cost(...)`)."""

from __future__ import annotations

import itertools
import random
import threading

import pytest

from tunewise.inference.batches import cheapest_cuts, forward_cost, pack_batches, sorted_batches


def cost_of(runs: list[tuple[int, int]], sizes: list[int], fixed: float) -> float:
    return sum(fixed + (b - a) * sizes[b - 1] for a, b in runs)


def every_cut(n: int):
    """All ways to cut range(n) into contiguous runs, as (start, end) lists."""
    for mask in itertools.product((False, True), repeat=max(n - 1, 0)):
        cuts = [0] + [i + 1 for i, cut in enumerate(mask) if cut] + [n]
        yield list(itertools.pairwise(cuts))


def allowed(runs, sizes, batch_size, max_tokens) -> bool:
    return all(
        b - a <= batch_size
        and (b - a == 1 or not max_tokens or (b - a) * sizes[b - 1] <= max_tokens)
        for a, b in runs
    )


@pytest.mark.parametrize("seed", range(40))
def test_cuts_are_the_cheapest_of_all_allowed_cuts(seed):
    rng = random.Random(seed)
    sizes = sorted(rng.randint(1, 60) for _ in range(rng.randint(1, 9)))
    batch_size, fixed = rng.randint(1, 6), rng.choice([0.0, 3.0, 16.0, 200.0])
    max_tokens = rng.choice([None, 80, 150])
    runs = cheapest_cuts(sizes, batch_size, max_tokens, fixed)
    assert [a for a, _ in runs] == [0] + [b for _, b in runs[:-1]] and runs[-1][1] == len(sizes)
    assert allowed(runs, sizes, batch_size, max_tokens)
    best = min(
        cost_of(r, sizes, fixed)
        for r in every_cut(len(sizes))
        if allowed(r, sizes, batch_size, max_tokens)
    )
    assert cost_of(runs, sizes, fixed) == pytest.approx(best)


def test_a_cheap_pass_splits_by_length_and_a_dear_one_keeps_one_batch():
    lengths = [50, 10, 10, 50, 10]
    # 20 + 3 x 10 and 20 + 2 x 50 (170) beat one padded batch 20 + 5 x 50 (270)
    assert pack_batches(lengths, 8, seed=None, forward_cost=20) == [[1, 2, 4], [0, 3]]
    assert pack_batches(lengths, 8, seed=None, forward_cost=500) == [[1, 2, 4, 0, 3]]
    # three passes either way: 10 + 2 x 50 pads less than 2 x 50 + 50
    assert pack_batches(lengths, 2, seed=None, forward_cost=500) == [[1, 2], [4], [0, 3]]


def test_the_context_sets_the_cost_for_this_thread_only():
    lengths = [50, 10, 10, 50, 10]
    plain = list(sorted_batches(lengths, 8))
    seen: dict[str, list] = {}

    def other_thread() -> None:
        seen["other"] = list(sorted_batches(lengths, 8))

    with forward_cost(20):
        seen["inside"] = list(sorted_batches(lengths, 8))
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert plain == [[1, 2, 4, 0, 3]]
    assert seen["inside"] == [[1, 2, 4], [0, 3]]
    assert seen["other"] == plain
    assert list(sorted_batches(lengths, 8)) == plain  # reset after the block


def test_the_context_resets_after_an_error():
    with pytest.raises(RuntimeError), forward_cost(1):
        raise RuntimeError
    assert list(sorted_batches([50, 10], 8)) == [[1, 0]]
