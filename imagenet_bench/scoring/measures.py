"""What a table column asks of each model's predictions, answered once per model as its files
are read.

The table never keeps a model's arrays. A ``Measure`` is the per-image question of one
column set (``report.column_set``): it receives the loaded predictions (top-k ids
``preds``, top-k probabilities ``probs``, ``top1``) and answers in one of two kinds:

- bits (``BITS``): one bool per image it counts (Acc@1/@5, a selection, custom labels,
  ReaL, corrected labels), kept as ``Marks`` (packed bits and the count), so McNemar tests
  and intervals can use every image;
- numbers (``NUMBERS``): a small float vector per model (a sum and a count, per-bin sums),
  for columns that are not a count of right images (a mean probability, a calibration error).

The scorer answers every measure while the arrays are in memory and drops the arrays. A
measure's ``key`` hashes everything its answer depends on (labels, rows, k, a version), so
the score cache can tell whether an answer it holds is to the same question.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..outputs.predfiles import Predictions
from .confidences import Confidences

BITS, NUMBERS = "bits", "numbers"


class Measure(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str:
        """BITS or NUMBERS."""

    @property
    def key(self) -> str: ...

    @property
    def size(self) -> int:
        """BITS: how many images it marks; NUMBERS: the length of its vector."""

    def measure(self, loaded: Predictions) -> np.ndarray | None:
        """BITS: one bool per counted image; NUMBERS: ``size`` floats; None when the files cannot answer it."""


def digest(*parts: object) -> str:
    """A key over arrays (their bytes) and anything else (its repr)."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
        hasher.update(b"\0")
    return hasher.hexdigest()


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
    kind: str = field(default=BITS, init=False)
    key: str = field(init=False)

    def __post_init__(self) -> None:
        labels = np.ascontiguousarray(self.labels, dtype=np.int64)
        object.__setattr__(self, "labels", labels)
        rows = None if self.rows is None else np.ascontiguousarray(self.rows, dtype=np.int64)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "key", digest("topk", self.name, self.k, labels, "all" if rows is None else rows))

    @property
    def size(self) -> int:
        return len(self.labels)

    def measure(self, loaded: Predictions) -> np.ndarray | None:
        preds, top1 = loaded.preds, loaded.top1
        if self.k > 1 and preds.shape[1] < self.k:
            return None
        if self.rows is not None:
            preds, top1 = preds[self.rows], top1[self.rows]
        if self.k == 1:
            top1_right: np.ndarray = top1 == self.labels
            return top1_right
        right: np.ndarray = preds[:, 0] == self.labels
        for j in range(1, self.k):  # faster than (preds[:, :k] == labels[:, None]).any(axis=1)
            right |= preds[:, j] == self.labels
        return right


@dataclass(frozen=True, eq=False)
class Accepted:
    """Is one of the first k classes accepted by the image's own class (ObjectNet's many-to-one
    map, ImageNet-9's superclasses)? ``accepts``: own classes x 1000 bool."""

    name: str
    labels: np.ndarray  # own class per image
    accepts: np.ndarray
    k: int = 1
    kind: str = field(default=BITS, init=False)
    key: str = field(init=False)
    rows: None = field(default=None, init=False)  # every image (a Judge)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "key",
            digest("accepted", self.name, self.k, np.ascontiguousarray(self.labels), np.packbits(self.accepts)),
        )

    @property
    def size(self) -> int:
        return len(self.labels)

    def measure(self, loaded: Predictions) -> np.ndarray | None:
        preds = loaded.preds
        if self.k > 1 and preds.shape[1] < self.k:
            return None
        if self.k == 1:
            top1_right: np.ndarray = self.accepts[self.labels, loaded.top1]
            return top1_right
        right: np.ndarray = self.accepts[self.labels, preds[:, 0]]
        for j in range(1, self.k):
            right |= self.accepts[self.labels, preds[:, j]]
        return right


@dataclass(frozen=True, eq=False)
class InSet:
    """Is the top-1 class in the image's label set (ImageNet-ReaL), on the images with a non-empty set?"""

    name: str
    member: np.ndarray  # N x 1000 bool
    kind: str = field(default=BITS, init=False)
    key: str = field(init=False)
    valid: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", digest("inset", self.name, np.packbits(self.member)))
        object.__setattr__(self, "valid", self.member.any(axis=1))

    @property
    def size(self) -> int:
        return int(np.count_nonzero(self.valid))

    @property
    def rows(self) -> np.ndarray:
        """The images it marks (a Judge): those with a non-empty set."""
        return np.flatnonzero(self.valid)

    def measure(self, loaded: Predictions) -> np.ndarray | None:
        top1 = loaded.top1
        right: np.ndarray = self.member[np.arange(len(top1)), top1][self.valid]
        return right


