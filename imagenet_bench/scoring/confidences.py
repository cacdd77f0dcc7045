"""The top-1 confidence of the images one rule of right and wrong judges, with whether each is
right, and their sort by confidence: made once per model and rule while its arrays are loaded,
and shared by the measures that grade it (calibration's bins, the risk-coverage curve).

One sort serves both: calibration's bins are runs of the sorted confidences (14 binary
searches for their ends, then a sum per bin), and the risk-coverage curve's groups of tied
confidences are runs of equal values. Both then need only the wrong images' places in that
sort (``wrong_at``): a bin's right images are its images less its wrong ones, and the curve
is a sum over the wrong images. The sort need not be stable: every number taken from it is a
sum over a bin or over a group of equal confidences, whatever order ties are in.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..base.cached import cached_property


@dataclass(frozen=True, eq=False)
class Confidences:
    confidence: np.ndarray  # float32 or float64, one per judged image (sums over it are float64)
    right: np.ndarray  # bool, one per judged image

    @classmethod
    def of(cls, confidence: np.ndarray, right: np.ndarray) -> Confidences:
        confidence = np.asarray(confidence)
        wide = confidence.dtype != np.float32
        return cls(confidence.astype(np.float64) if wide else confidence, np.asarray(right, dtype=bool))

    @property
    def n(self) -> int:
        return len(self.confidence)

    @cached_property
    def order(self) -> np.ndarray:
        """Image indices in increasing confidence (numpy's default sort: fast, not stable), for
        what needs each image's place (the bootstrap's weights); the sums need only ``ascending``."""
        found: np.ndarray = np.argsort(self.confidence)
        return found

    @cached_property
    def _sorted(self) -> np.ndarray | None:
        """Each image's confidence and rightness in one sortable number, sorted: a non-negative
        float64's bits, read as an unsigned integer, order as the float does, and its sign bit
        (0) is free, so the bits shifted left by one hold rightness in the lowest bit. Sorting
        these (numpy's vectorised integer sort) is twice as fast as an argsort and carries
        rightness along; ties keep their right ones after their wrong ones, which no sum minds.
        None where a confidence is NaN or below 0 (the files allow a rounding error below 0).
        Confidences that are all float32 values (the files' usual type) sort as 32-bit keys,
        faster still."""
        if not self.n or not self.confidence.min() >= 0:  # the min is NaN where any is
            return None
        confidence = np.ascontiguousarray(self.confidence)
        narrow = confidence if confidence.dtype == np.float32 else confidence.astype(np.float32)
        if narrow is confidence or np.array_equal(narrow, confidence):
            key = narrow.view(np.uint32) << np.uint32(1)
        else:
            key = confidence.view(np.uint64) << np.uint64(1)
        key |= self.right
        key.sort()
        return key

    @cached_property
    def ascending(self) -> np.ndarray:
        """The confidences in increasing order."""
        key = self._sorted
        found: np.ndarray = self.confidence[self.order] if key is None else self._unkeyed(key >> key.dtype.type(1))
        return found

    @cached_property
    def wrong_at(self) -> np.ndarray:
        """The places in ``ascending`` of the wrong images, increasing (a bool array's nonzero
        is numpy's fast one, an integer array's is not)."""
        key = self._sorted
        if key is None:
            found: np.ndarray = np.flatnonzero(~self.right[self.order])
            return found
        wrong = np.empty(len(key), dtype=np.uint8)  # the rightness bits, as bytes then flipped: few passes
        np.bitwise_and(key, 1, out=wrong, casting="unsafe")
        np.logical_not(wrong.view(bool), out=wrong.view(bool))
        return np.flatnonzero(wrong.view(bool))

    def at_most(self, values: tuple[float, ...]) -> np.ndarray:
        """How many confidences are <= each of ``values`` (increasing, not negative), by binary searches in
        the sorted keys where there are keys: a confidence is at most a value exactly when its
        key is at most the key of the largest confidence of its type not above the value."""
        key = self._sorted
        if key is None:
            found: np.ndarray = np.searchsorted(self.ascending, values, side="right")
            return found
        return np.searchsorted(key, _key_of(values, key.dtype.str), side="right")

    @staticmethod
    def _unkeyed(bits: np.ndarray) -> np.ndarray:
        """The confidences of a key's upper bits: float32 from 32-bit keys, else float64."""
        found: np.ndarray = bits.view(np.float32 if bits.dtype == np.uint32 else np.float64)
        return found


@functools.lru_cache(maxsize=8)
def _key_of(values: tuple[float, ...], key_type: str) -> np.ndarray:
    """The largest key at or below each value (``Confidences.at_most``): its confidence the
    largest float32 (for 32-bit keys) or float64 not above the value, its rightness bit 1.
    The values are not negative (keys are of non-negative confidences only)."""
    wanted = np.array(values, dtype=np.float64)
    if not (wanted >= 0).all():
        raise ValueError(f"at_most of {values}: the values must not be negative or NaN")
    if np.dtype(key_type) == np.uint32:
        narrow = wanted.astype(np.float32)
        narrow = np.where(narrow > wanted, np.nextafter(narrow, np.float32(-np.inf)), narrow).astype(np.float32)
        bits = narrow.view(np.uint32).astype(np.uint64)
    else:
        bits = wanted.view(np.uint64)
    keys = ((bits << np.uint64(1)) | np.uint64(1)).astype(key_type)
    keys.flags.writeable = False
    return keys
