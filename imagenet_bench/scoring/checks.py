"""What the table asks of each model's predictions, answered once per image as it is read.

The table never keeps a model's arrays: every column it shows (Acc@1/@5, a
selection, custom labels, ReaL, corrected labels, McNemar tests) is a count over
per-image right/wrong marks. A ``Check`` turns one model's (preds, top1) into
such marks; the scorer runs every check while the arrays are in memory, keeps
the marks (a bit per image) and drops the arrays. A check's ``key`` hashes
everything it depends on (labels, rows, k), so the score cache can tell whether
marks it holds answer the same question.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class Check(Protocol):
    name: str

    @property
    def key(self) -> str: ...

    @property
    def size(self) -> int:
        """How many images it marks."""

    def mark(self, preds: np.ndarray, top1: np.ndarray) -> np.ndarray | None:
        """One bool per image this check counts; None when the files cannot answer it."""


def digest(*parts: object) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class TopK:
    """Is the label among the first k columns (k = 1: the top-1 class), on ``rows`` (None: all)?

    Top-k uses the first k columns, which for sorted files are the k most probable
    classes and for the unsorted 2019 files (k = 5 columns) are all of them.
    """

    name: str
    labels: np.ndarray  # one per counted image
    k: int = 1
    rows: np.ndarray | None = None
    key: str = field(init=False)

    def __post_init__(self) -> None:
        labels = np.ascontiguousarray(self.labels, dtype=np.int64)
        object.__setattr__(self, "labels", labels)
        rows = None if self.rows is None else np.ascontiguousarray(self.rows, dtype=np.int64)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "key", digest("topk", self.name, self.k, labels,
                                                 "all" if rows is None else rows))

    @property
    def size(self) -> int:
        return len(self.labels)

    def mark(self, preds: np.ndarray, top1: np.ndarray) -> np.ndarray | None:
        if self.k > 1 and preds.shape[1] < self.k:
            return None
        if self.rows is not None:
            preds, top1 = preds[self.rows], top1[self.rows]
        if self.k == 1:
            return top1 == self.labels
        right = preds[:, 0] == self.labels
        for j in range(1, self.k):  # faster than (preds[:, :k] == labels[:, None]).any(axis=1)
            right |= preds[:, j] == self.labels
        return right


@dataclass(frozen=True, eq=False)
class InSet:
    """Is the top-1 class in the image's label set (ImageNet-ReaL), on the images with a non-empty set?"""

    name: str
    member: np.ndarray  # N x 1000 bool
    key: str = field(init=False)
    valid: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", digest("inset", self.name, np.packbits(self.member)))
        object.__setattr__(self, "valid", self.member.any(axis=1))

    @property
    def size(self) -> int:
        return int(np.count_nonzero(self.valid))

    def mark(self, preds: np.ndarray, top1: np.ndarray) -> np.ndarray | None:
        return self.member[np.arange(len(top1)), top1][self.valid]


def checks_key(checks: list[Check]) -> str:
    return digest(*(c.key for c in checks))


@dataclass(frozen=True)
class Marks:
    """A check's answer for one model: a bit per counted image, and how many are right."""

    packed: np.ndarray  # np.packbits of the bool marks
    n: int
    count: int

    @classmethod
    def of(cls, right: np.ndarray) -> Marks:
        return cls(np.packbits(right), len(right), int(np.count_nonzero(right)))

    def unpack(self) -> np.ndarray:
        return np.unpackbits(self.packed, count=self.n).astype(bool)
