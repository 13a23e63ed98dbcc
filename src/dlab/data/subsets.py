"""Subsets that represent the set they come from.

A scored subset of a test or validation set is a seeded stratified sample (or the whole
set), never a prefix: the bundled test digits are sorted by class, so their first 500
are zeros to fours.
"""

from __future__ import annotations

import numpy as np


def stratified_sample(labels: np.ndarray, n: int, rng: np.random.Generator | int) -> np.ndarray:
    """Sorted indices of `n` items drawn without replacement so that each class keeps its
    share of `labels` (largest remainders get the leftover places). n <= 0 or n >= len:
    every index."""
    labels = np.asarray(labels)
    total = len(labels)
    if n <= 0 or n >= total:
        return np.arange(total)
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n / total
    take = np.floor(exact).astype(int)
    leftover = n - take.sum()
    order = np.argsort(-(exact - take), kind="stable")
    take[order[:leftover]] += 1
    picked = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
              for c, k in zip(classes, take, strict=True) if k > 0]
    return np.sort(np.concatenate(picked))


def class_counts(labels: np.ndarray) -> dict[int, int]:
    """{class: count} of a label vector, for the record's Data section."""
    classes, counts = np.unique(np.asarray(labels), return_counts=True)
    return {int(c): int(k) for c, k in zip(classes, counts, strict=True)}


def spread_over_classes(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of n examples taking the classes in turn (first of each class, then the
    second, ...), so a figure shows every class even when the set is sorted by class."""
    groups = [list(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    out: list[int] = []
    for rank in range(max(len(g) for g in groups)):
        out += [g[rank] for g in groups if rank < len(g)]
        if len(out) >= n:
            break
    return np.array(out[:n], dtype=np.int64)
