"""Seeded bootstrap intervals for the numbers that are not counts (ECE, AURC).

A count of right images has an exact interval (Wilson's); ECE and AURC do not, so --ci
resamples the images: DRAWS resamples of the N images with replacement, drawn once per
image count from numpy's PCG64 generator seeded with SEED, so every model of a test set is
resampled on the same draws (their intervals are paired) and a rerun gives the same
interval. The interval is the 2.5th and 97.5th percentiles of the statistic over the draws.
Each draw is kept as how often each image is drawn (one byte per image), and the statistic is
computed from weighted sums, so no resampled copy of the predictions is made.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SEED = 20230501
DRAWS = 200
CHUNK = 25  # draws weighed at once: 25 x 50,000 float64 is 10 MB


def draws(n: int, count: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """count x n: how often each of n images is drawn in each resample (uint8; a draw of one
    image more than 255 times out of n is impossible at any n the table meets, checked)."""
    rng = np.random.default_rng(seed)
    found = np.empty((count, n), dtype=np.uint8)
    for row in range(count):
        counts = np.bincount(rng.integers(0, n, size=n), minlength=n)
        if counts.max(initial=0) > 255:
            raise ValueError("an image drawn more than 255 times")
        found[row] = counts
    return found


def interval(statistic: Callable[[np.ndarray], np.ndarray], weights: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of ``statistic`` (weights -> one value per draw) over the draws."""
    values = np.concatenate([statistic(weights[i : i + CHUNK]) for i in range(0, len(weights), CHUNK)])
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)
