"""Length-grouped batching: coverage, size/budget limits, grouping, seeding, epoch shuffling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunewise.training.batching import LengthGroupedBatchSampler, grouped_batches, pack_batches

lengths_st = st.lists(st.integers(min_value=1, max_value=300), min_size=0, max_size=200)
seed_st = st.one_of(st.none(), st.integers(min_value=0, max_value=2**32 - 1))
FAST = settings(max_examples=150, deadline=None)


def flat(batches: list[list[int]]) -> list[int]:
    return [i for batch in batches for i in batch]


def padded(batch: list[int], lengths: list[int]) -> int:
    return len(batch) * max(lengths[i] for i in batch)


# ------------------------------------------------------------------------ properties (hypothesis)


@FAST
@given(lengths=lengths_st, batch_size=st.integers(1, 40), seed=seed_st)
def test_fixed_count_covers_every_index_once_and_respects_batch_size(lengths, batch_size, seed):
    batches = pack_batches(lengths, batch_size, seed=seed)
    assert sorted(flat(batches)) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    # consecutive runs of the sorted order: only the last batch may be short
    assert all(len(b) == batch_size for b in batches[:-1])
    assert len(batches) == -(-len(lengths) // batch_size)


@FAST
@given(
    lengths=lengths_st,
    max_tokens=st.integers(1, 2000),
    batch_size=st.integers(1, 40),
    seed=seed_st,
)
def test_token_budget_covers_every_index_once_and_keeps_the_budget(
    lengths, max_tokens, batch_size, seed
):
    batches = pack_batches(lengths, batch_size, max_tokens=max_tokens, seed=seed)
    assert sorted(flat(batches)) == list(range(len(lengths)))
    for batch in batches:
        assert batch, "empty batch"
        if len(batch) > 1:
            assert padded(batch, lengths) <= max_tokens
    # an over-long example is always alone
    for batch in batches:
        if any(lengths[i] > max_tokens for i in batch):
            assert len(batch) == 1


@FAST
@given(lengths=lengths_st, max_tokens=st.integers(1, 2000), seed=seed_st)
def test_token_budget_batches_are_filled_greedily(lengths, max_tokens, seed):
    # Without this, one example per batch would satisfy the budget trivially.
    batches = pack_batches(lengths, 10_000, max_tokens=max_tokens, seed=seed)
    for batch, following in itertools.pairwise(batches):
        assert padded([*batch, following[0]], lengths) > max_tokens


@FAST
@given(
    lengths=lengths_st,
    batch_size=st.integers(1, 40),
    max_tokens=st.one_of(st.none(), st.integers(1, 2000)),
    seed=seed_st,
)
def test_batches_are_length_sorted_runs(lengths, batch_size, max_tokens, seed):
    batches = pack_batches(lengths, batch_size, max_tokens=max_tokens, seed=seed)
    in_order = [lengths[i] for i in flat(batches)]
    assert in_order == sorted(in_order)  # so each batch spans a narrow band of lengths


@FAST
@given(
    lengths=lengths_st,
    batch_size=st.integers(1, 40),
    max_tokens=st.one_of(st.none(), st.integers(1, 2000)),
    seed=st.integers(0, 2**32 - 1),
)
def test_same_seed_same_batches(lengths, batch_size, max_tokens, seed):
    first = pack_batches(lengths, batch_size, max_tokens=max_tokens, seed=seed)
    assert pack_batches(lengths, batch_size, max_tokens=max_tokens, seed=seed) == first


@FAST
@given(lengths=lengths_st, batch_size=st.integers(1, 40), max_tokens=st.integers(1, 2000))
def test_sampler_len_matches_what_it_yields(lengths, batch_size, max_tokens):
    for shuffle in (True, False):
        sampler = LengthGroupedBatchSampler(lengths, batch_size, max_tokens, shuffle=shuffle)
        yielded = list(sampler)
        assert len(sampler) == len(yielded) == len(sampler.batches)
        assert sorted(flat(yielded)) == list(range(len(lengths)))


# ------------------------------------------------------------------------------ examples


def test_fixed_count_example():
    lengths = [5, 1, 4, 2, 3, 9, 7]
    assert pack_batches(lengths, 3, seed=None) == [[1, 3, 4], [2, 0, 6], [5]]


def test_token_budget_example_with_an_overlong_example():
    lengths = [10, 10, 10, 30, 30, 500, 10]
    batches = pack_batches(lengths, 32, max_tokens=64, seed=None)
    # 4 × 10 = 40 fits; 2 × 30 = 60 fits; 500 exceeds the budget on its own
    assert batches == [[0, 1, 2, 6], [3, 4], [5]]


def test_token_budget_gives_short_examples_bigger_batches():
    lengths = [4] * 40 + [32] * 40
    batches = pack_batches(lengths, 64, max_tokens=128, seed=0)
    sizes = [(lengths[b[0]], len(b)) for b in batches]
    assert sizes == [(4, 32), (4, 8)] + [(32, 4)] * 10


def test_no_seed_breaks_ties_in_index_order():
    assert pack_batches([3] * 7, 3, seed=None) == [[0, 1, 2], [3, 4, 5], [6]]


def test_empty_input_gives_no_batches():
    assert pack_batches([], 4) == []
    assert list(LengthGroupedBatchSampler([], 4)) == []


def test_different_seeds_break_ties_differently():
    lengths = [7] * 24
    a = pack_batches(lengths, 4, seed=0)
    b = pack_batches(lengths, 4, seed=1)
    assert a != b
    assert sorted(flat(a)) == sorted(flat(b)) == list(range(24))
    # ties only: the seed never reorders examples of different length
    mixed = [1, 2, 3, 4, 5, 6]
    assert (
        pack_batches(mixed, 2, seed=0)
        == pack_batches(mixed, 2, seed=123)
        == [
            [0, 1],
            [2, 3],
            [4, 5],
        ]
    )


def test_seed_changes_batch_composition_within_a_length():
    lengths = [2] * 12 + [9] * 12
    batches = {seed: pack_batches(lengths, 4, seed=seed) for seed in range(5)}
    assert len({tuple(map(tuple, b)) for b in batches.values()}) > 1
    for b in batches.values():  # but never mixes the two lengths
        assert all(len({lengths[i] for i in batch}) == 1 for batch in b)


# -------------------------------------------------------------------------------- sampler


def sampler_lengths() -> list[int]:
    return [(i * 37) % 50 + 1 for i in range(96)]


def test_global_grouping_reorders_the_same_batches_each_epoch():
    sampler = LengthGroupedBatchSampler(sampler_lengths(), 8, seed=3, grouping="global")
    first = list(sampler)
    second = list(sampler)  # the epoch advances on its own
    assert len(first) == 12
    assert first != second
    assert sorted(map(tuple, first)) == sorted(map(tuple, second))
    assert sorted(map(tuple, first)) == sorted(map(tuple, sampler.batches))
    # the batches themselves are fixed: the shuffle only reorders them
    assert all(list(b) in sampler.batches for b in second)


def test_set_epoch_reproduces_an_epochs_order():
    a = LengthGroupedBatchSampler(sampler_lengths(), 8, seed=3)
    b = LengthGroupedBatchSampler(sampler_lengths(), 8, seed=3)
    epochs_a = [list(a) for _ in range(3)]
    b.set_epoch(2)
    assert list(b) == epochs_a[2]
    b.set_epoch(0)
    assert list(b) == epochs_a[0]
    assert epochs_a[0] != epochs_a[1] != epochs_a[2]


def test_sampler_seed_controls_the_order():
    a = list(LengthGroupedBatchSampler(sampler_lengths(), 8, seed=3))
    same = list(LengthGroupedBatchSampler(sampler_lengths(), 8, seed=3))
    other = list(LengthGroupedBatchSampler(sampler_lengths(), 8, seed=4))
    assert a == same
    assert a != other


def test_unshuffled_sampler_yields_sorted_batches_every_time():
    lengths = sampler_lengths()
    sampler = LengthGroupedBatchSampler(lengths, 8, shuffle=False, seed=3)
    first = list(sampler)
    assert first == list(sampler) == pack_batches(lengths, 8, seed=None)
    in_order = [lengths[i] for i in flat(first)]
    assert in_order == sorted(in_order)


@pytest.mark.parametrize(("max_tokens", "expected"), [(None, 12), (64, None)])
def test_sampler_len_is_the_number_of_batches(max_tokens, expected):
    lengths = sampler_lengths()
    sampler = LengthGroupedBatchSampler(lengths, 8, max_tokens=max_tokens, seed=1)
    want = len(grouped_batches(lengths, 8, max_tokens, seed=1))
    assert len(sampler) == want == len(list(sampler)) == len(list(sampler))
    if expected is not None:
        assert len(sampler) == expected


def test_sampler_works_as_a_dataloader_batch_sampler():
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    lengths = sampler_lengths()
    data = TensorDataset(torch.arange(len(lengths)))
    loader = DataLoader(data, batch_sampler=LengthGroupedBatchSampler(lengths, 8, seed=0))
    seen = torch.cat([batch[0] for batch in loader]).tolist()
    assert sorted(seen) == list(range(len(lengths)))
    assert len(loader) == 12


# ------------------------------------------------------------------ grouping (window/global/none)

grouping_st = st.sampled_from(["window", "global", "none"])


@FAST
@given(
    lengths=lengths_st,
    batch_size=st.integers(1, 40),
    max_tokens=st.one_of(st.none(), st.integers(1, 2000)),
    seed=st.integers(0, 2**32 - 1),
    grouping=grouping_st,
)
def test_every_grouping_covers_each_example_once_within_limits(
    lengths, batch_size, max_tokens, seed, grouping
):
    batches = grouped_batches(lengths, batch_size, max_tokens, seed, grouping)
    assert sorted(flat(batches)) == list(range(len(lengths)))
    assert all(batches)
    for b in batches:
        assert len(b) <= batch_size or max_tokens
        if max_tokens:
            assert len(b) == 1 or padded(b, lengths) <= max_tokens


@FAST
@given(lengths=lengths_st, batch_size=st.integers(1, 40), grouping=grouping_st)
def test_fixed_count_batches_do_not_depend_on_the_seed_in_number(lengths, batch_size, grouping):
    counts = {len(grouped_batches(lengths, batch_size, None, s, grouping)) for s in (0, 1, 2)}
    assert counts == {-(-len(lengths) // batch_size)} or not lengths


def test_window_grouping_pads_little_but_keeps_batches_random():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 120, size=4000).tolist()
    window = grouped_batches(lengths, 16, None, 0, "window")
    glob = grouped_batches(lengths, 16, None, 0, "global")
    none = grouped_batches(lengths, 16, None, 0, "none")
    pad = {
        k: sum(padded(b, lengths) for b in v) / sum(lengths)
        for k, v in {"window": window, "global": glob, "none": none}.items()
    }
    assert pad["global"] <= pad["window"] < 1.15 < pad["none"]

    # Under `global` a batch holds one narrow band of lengths drawn from the whole set; under
    # `window` its band comes from a random window, so a batch mixes more lengths, and another
    # seed gives other batches.
    def spread(batches: list[list[int]]) -> float:
        return float(
            np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
        )

    assert spread(glob) < 0.5 < spread(window)
    other = grouped_batches(lengths, 16, None, 1, "window")
    same = {frozenset(b) for b in window} & {frozenset(b) for b in other}
    assert len(same) < len(window) // 10


def test_sampler_regroups_fixed_count_batches_every_epoch_with_a_stable_length():
    lengths = np.random.default_rng(3).integers(1, 60, size=500).tolist()
    sampler = LengthGroupedBatchSampler(lengths, 8, seed=5)
    epochs = [list(sampler) for _ in range(3)]
    assert {len(e) for e in epochs} == {len(sampler)}
    for e in epochs:
        assert sorted(flat(e)) == list(range(500))
    sets = [{frozenset(b) for b in e} for e in epochs]
    assert len(sets[0] & sets[1]) < len(sets[0]) // 4
    # `global` keeps its batches and only reorders them
    fixed = LengthGroupedBatchSampler(lengths, 8, seed=5, grouping="global")
    a, b = list(fixed), list(fixed)
    assert a != b and {frozenset(x) for x in a} == {frozenset(x) for x in b}


def test_token_budget_batches_keep_their_count_across_epochs():
    lengths = np.random.default_rng(4).integers(1, 60, size=300).tolist()
    sampler = LengthGroupedBatchSampler(lengths, 64, max_tokens=256, seed=1)
    assert len(list(sampler)) == len(list(sampler)) == len(sampler)
