"""What a test set is: one declaration (``TestSet``) of everything the prediction scripts and
the table ask of it. The catalogue of declarations is ``test_sets``; a test set of its own
(ObjectNet, ImageNet-9) is a module holding its declaration, and one line there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..base.classes import NUM_CLASSES
from ..base.errors import UsageError, shown

DATA_DIR = Path(__file__).resolve().parents[1] / "data"  # where a test set's class map is committed
REGENERATE = "python -m tools.test_set_maps ../shared/reference/test-sets"  # writes the class maps
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


def read_map(path: Path) -> OwnClasses:
    """A test set's committed class map (``{"classes": {folder: [class indices]}, "ignored":
    [folders]}``, folders in label order); one error line naming the file where it does not load."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return OwnClasses(
            tuple(data["classes"]),
            tuple(tuple(sorted(int(c) for c in accepted)) for accepted in data["classes"].values()),
            frozenset(data.get("ignored", ())),
            f"{path.parent.name}/{path.name}",
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise UsageError(f"{shown(path)}: class map does not load ({reason}); regenerate it: {REGENERATE}") from None


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
class NoResize:
    """The authors' rule of a test set whose images are already the model's input size
    (ImageNet-9's 224 x 224): fed as they are, no resize and no crop, in place of the model's
    own resize and crop. An image of another size is resized to the input size, never cropped."""

    def apply(self, preprocess: Any, test_set: str) -> Any:
        check_rule(preprocess, f"--test-set {test_set} --authors-rule: its images go to the model unresized")
        size = preprocess.crop_size
        return replace(preprocess, resize_mode="squash", resize_size=size, rule="authors: no resize")


def check_rule(preprocess: Any, what: str, instead: str = "--protocol common") -> None:
    """An authors' rule replaces the resize and crop of a ``preprocessing.Preprocess``; a
    preprocessing that runs elsewhere (KerasHub's converter) cannot take one: a UsageError
    saying ``what`` the rule does and what to use ``instead``."""
    if not hasattr(preprocess, "rule"):
        raise UsageError(f"{what}, which {type(preprocess).__name__} cannot do; use {instead}")


@dataclass(frozen=True)
class Gap:
    """A table column: this test set's Acc@1 minus another's, where both are in the table
    (ImageNet-9's BG-Gap: Mixed-Same minus Mixed-Rand)."""

    header: str
    minus: str  # the other test set's name


@dataclass(frozen=True)
class Figure:
    """An accuracy a test set's authors published for a model of a source, with its source."""

    platform: str  # "pytorch" or "keras"
    model: str  # the model id of prediction-file names
    acc1: float  # percent
    source: str


@dataclass(frozen=True)
class TestSet:
    """One test set, declared once: everything the prediction scripts and the table ask of it.

    folders: how class folders are named: "wnid" (WordNet ids), "index" (ImageNetV2's 0..999), or
      "own" (the names of ``own_classes``: its own classes, labelled by their position).
    restrict_to: the classes each model's outputs are restricted to before the softmax by default
      (ImageNet-A/-R's 200, ObjectNet's 125), as a function so the data file is read when needed.
    own_classes: its classes and the ImageNet classes each accepts, where they are not ImageNet's.
    image_step: what is done to each decoded image before the model's preprocessing.
    authors_step: the authors' preprocessing where it differs from each model's own, taken with
      --authors-rule (ImageNet-9's ``NoResize``); without it the manifest records the model's rule.
    authors_default: the authors' step runs unless --model-rule asks for the model's (ImageNet-C).
    variant_of: the test set a variant belongs to (``imagenet-9`` for its variations): --test-set
      with that name takes the variant its folder names.
    complete: every one of its own class folders must be there (ImageNet-9's nine superclasses).
    gap: a column of its Acc@1 minus another test set's, when both are in the table.
    named_if: a folder its path names (``named_by``) is it only where this holds of the folder
      (ImageNet-C's released and regenerated folders share their names).
    own_columns: False where a summary column shows it (ImageNet-C's 95 folders, in mCE): its
      own Acc@1, delta and ER columns are in CSV and JSON only.
    published: accuracies its authors published (``Figure``), for the table's --published.
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
    authors_step: ImageStep | None = None
    authors_default: bool = False
    variant_of: str | None = None
    complete: bool = False
    gap: Gap | None = None
    named_if: Callable[[Path], bool] | None = None
    own_columns: bool = True
    published: tuple[Figure, ...] = ()

    def __post_init__(self) -> None:
        if not valid_columns(self.columns):
            raise ValueError(f"test set {self.name!r}: columns is {ACCURACIES[0]!r}, or both of {ACCURACIES}")
        if self.authors_default and self.authors_step is None:
            raise ValueError(f"test set {self.name!r}: authors_default needs an authors_step")

    @property
    def restricted(self) -> bool:
        """Scored with the outputs restricted to its classes by default."""
        return self.restrict_to is not None

    def classes(self) -> tuple[int, ...]:
        """The ImageNet classes it holds: its restriction, else all 1000."""
        return self.restrict_to() if self.restrict_to else tuple(range(NUM_CLASSES))

    def prepare(self, preprocess: Any, authors: bool | None = None) -> Any:
        """A model's preprocessing with this test set's image step in front of it, and with
        ``authors`` (--authors-rule; False is --model-rule, None the test set's default) its
        authors' rule in place of the model's resize and crop; a test set that has both rules
        records which one ran."""
        if authors is None:
            authors = self.authors_default
        if authors and self.authors_step is None:
            raise UsageError(
                f"--authors-rule: test set {self.name} has one preprocessing rule (the model's, with its "
                "own image step); the flag is for test sets whose authors preprocess otherwise (imagenet-9)"
            )
        if self.image_step is not None:
            preprocess = self.image_step.apply(preprocess, self.name)
        if self.authors_step is None:
            return preprocess
        if authors:
            return self.authors_step.apply(preprocess, self.name)
        return replace(preprocess, rule="model") if hasattr(preprocess, "rule") else preprocess
