"""Seeded, stratified, grouped train/validation/test splits.

Written here because no library does all three at once: scikit-learn's `train_test_split` does
not group, and `StratifiedGroupKFold` makes k equal folds, not 8:1:1. Per label (stratum), each
split's target is its ratio of the stratum, rounded by largest remainder so the targets add up;
groups (duplicates kept together) are then dealt, in seeded random order, to the split that is
furthest below its target. With single-record groups this hits every target exactly.
"""

from __future__ import annotations

import numpy as np

SPLIT_NAMES = ("train", "validation", "test")


def targets(n: int, ratios: list[float]) -> np.ndarray:
    """Counts per split that sum to n, each within 1 of n × ratio (largest remainder)."""
    raw = np.asarray(ratios, dtype=float) * n
    counts = np.floor(raw).astype(int)
    short = n - counts.sum()
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:short]] += 1
    return counts


def split_indices(
    labels: np.ndarray,
    groups: np.ndarray,
    ratios: list[float],
    seed: int,
    stratify: bool = True,
) -> dict[str, np.ndarray]:
    """Record indices per split name (sorted). `groups[i]` is record i's group id."""
    n = len(labels)
    rng = np.random.default_rng(seed)
    names = SPLIT_NAMES[: len(ratios)]
    assigned = np.full(n, -1, dtype=int)
    group_ids, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    sizes = np.bincount(inverse, minlength=len(group_ids))
    # A group's stratum is the label of its first record.
    strata = labels[first] if stratify else np.zeros(len(group_ids), dtype=int)
    group_split = np.full(len(group_ids), -1, dtype=int)
    for stratum in sorted(set(strata.tolist()), key=str):
        members = np.flatnonzero(strata == stratum)
        members = members[rng.permutation(len(members))]
        goal = targets(int(sizes[members].sum()), ratios)
        have = np.zeros(len(ratios), dtype=int)
        # Multi-record groups first, biggest first, each to the split furthest below its target
        # (relative to the target); single records then fill the remaining room exactly.
        big = members[sizes[members] > 1]
        big = big[np.argsort(-sizes[big], kind="stable")]
        for g in big.tolist():
            split = int(np.argmax((goal - have) / np.maximum(goal, 1)))
            group_split[g] = split
            have[split] += sizes[g]
        singles = members[sizes[members] == 1]
        room = np.maximum(goal - have, 0)
        if room.sum() != len(singles):  # big groups overshot a target: share what is left
            share = room / room.sum() if room.sum() else np.asarray(ratios)
            room = targets(len(singles), list(share))
        group_split[singles] = np.repeat(np.arange(len(ratios)), room)
    assigned = group_split[inverse]
    return {name: np.flatnonzero(assigned == i) for i, name in enumerate(names)}
