"""Calibration of the top-1 probability: how far a model's confidence can be trusted.

Top-label calibration as Guo et al. (2017) and Minderer et al. (2021) measure it: each image's
confidence is its top-1 probability, and it is right or wrong by the test set's rule (or
ReaL's, or the corrected labels'). The images fall into 15 equal-width bins on (0, 1]:
bin b holds the confidences in (b/15, (b+1)/15] (a confidence of exactly 0, which only a
generated file can hold, goes in the first bin). Everything the table shows comes from the
bins' sums, so a model keeps 46 numbers, not its 50,000 confidences:
- ECE: the bins' |accuracy - mean confidence|, weighted by their share of the images;
- MCE: the largest of those gaps over the non-empty bins;
- Brier: the mean of (confidence - correct)^2 (the top-1 confidence as a binary forecast);
- the mean confidence beside the accuracy on the same images (over- or under-confidence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .confidences import Confidences

BINS = 15
EDGES = np.linspace(0.0, 1.0, BINS + 1)
INNER_EDGES = tuple(float(edge) for edge in EDGES[1:-1])
_LOWER, _UPPER = EDGES[:-1].tolist(), EDGES[1:].tolist()


def bin_of(confidence: np.ndarray) -> np.ndarray:
    """Each confidence's bin, 0..14: (b/15, (b+1)/15] is bin b, at the float edges of ``EDGES``."""
    found: np.ndarray = np.searchsorted(EDGES[1:-1], confidence, side="left")
    return found


def sums(graded: Confidences) -> np.ndarray:
    """The numbers a model keeps: per bin its image count, confidence sum and right count, then
    the sum of squared errors (Brier): 3 * BINS + 1 floats. From the shared sort: bin b is the
    run of sorted confidences after the last <= EDGES[b] up to the last <= EDGES[b + 1] (as
    ``bin_of``), found by 14 binary searches, and summed by one reduceat; its right images are
    its images less the wrong ones among them (two binary searches in the wrong images'
    places). Brier's sum over the images of (confidence - right)^2 is the sum of the squared
    confidences, less twice the right images' confidences, plus their number. Few calls: the
    table grades models in two threads, and numpy holds the GIL between calls."""
    ascending = graded.ascending.astype(np.float64)  # once: each sum below is faster on float64
    wrong_at, n = graded.wrong_at, graded.n
    ends = np.concatenate(([0], graded.at_most(INNER_EDGES), [n]))
    counts = np.diff(ends)
    filled = counts > 0  # one reduceat over the bins that hold images: their starts increase strictly
    sums = np.zeros((2, BINS))
    if filled.any():
        sums[0, filled] = np.add.reduceat(ascending, ends[:-1][filled])
    sums[1] = counts - np.diff(np.searchsorted(wrong_at, ends))
    right_confidence = sums[0].sum() - ascending.take(wrong_at).sum()
    squares = np.einsum("i,i->", ascending, ascending)  # numpy's own loop: np.dot would call BLAS (its threads)
    brier = squares - 2 * right_confidence + (n - len(wrong_at))
    return np.concatenate([counts, sums.ravel(), [brier]]).astype(np.float64)


SIZE = 3 * BINS + 1


@dataclass(frozen=True)
class Calibration:
    """What the columns show, from ``sums``' numbers."""

    n: int
    ece: float
    mce: float
    brier: float
    mean_confidence: float
    accuracy: float
    bins: list[tuple[float, float, int, float | None, float | None]]  # (lo, hi, images, mean conf, accuracy)

    @classmethod
    def of(cls, numbers: np.ndarray) -> Calibration:
        count, conf, right = numbers[:BINS], numbers[BINS : 2 * BINS], numbers[2 * BINS : 3 * BINS]
        n = float(count.sum())
        full = count > 0
        gaps = np.abs(right[full] - conf[full]) / count[full]
        shown = np.where(full, count, 1)  # each bin's means as Python floats at once (a table has many rows)
        bins = [
            (lo, hi, images, mean if filled else None, accuracy if filled else None)
            for lo, hi, images, mean, accuracy, filled in zip(
                _LOWER,
                _UPPER,
                count.astype(np.int64).tolist(),
                (conf / shown).tolist(),
                (right / shown).tolist(),
                full.tolist(),
                strict=True,
            )
        ]
        if n == 0:
            return cls(0, float("nan"), float("nan"), float("nan"), float("nan"), float("nan"), bins)
        return cls(
            int(n),
            float(np.sum(gaps * count[full]) / n),
            float(gaps.max()),
            float(numbers[3 * BINS] / n),
            float(conf.sum() / n),
            float(right.sum() / n),
            bins,
        )


def ece_of_weighted(bins: np.ndarray, confidence: np.ndarray, correct: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ECE under each row of ``weights`` (resamples x images, how often each image is drawn),
    for the bootstrap: the bins' sums are sums over images, so a resample's are weighted sums."""
    order = np.argsort(bins, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(bins[order]) != 0])
    w = weights[:, order].astype(np.float64)
    count = np.add.reduceat(w, starts, axis=1)
    conf = np.add.reduceat(w * confidence[order], starts, axis=1)
    right = np.add.reduceat(w * correct[order], starts, axis=1)
    ece: np.ndarray = np.abs(right - conf).sum(axis=1) / count.sum(axis=1)
    return ece
