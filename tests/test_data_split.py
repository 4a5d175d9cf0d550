"""Splits: exact stratification, seeded reproducibility, groups kept whole."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tunewise.data.split import split_indices, targets


@given(st.integers(0, 5000), st.sampled_from([[0.8, 0.1, 0.1], [0.7, 0.3], [0.6, 0.2, 0.2]]))
def test_targets_sum_to_n_and_stay_within_one_of_the_ratio(n, ratios):
    counts = targets(n, ratios)
    assert counts.sum() == n
    assert np.all(np.abs(counts - np.asarray(ratios) * n) < 1)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1, 400), min_size=1, max_size=6),
    st.integers(0, 10_000),
)
def test_stratification_is_exact_for_every_class(class_sizes, seed):
    labels = np.concatenate([np.full(n, f"c{i}") for i, n in enumerate(class_sizes)])
    labels = labels[np.random.default_rng(seed).permutation(len(labels))]
    parts = split_indices(labels, np.arange(len(labels)), [0.8, 0.1, 0.1], seed)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(labels)))
    for i, n in enumerate(class_sizes):
        expected = targets(n, [0.8, 0.1, 0.1])
        got = [int(np.sum(labels[parts[s]] == f"c{i}")) for s in ("train", "validation", "test")]
        assert got == expected.tolist()


def test_same_seed_same_split_other_seed_other_split():
    labels = np.array(["a", "b"] * 500)
    groups = np.arange(1000)
    one = split_indices(labels, groups, [0.8, 0.1, 0.1], seed=7)
    two = split_indices(labels, groups, [0.8, 0.1, 0.1], seed=7)
    three = split_indices(labels, groups, [0.8, 0.1, 0.1], seed=8)
    assert all(np.array_equal(one[k], two[k]) for k in one)
    assert not np.array_equal(one["test"], three["test"])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=5, max_size=80), st.integers(0, 1000))
def test_groups_never_straddle_splits(group_sizes, seed):
    groups = np.repeat(np.arange(len(group_sizes)), group_sizes)
    labels = np.array(["x", "y"])[groups % 2]
    parts = split_indices(labels, groups, [0.6, 0.2, 0.2], seed)
    where = {}
    for name, idx in parts.items():
        for g in groups[idx].tolist():
            assert where.setdefault(g, name) == name
    assert sum(len(v) for v in parts.values()) == len(groups)


def test_two_way_split_and_no_stratification():
    labels = np.array(["a"] * 90 + ["b"] * 10)
    parts = split_indices(labels, np.arange(100), [0.5, 0.5], seed=0, stratify=False)
    assert set(parts) == {"train", "validation"}
    assert len(parts["train"]) == len(parts["validation"]) == 50
