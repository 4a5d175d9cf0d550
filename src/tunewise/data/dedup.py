"""Duplicates: exact (after normalisation), near (MinHash LSH), conflicts, leakage between splits.

Signatures come from `datasketch.MinHash`, and the band layout (b bands of r rows) that fits the
threshold from `datasketch.MinHashLSH`'s optimiser. Instead of datasketch's in-memory LSH index
(a Python dict entry per record per band: gigabytes for a million records), each band's hash
goes into a numpy column; records sharing a band hash are candidates, found with one sort per
band. Candidates are confirmed with the exact Jaccard similarity of their shingle sets, so the
threshold means what it says; LSH only decides which pairs get compared.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def normalise(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: what 'the same text' means for exact dedup."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def exact_key(text: str) -> int:
    import xxhash

    return xxhash.xxh3_64_intdigest(normalise(text).encode("utf-8"))


def shingles(text: str, n: int) -> set[str]:
    """Word n-grams of the normalised text; a text of n words or fewer is one shingle."""
    words = normalise(text).split()
    if len(words) <= n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def band_layout(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) that datasketch's LSH optimiser picks for this threshold."""
    from datasketch import MinHashLSH

    # Weighted for recall: every candidate is verified with its exact Jaccard similarity, so a
    # false positive costs one comparison while a false negative is a duplicate missed. With
    # (0.05, 0.95) a pair at the threshold becomes a candidate with probability ~0.95 (0.4 with
    # datasketch's default equal weights).
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(0.05, 0.95))
    return lsh.b, lsh.r


class BandHasher:
    """MinHash signatures of texts' shingles, reduced to one 64-bit hash per LSH band.

    One `datasketch.MinHash` is cleared and refilled per text (its permutations are made once);
    shingles are hashed with xxhash (32-bit, as datasketch's default SHA-1 hash is) for speed.
    """

    def __init__(self, threshold: float, num_perm: int, ngram: int, seed: int = 1) -> None:
        self.ngram, self.num_perm, self.seed = ngram, num_perm, seed
        self.bands, self.rows = band_layout(threshold, num_perm)
        self._minhash: Any = None

    def batch(self, texts: list[str]) -> list[bytes]:
        """Band hashes of each text as `bands` little-endian uint64s packed into bytes."""
        import xxhash
        from datasketch import MinHash

        if self._minhash is None:  # made in the worker process; cleared for every text
            self._minhash = MinHash(
                num_perm=self.num_perm, seed=self.seed, hashfunc=xxhash.xxh32_intdigest
            )
        m, r, b = self._minhash, self.rows, self.bands
        out = []
        for text in texts:
            m.clear()
            m.update_batch([s.encode("utf-8") for s in shingles(text, self.ngram)])
            values = m.hashvalues
            keys = [
                xxhash.xxh3_64_intdigest(values[i * r : (i + 1) * r].tobytes()) for i in range(b)
            ]
            out.append(np.array(keys, dtype="<u8").tobytes())
        return out

    def __call__(self, text: str) -> np.ndarray:
        return np.frombuffer(self.batch([text])[0], dtype="<u8")


def exact_groups(keys: np.ndarray) -> np.ndarray:
    """For every record, the index of the first record with the same key."""
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)]


def candidate_pairs(bands: np.ndarray, rows: np.ndarray | None = None, extra: Any = None) -> Any:
    """(i, j) with i < j sharing at least one band hash; j is paired with its bucket's first i.

    `rows` picks records of `bands` and `extra` appends another band matrix after them, one band
    column at a time, so no copy of a whole (records × bands) matrix is made.
    """
    pairs = []
    for b in range(bands.shape[1]):
        column = bands[:, b] if rows is None else bands[rows, b]
        if extra is not None:
            column = np.concatenate([column, extra[:, b]])
        n = len(column)
        order = np.argsort(column, kind="stable")
        ordered = column[order]
        starts = np.r_[True, ordered[1:] != ordered[:-1]]
        group_first = order[np.maximum.accumulate(np.where(starts, np.arange(n), 0))]
        keep = ~starts
        pairs.append(np.stack([group_first[keep], order[keep]], axis=1))
    if not pairs:
        return np.empty((0, 2), dtype=np.int64)
    both = np.concatenate(pairs)
    return np.unique(both, axis=0) if len(both) else both.reshape(0, 2)


