"""Selective prediction: how well the top-1 probability orders a model's right answers before
its wrong ones, so that it may abstain on the rest.

The risk-coverage curve (Geifman and El-Yaniv 2017): accept the images whose confidence is at
least a threshold; coverage is the share accepted, risk the share of those that are wrong.
The images are taken in decreasing confidence; at coverage k/N (k = 1..N, so the curve's first
point is one image, and there is none at coverage 0) the risk is the errors among the first k
divided by k. AURC is the mean of those N risks.

Ties are kept together: images of equal confidence cannot be told apart by a threshold, so
among them the first j are each counted as the group's share of errors (errors in the group x
j / its size), the expectation over every order of the tied images. Without ties this is
Geifman et al.'s per-image sum, as Galil et al. (2023) use it; with ties theirs depends on the
order the sort leaves tied images in, and ours does not. A model whose confidence is 1 on its
right images and 0 on its wrong ones has the optimal AURC (E-AURC 0); only a model with no
error has AURC 0.

E-AURC is AURC minus the AURC of a model with the same errors ranked perfectly (all right
answers first): (1/N) sum over k > R of (k - R)/k, with R right, computed exactly (not with
Geifman's continuous approximation r + (1 - r) ln(1 - r)).

Cov@95 and Cov@99: the largest coverage at a threshold (the end of a group of tied
confidences) whose selective accuracy is at least 95% (99%); NaN where no threshold reaches
it. The accuracy need not fall monotonically with coverage, so this is the largest such
coverage, not the first crossing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .confidences import Confidences

TARGETS = (95, 99)  # percent selective accuracy, for Cov@95 and Cov@99


@dataclass(frozen=True)
class Groups:
    """The images in decreasing confidence, as groups of equal confidence: each group's size and errors."""

    starts: np.ndarray  # where each group starts, in decreasing confidence
    size: np.ndarray
    errors: np.ndarray

    @classmethod
    def of(cls, descending: np.ndarray, wrong: np.ndarray) -> Groups:
        """``descending``: the confidences in decreasing order; ``wrong``: 1.0 where wrong, in that order."""
        if not len(descending):
            return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
        starts = np.flatnonzero(np.r_[True, descending[1:] != descending[:-1]])
        size = np.diff(np.r_[starts, len(descending)]).astype(np.float64)
        return cls(starts, size, np.add.reduceat(wrong, starts))


@functools.lru_cache(maxsize=8)
def harmonic(n: int) -> np.ndarray:
    """H[k] = 1 + 1/2 + ... + 1/k for k = 0..n (H[0] = 0); made once per test set size (read only)."""
    h: np.ndarray = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])
    h.flags.writeable = False
    return h


def area(size: np.ndarray, errors: np.ndarray, h: np.ndarray) -> np.ndarray:
    """AURC of groups (last axis) of ``size`` images with ``errors`` errors, in order: within a
    group the errors among its first j images are errors x j / size, so the group adds
    sum over its k of (E0 + (k - K0) s) / k = (E0 - K0 s)(H[K1] - H[K0]) + s (K1 - K0),
    with K0, E0 the images and errors before it, K1 = K0 + size and s = errors / size.
    Sizes may be non-integer weights' sums only through whole numbers (bootstrap counts)."""
    k1, e1 = np.cumsum(size, axis=-1), np.cumsum(errors, axis=-1)
    k0, e0 = k1 - size, e1 - errors
    s = np.divide(errors, size, out=np.zeros_like(errors), where=size > 0)
    total = ((e0 - k0 * s) * (h[k1.astype(np.int64)] - h[k0.astype(np.int64)])).sum(axis=-1) + e1[..., -1]
    result: np.ndarray = total / k1[..., -1]  # s * size summed is the errors, e1's last
    return result


def optimal(n: int, wrong: int) -> float:
    """AURC of ``n`` images with ``wrong`` errors, all right answers first:
    (1/n) sum over k = R+1..n of (k - R)/k = ((n - R) - R (H[n] - H[R])) / n, R right."""
    if not n:
        return float("nan")
    right, h = n - wrong, harmonic(n)
    return float(((n - right) - right * (h[n] - h[right])) / n)


@functools.lru_cache(maxsize=8)
def harmonic_sums(n: int) -> np.ndarray:
    """S[j] = H[0] + ... + H[j - 1] for j = 0..n: a group's sum of H over its places (read only)."""
    s: np.ndarray = np.concatenate([[0.0], np.cumsum(harmonic(n)[:n])])
    s.flags.writeable = False
    return s