@dataclass(frozen=True, eq=False)
class Numbers:
    """A NUMBERS measure made of a function: ``compute(loaded)`` gives ``size`` floats (or None).

    ``depends_on`` is everything the numbers depend on besides the files (labels, bin
    edges, and a version to change when ``compute`` changes): it goes into the cache key."""

    name: str
    size: int
    compute: Callable[[Predictions], np.ndarray | None]
    depends_on: tuple[object, ...] = ()
    kind: str = field(default=NUMBERS, init=False)
    key: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", digest("numbers", self.name, self.size, *self.depends_on))

    def measure(self, loaded: Predictions) -> np.ndarray | None:
        return self.compute(loaded)


class Judge(Measure, Protocol):
    """A BITS measure that says which images are right (Acc@1, ReaL, corrected labels), and on
    which rows (None: all), so that a measure of confidence can be judged by the same rule."""

    @property
    def rows(self) -> np.ndarray | None: ...


@dataclass(frozen=True)
class Judging:
    """A rule of right and wrong on one test set: the bits measure that applies it, and the
    suffixes of the header ("ReaL") and of the row keys ("real") of the columns judged by it."""

    measure: Judge
    header: str
    key: str

    def header_of(self, base: str, test_set: str | None) -> str:
        """``base`` judged by this rule, on ``test_set`` (None: the primary one)."""
        return " ".join(part for part in (base, self.header, test_set) if part)

    def key_of(self, base: str, test_set: str | None) -> str:
        return f"{base}{'_' + self.key if self.key else ''}{':' + test_set if test_set else ''}"


def graded_by(loaded: Predictions, judge: Judge) -> Confidences | None:
    """The top-1 confidence of the images ``judge`` counts and whether it takes each as right
    (None where it cannot answer), made once per model and rule and shared by every measure that
    grades it (``loaded.derived``), with the sort they share."""
    key = f"graded:{judge.key}"
    if key not in loaded.derived:
        right = loaded.derived[judge.key] if judge.key in loaded.derived else judge.measure(loaded)
        confidence = loaded.confidence if judge.rows is None else loaded.confidence[judge.rows]
        loaded.derived[key] = None if right is None else Confidences(confidence, np.asarray(right, dtype=bool))
    found: Confidences | None = loaded.derived[key]
    return found


def judged(
    name: str,
    judge: Judge,
    size: int,
    compute: Callable[[Confidences], np.ndarray],
    depends_on: tuple[object, ...],
) -> Numbers:
    """A NUMBERS measure of the top-1 confidence and whether ``judge`` takes each image as right:
    ``compute`` of them (``graded_by``) gives ``size`` floats."""

    def numbers(loaded: Predictions) -> np.ndarray | None:
        graded = graded_by(loaded, judge)
        return None if graded is None else compute(graded)

    return Numbers(name, size, numbers, (judge.key, *depends_on))


def measures_key(measures: list[Measure]) -> str:
    return digest(*(m.key for m in measures))


@dataclass(frozen=True)
class Marks:
    """A BITS measure's answer for one model: a bit per counted image, and how many are right."""

    packed: np.ndarray  # np.packbits of the bool marks
    n: int
    count: int

    @classmethod
    def of(cls, right: np.ndarray) -> Marks:
        return cls(np.packbits(right), len(right), int(np.count_nonzero(right)))

    def unpack(self) -> np.ndarray:
        return np.unpackbits(self.packed, count=self.n).astype(bool)


# One model's answer to one measure: Marks (BITS), a float64 vector (NUMBERS), None (cannot answer).
Answer = Marks | np.ndarray | None


def as_marks(found: Answer) -> Marks | None:
    """A BITS measure's answer (Marks, or None where the files could not answer it)."""
    if found is None or isinstance(found, Marks):
        return found
    raise TypeError("a NUMBERS measure's answer (a float vector) is not Marks")


def as_numbers(found: Answer) -> np.ndarray | None:
    """A NUMBERS measure's answer (a float vector, or None where the files could not answer it)."""
    if isinstance(found, Marks):
        raise TypeError("a BITS measure's answer (Marks) is not a float vector")
    return found


def answer(measure: Measure, loaded: Predictions) -> Answer:
    """``measure``'s answer for one model's loaded predictions, in the form the table keeps."""
    value = measure.measure(loaded)
    if measure.kind == BITS:
        loaded.derived[measure.key] = value  # for the measures judged by it (``graded_by``)
    if value is None:
        return None
    if measure.kind == BITS:
        return Marks.of(value)
    numbers = np.asarray(value, dtype=np.float64).reshape(-1)
    if len(numbers) != measure.size:
        raise ValueError(f"measure {measure.name}: {len(numbers)} numbers, declared {measure.size}")
    return numbers
