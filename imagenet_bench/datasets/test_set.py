"""What a test set is: one declaration (``TestSet``) of everything the prediction scripts and
the table ask of it. The catalogue of declarations is ``test_sets``; a test set of its own
(ObjectNet, ImageNet-9) is a module holding its declaration, and one line there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from ..base.classes import NUM_CLASSES
from ..base.errors import UsageError

ACCURACIES = ("acc1", "acc5")  # what may score a test set; Acc@1 always does


def valid_columns(columns: object) -> bool:
    """A declaration's (or a dataset.json's) columns: acc1, and acc5 or not."""
    return isinstance(columns, (list, tuple)) and list(columns) in (["acc1"], ["acc1", "acc5"])


@dataclass(frozen=True)
class OwnClasses:
    """A test set's own classes, when they are not ImageNet's: the class folders' names, in label
    order, and the ImageNet classes each accepts (one or several: ObjectNet's many-to-one map,
    ImageNet-9's superclasses). A model is right when its prediction is one of the accepted."""

    folders: tuple[str, ...]  # class folder names; a folder's label is its position
    accepts: tuple[tuple[int, ...], ...]  # per own class, the accepted ImageNet class indices (sorted)
    ignored: frozenset[str] = frozenset()  # class folders present in the release but not scored (left out)
    source: str = ""  # the map file it was read from

    def __post_init__(self) -> None:
        if len(self.folders) != len(self.accepts) or len(set(self.folders)) != len(self.folders):
            raise ValueError("own classes: one accepted set per folder name, names distinct")
        if any(not a or min(a) < 0 or max(a) >= NUM_CLASSES for a in self.accepts):
            raise ValueError(f"own classes: every accepted set holds class indices in 0..{NUM_CLASSES - 1}")

    def membership(self) -> np.ndarray:
        """own classes x 1000 bool: which ImageNet classes each own class accepts."""
        member = np.zeros((len(self.folders), NUM_CLASSES), dtype=bool)
        for label, accepted in enumerate(self.accepts):
            member[label, list(accepted)] = True
        return member

    def union(self) -> tuple[int, ...]:
        return tuple(sorted({c for accepted in self.accepts for c in accepted}))


class ImageStep(Protocol):
    """What a test set does to each image before the model's preprocessing, said as a change of
    that preprocessing (a ``preprocessing.Preprocess``), so the manifest records it, the pixel
    cache keys on it and the Keras model process receives it with the rest."""

    def apply(self, preprocess: Any, test_set: str) -> Any:
        """``preprocess`` with this step in it; a ``UsageError`` where it cannot take it."""


@dataclass(frozen=True)
class BorderCrop:
    """An image step before the model's preprocessing: ``pixels`` cut off each edge (ObjectNet's
    frame). It is part of the preprocessing the manifest records and the pixel cache keys on."""

    pixels: int

    def apply(self, preprocess: Any, test_set: str) -> Any:
        """``preprocess`` with this crop in front (a ``preprocessing.Preprocess``; a preprocessing
        that runs elsewhere, as KerasHub's converter does, cannot take it)."""
        if not hasattr(preprocess, "border"):
            raise UsageError(
                f"--test-set {test_set}: its images lose a {self.pixels}-pixel border before "
                f"preprocessing, which {type(preprocess).__name__} cannot do; use --protocol common"
            )
        return replace(preprocess, border=self.pixels)


@dataclass(frozen=True)
class TestSet:
    """One test set, declared once: everything the prediction scripts and the table ask of it.

    folders: how class folders are named: "wnid" (WordNet ids), "index" (ImageNetV2's 0..999), or
      "own" (the names of ``own_classes``: its own classes, labelled by their position).
    restrict_to: the classes each model's outputs are restricted to before the softmax by default
      (ImageNet-A/-R's 200, ObjectNet's 125), as a function so the data file is read when needed.
    own_classes: its classes and the ImageNet classes each accepts, where they are not ImageNet's.
    image_step: what is done to each decoded image before the model's preprocessing.
    columns: which of the table's accuracies score it: Acc@1 always, Acc@5 where it means something.
    """

    name: str
    images: int  # in the complete set, as published
    unpacks_to: str  # what the authors' archive unpacks to
    source: str  # where it comes from
    folders: str = "wnid"
    restrict_to: Callable[[], tuple[int, ...]] | None = None
    own_classes: Callable[[], OwnClasses] | None = None
    image_step: ImageStep | None = None
    columns: tuple[str, ...] = ("acc1", "acc5")
    named_by: tuple[str, ...] = ()  # folder names (lower case) that say this test set (Sketch)

    def __post_init__(self) -> None:
        if not valid_columns(self.columns):
            raise ValueError(f"test set {self.name!r}: columns is {ACCURACIES[0]!r}, or both of {ACCURACIES}")

    @property
    def restricted(self) -> bool:
        """Scored with the outputs restricted to its classes by default."""
        return self.restrict_to is not None

    def classes(self) -> tuple[int, ...]:
        """The ImageNet classes it holds: its restriction, else all 1000."""
        return self.restrict_to() if self.restrict_to else tuple(range(NUM_CLASSES))

    def prepare(self, preprocess: Any) -> Any:
        """A model's preprocessing with this test set's image step in front of it."""
        return preprocess if self.image_step is None else self.image_step.apply(preprocess, self.name)
