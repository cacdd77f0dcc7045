"""Accuracy, ranks, confidence intervals and paired significance tests.

Ranks compare exact counts of correct images, never rounded percentages: a
model's rank is 1 + the number of models with strictly more correct images, so
only equal counts share a rank.
"""

from __future__ import annotations

import math

import numpy as np


def topk_correct(
    preds: np.ndarray, top1: np.ndarray, labels: np.ndarray, k: int = 5
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-image correctness at top-1 and top-k (None when fewer than k columns exist).

    Top-k uses the first k columns, which for sorted files are the k most probable
    classes and for the unsorted 2019 files (k = 5 columns) are all of them.
    """
    correct1 = top1 == labels
    if preds.shape[1] < k:
        return correct1, None
    correct_k = preds[:, 0] == labels
    for j in range(1, k):  # faster than (preds[:, :k] == labels[:, None]).any(axis=1)
        correct_k |= preds[:, j] == labels
    return correct1, correct_k


def ranks(counts: list[int] | np.ndarray) -> list[int]:
    """Competition ranks of exact counts: 1 + number of strictly larger counts."""
    counts = np.asarray(counts)
    ordered = np.sort(counts)[::-1]
    # number strictly greater than c = position of the first c in the descending list
    return [int(np.searchsorted(-ordered, -c, side="left")) + 1 for c in counts]


def wilson_interval(correct: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default).

    Chosen over the normal approximation because it stays inside [0, 1] and keeps
    its coverage for accuracies near 0 or 1 and for small subsets.
    """
    if n == 0:
        return (math.nan, math.nan)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value for two classifiers scored on the same images.

    Only the discordant images matter: b = A right and B wrong, c = A wrong and B
    right. Under the null both are equally likely, so min(b, c) ~ Binomial(b + c, 1/2).
    """
    b = int(np.count_nonzero(correct_a & ~correct_b))
    c = int(np.count_nonzero(~correct_a & correct_b))
    if b + c == 0:
        return 1.0
    from scipy.stats import binom  # only --ci needs scipy

    return float(min(1.0, 2.0 * binom.cdf(min(b, c), b + c, 0.5)))
