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

from dataclasses import dataclass

import numpy as np

TARGETS = (95, 99)  # percent selective accuracy, for Cov@95 and Cov@99


@dataclass(frozen=True)
class Groups:
    """The images in decreasing confidence, as groups of equal confidence: each group's size and errors."""

    order: np.ndarray  # image indices, decreasing confidence (stable)
    starts: np.ndarray  # where each group starts in ``order``
    size: np.ndarray
    errors: np.ndarray
    wrong: np.ndarray  # 1.0 where wrong, in ``order``

    @classmethod
    def of(cls, confidence: np.ndarray, right: np.ndarray) -> Groups:
        confidence = np.asarray(confidence, dtype=np.float64)
        order = np.argsort(-confidence, kind="stable")
        ordered = confidence[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(order) else np.zeros(0, np.int64)
        wrong = (~np.asarray(right, dtype=bool))[order].astype(np.float64)
        size = np.diff(np.r_[starts, len(order)]).astype(np.float64)
        errors = np.add.reduceat(wrong, starts) if len(order) else np.zeros(0)
        return cls(order, starts, size, errors, wrong)


def harmonic(n: int) -> np.ndarray:
    """H[k] = 1 + 1/2 + ... + 1/k for k = 0..n (H[0] = 0)."""
    h: np.ndarray = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])
    return h


def area(size: np.ndarray, errors: np.ndarray, h: np.ndarray) -> np.ndarray:
    """AURC of groups (last axis) of ``size`` images with ``errors`` errors, in order: within a
    group the errors among its first j images are errors x j / size, so the group adds
    sum over its k of (E0 + (k - K0) s) / k = (E0 - K0 s)(H[K1] - H[K0]) + s (K1 - K0),
    with K0, E0 the images and errors before it, K1 = K0 + size and s = errors / size.
    Sizes may be non-integer weights' sums only through whole numbers (bootstrap counts)."""
    k1 = np.cumsum(size, axis=-1)
    e1 = np.cumsum(errors, axis=-1)
    k0, e0 = k1 - size, e1 - errors
    s = np.divide(errors, size, out=np.zeros_like(errors), where=size > 0)
    total = (e0 - k0 * s) * (h[k1.astype(np.int64)] - h[k0.astype(np.int64)]) + s * size
    n = k1[..., -1]
    result: np.ndarray = total.sum(axis=-1) / n
    return result


def optimal(n: int, wrong: int) -> float:
    """AURC of ``n`` images with ``wrong`` errors, all right answers first."""
    right = n - wrong
    k = np.arange(right + 1, n + 1, dtype=np.float64)
    return float(np.sum((k - right) / k) / n) if n else float("nan")


def coverage_at(groups: Groups, target_percent: int) -> float:
    """The largest coverage at a group's end whose selective accuracy is >= target (NaN: none)."""
    k1 = np.cumsum(groups.size)
    e1 = np.cumsum(groups.errors)
    reached = np.flatnonzero(100 * (k1 - e1) >= target_percent * k1)
    return float(k1[reached[-1]] / k1[-1]) if len(reached) else float("nan")


SIZE = 3 + len(TARGETS)  # n, errors, AURC, then each target's coverage


def numbers(confidence: np.ndarray, right: np.ndarray) -> np.ndarray:
    """What a model keeps: [images, errors, AURC, Cov@95, Cov@99]."""
    groups = Groups.of(confidence, right)
    n = len(groups.order)
    if n == 0:
        return np.full(SIZE, np.nan)
    aurc = float(area(groups.size, groups.errors, harmonic(n)))
    return np.array([n, groups.errors.sum(), aurc, *(coverage_at(groups, t) for t in TARGETS)])


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


def aurc_of_weighted(groups: Groups, weights: np.ndarray, h: np.ndarray) -> np.ndarray:
    """AURC under each row of ``weights`` (resamples x images, how often each image is drawn):
    the groups stay those of the whole set, each with its drawn images and errors."""
    w = weights[:, groups.order].astype(np.float64)
    size = np.add.reduceat(w, groups.starts, axis=1)
    errors = np.add.reduceat(w * groups.wrong, groups.starts, axis=1)
    return area(size, errors, h)