class _Clusters:
    """Union-find whose representative is always the smallest index (the one kept)."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, i: int) -> int:
        root = i
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while self.parent.get(i, i) != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def near_groups(
    bands: np.ndarray, texts: Any, threshold: float, ngram: int, rows: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Cluster representative per record (itself when unique) and the number of candidate pairs.

    `rows` restricts the records to those rows of `bands` (indices below are positions in it);
    `texts(indices)` returns the texts of those records (read lazily from the Arrow table).
    """
    rep = np.arange(len(bands) if rows is None else len(rows))
    pairs = candidate_pairs(bands, rows)
    if not len(pairs):
        return rep, 0
    involved = np.unique(pairs)
    sets = dict(zip(involved.tolist(), (shingles(t, ngram) for t in texts(involved)), strict=True))
    clusters = _Clusters()
    for i, j in pairs.tolist():
        if jaccard(sets[i], sets[j]) >= threshold:
            clusters.union(i, j)
    for i in clusters.parent:
        rep[i] = clusters.find(i)
    return rep, len(pairs)


@dataclass
class Duplicates:
    """What deduplication found; `group` is each record's group representative."""

    group: np.ndarray
    exact: np.ndarray  # bool: an exact duplicate of an earlier record
    near: np.ndarray  # bool: a near duplicate of an earlier (exactly unique) record
    conflicts: list[list[int]] = field(default_factory=list)  # groups with differing labels
    candidate_pairs: int = 0


def find_duplicates(
    keys: np.ndarray,
    labels: np.ndarray,
    bands: np.ndarray | None,
    texts: Any,
    threshold: float,
    ngram: int,
) -> Duplicates:
    n = len(keys)
    group = exact_groups(keys)
    exact = group != np.arange(n)
    near = np.zeros(n, dtype=bool)
    n_pairs = 0
    if bands is not None:
        unique = np.flatnonzero(~exact)
        rep, n_pairs = near_groups(
            bands, lambda idx: texts(unique[idx]), threshold, ngram, rows=unique
        )
        near_rep = unique[rep]  # representative, as an index of all records
        near[unique] = near_rep != unique
        full = np.arange(n)
        full[unique] = near_rep
        group = full[group]  # exact duplicates follow their first occurrence's cluster
    return Duplicates(group, exact, near, _conflicts(group, labels), n_pairs)


def _conflicts(group: np.ndarray, labels: np.ndarray) -> list[list[int]]:
    """Groups whose members do not all carry the same label (member indices, ascending)."""
    members = np.flatnonzero(group != np.arange(len(group)))
    differ = members[labels[members] != labels[group[members]]]
    reps = np.unique(group[differ])
    if not len(reps):
        return []
    idx = np.flatnonzero(np.isin(group, reps))
    idx = idx[np.argsort(group[idx], kind="stable")]
    cuts = np.flatnonzero(np.diff(group[idx])) + 1
    return [part.tolist() for part in np.split(idx, cuts)]


def leaked(
    train_keys: np.ndarray,
    other_keys: np.ndarray,
    train_bands: np.ndarray | None,
    other_bands: np.ndarray | None,
    texts: Any,
    threshold: float,
    ngram: int,
) -> dict[int, int]:
    """Records of another split whose text (or a near duplicate) is in train: {other: train}.

    `texts(indices)` reads texts by index of train followed by the other split.
    """
    out: dict[int, int] = {}
    order = np.argsort(train_keys, kind="stable")
    ordered = train_keys[order]
    pos = np.minimum(np.searchsorted(ordered, other_keys), max(len(ordered) - 1, 0))
    hit = np.flatnonzero(ordered[pos] == other_keys) if len(ordered) else np.zeros(0, int)
    for j, i in zip(hit.tolist(), order[pos[hit]].tolist(), strict=True):
        out[j] = i
    if train_bands is None or other_bands is None:
        return out
    n_train = len(train_bands)
    pairs = candidate_pairs(train_bands, extra=other_bands)
    cross = pairs[(pairs[:, 0] < n_train) & (pairs[:, 1] >= n_train)]
    if not len(cross):
        return out
    involved = np.unique(cross)
    sets = dict(zip(involved.tolist(), (shingles(t, ngram) for t in texts(involved)), strict=True))
    for i, j in cross.tolist():
        if j - n_train not in out and jaccard(sets[i], sets[j]) >= threshold:
            out[j - n_train] = i
    return out