@functools.lru_cache(maxsize=8)
def harmonic_down(n: int) -> np.ndarray:
    """D[j] = H[n - 1 - j] for j = 0..n-1: H at the place in decreasing confidence of the image
    at place j in increasing confidence (read only)."""
    d: np.ndarray = np.ascontiguousarray(harmonic(n)[n - 1 :: -1]) if n else np.zeros(0)
    d.flags.writeable = False
    return d


def tied_wrong(ascending: np.ndarray, wrong_at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The wrong images whose confidence another image shares (their indices in ``wrong_at``,
    the wrong images' places in increasing confidence), and the places [first, end) of the
    group of tied confidences each is in. Found from the wrong images' neighbours, then a
    binary search for the few tied ones' groups."""
    n = len(ascending)
    tie = np.zeros(n + 1, dtype=bool)  # tie[i]: place i ties with place i - 1 (none at 0 and n)
    np.equal(ascending[1:], ascending[:-1], out=tie[1:n])
    inside = np.flatnonzero(tie.take(wrong_at) | tie.take(wrong_at + 1))
    value = ascending.take(wrong_at.take(inside))
    return inside, np.searchsorted(ascending, value, side="left"), np.searchsorted(ascending, value, side="right")


SIZE = 3 + len(TARGETS)  # n, errors, AURC, then each target's coverage


def numbers(graded: Confidences) -> np.ndarray:
    """What a model keeps: [images, errors, AURC, Cov@95, Cov@99], from the wrong images'
    places alone (a fifth of the images, say, not all of them), in increasing confidence.

    AURC: an image at place i (0-based, decreasing confidence) is among the first k for
    k = i+1..n, so its share of an error adds H[n] - H[i] to n x AURC. Without ties the share
    is 1 for a wrong image and 0 for a right one; a group of m tied images with e errors gives
    each e/m, which only changes the sum inside that group (the tied groups are few).
    Coverage: between two wrong images the selective accuracy rises with k, so the largest
    coverage reaching a target is at one of the thresholds just before a wrong image (the
    start of its tied group, where it has one) or at n. Those thresholds fall as the wrong
    images' confidence rises, so the largest reaching it is the first that does."""
    n = graded.n
    if n == 0:
        return np.full(SIZE, np.nan)
    wrong_at, down = graded.wrong_at, harmonic_down(n)
    wrong = len(wrong_at)
    total = wrong * harmonic(n)[n] - down.take(wrong_at).sum()
    # the largest threshold before each wrong image (the images above it), and the errors above it
    above, errors = (n - 1) - wrong_at, np.arange(wrong - 1, -1, -1)
    inside, first, end = tied_wrong(graded.ascending, wrong_at)
    if len(inside):
        # a group of m tied images with e errors: e/m of an error at each of its places
        # [n - end, n - first) in decreasing confidence, S[n - first] - S[n - end] of H there,
        # 1/m of it for each of its wrong images
        s = harmonic_sums(n)
        total += down.take(wrong_at.take(inside)).sum() - ((s[n - first] - s[n - end]) / (end - first)).sum()
        above[inside], errors[inside] = n - end, wrong - np.searchsorted(wrong_at, end)
    errors *= 100
    coverage = []
    for target in TARGETS:  # selective accuracy >= target: 100 (k - errors) >= target k
        if (100 - target) * n >= 100 * wrong:
            coverage.append(1.0)
            continue
        reached = (100 - target) * above >= errors  # some wrong image: the case above takes none
        j = int(np.argmax(reached))
        coverage.append(above[j] / n if reached[j] and above[j] > 0 else np.nan)
    return np.array([n, wrong, total / n, *coverage])


@dataclass(frozen=True)
class Selective:
    n: int
    errors: int
    aurc: float
    e_aurc: float
    coverage: dict[int, float | None]  # target percent: coverage (None: never reached)

    @classmethod
    def of(cls, values: np.ndarray) -> Selective:
        n, errors, aurc = int(values[0]), int(values[1]), float(values[2])
        coverage = {t: None if np.isnan(v) else float(v) for t, v in zip(TARGETS, values[3:], strict=True)}
        return cls(n, errors, aurc, aurc - optimal(n, errors), coverage)


def aurc_of_weighted(graded: Confidences, weights: np.ndarray) -> np.ndarray:
    """AURC under each row of ``weights`` (resamples x images, how often each image is drawn):
    the groups stay those of the whole set, each with its drawn images and errors."""
    order = graded.order[::-1]
    wrong = (~graded.right[order]).astype(np.float64)
    groups = Groups.of(graded.confidence[order], wrong)
    w = weights[:, order].astype(np.float64)
    size = np.add.reduceat(w, groups.starts, axis=1)
    errors = np.add.reduceat(w * wrong, groups.starts, axis=1)
    return area(size, errors, harmonic(graded.n))
