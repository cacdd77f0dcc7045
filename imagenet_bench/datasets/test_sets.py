"""The test sets beyond the ILSVRC2012 val set, and how a folder is recognised as one.

Each test set is a row of ``TEST_SETS``: how its folders are named (WordNet ids, or
ImageNetV2's class indices ``0``..``999``), the classes it holds (all 1000, or the 200
of ImageNet-A / ImageNet-R, read from the data files timm ships, as the class list is),
and what its authors' archive unpacks to. The two ways users get these sets wrong are
decided here, once:

  * ImageNetV2's folder name IS the class index. Sorting the names as strings and
    numbering them (torchvision's ImageFolder) puts folder ``10`` at index 2, and
    mislabels most images (ImageNetV2 issues #4 and #10).
  * ImageNet-A and ImageNet-R are scored with each model's outputs restricted to their
    200 classes (``class_subset``); that is their default subset here.

A folder is recognised by its class folders (numeric: ImageNetV2, the variant from the
folder's name), by its classes (exactly ImageNet-A's or ImageNet-R's list), or by its
name (``sketch``); anything else is the val set, or part of it, as before. ``--test-set``
names it outright and is checked against the folder.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Collection

from .class_subset import NONE, ClassSubset
from .class_subset import read as read_subset
from ..base.classes import NUM_CLASSES, timm_info_dir, wnids
from ..base.errors import UsageError, shown

VAL = "imagenet-val"
IMAGENETV2 = "imagenetv2"  # a numeric folder whose variant is unknown


@dataclass(frozen=True)
class TestSet:
    name: str
    folders: str  # "wnid" (class folders named by WordNet id) or "index" (named 0..999)
    images: int  # in the complete set, as published
    class_list: str | None  # timm data file stem of its classes (``imagenet_a``), None for all 1000
    unpacks_to: str  # what the authors' archive unpacks to
    source: str  # where it comes from

    @property
    def restricted(self) -> bool:
        """Scored with the outputs restricted to its classes by default."""
        return self.class_list is not None


TEST_SETS: dict[str, TestSet] = {t.name: t for t in (
    TestSet(VAL, "wnid", 50_000, None, "val/ (with valprep.sh)", "image-net.org, ILSVRC2012_img_val.tar"),
    TestSet("imagenetv2-matched-frequency", "index", 10_000, None, "imagenetv2-matched-frequency-format-val",
            "Recht et al. 2019, github.com/modestyachts/ImageNetV2 (Hugging Face vaishaal/ImageNetV2)"),
    TestSet("imagenetv2-threshold0.7", "index", 10_000, None, "imagenetv2-threshold0.7-format-val",
            "Recht et al. 2019, github.com/modestyachts/ImageNetV2"),
    TestSet("imagenetv2-top-images", "index", 10_000, None, "imagenetv2-top-images-format-val",
            "Recht et al. 2019, github.com/modestyachts/ImageNetV2"),
    TestSet(IMAGENETV2, "index", 10_000, None, "(a numeric ImageNetV2 folder of unknown variant)",
            "Recht et al. 2019"),
    TestSet("imagenet-sketch", "wnid", 50_889, None, "sketch/", "Wang et al. 2019, github.com/HaohanWang/ImageNet-Sketch"),
    TestSet("imagenet-a", "wnid", 7_500, "imagenet_a", "imagenet-a/",
            "Hendrycks et al. 2021, github.com/hendrycks/natural-adv-examples"),
    TestSet("imagenet-r", "wnid", 30_000, "imagenet_r", "imagenet-r/", "Hendrycks et al. 2021, github.com/hendrycks/imagenet-r"),
)}

# Folder names (lower case) that say which test set a WordNet-id folder is.
_NAMED_FOLDERS = {"sketch": "imagenet-sketch", "imagenet-sketch": "imagenet-sketch"}


@functools.lru_cache(maxsize=None)
def class_list(stem: str) -> tuple[int, ...]:
    """A 200-class list from timm's data files (``imagenet_a_indices.txt``), checked against
    its synsets file; sorted global class indices."""
    folder = timm_info_dir()
    indices = [int(x) for x in (folder / f"{stem}_indices.txt").read_text().split()]
    synsets = (folder / f"{stem}_synsets.txt").read_text().split()
    if [wnids()[i] for i in indices] != synsets or len(set(indices)) != len(indices):
        raise RuntimeError(f"timm's {stem}_indices.txt and {stem}_synsets.txt disagree")
    return tuple(sorted(indices))


def classes_of(test_set: TestSet) -> tuple[int, ...]:
    return class_list(test_set.class_list) if test_set.class_list else tuple(range(NUM_CLASSES))


def default_subset(name: str) -> ClassSubset | None:
    test_set = TEST_SETS[name]
    return ClassSubset(classes_of(test_set), name) if test_set.restricted else None


def choose_subset(name: str, flag: str | None) -> ClassSubset | None:
    """--class-subset FILE, ``none``, or (absent) the test set's default."""
    if flag is None:
        return default_subset(name)
    if flag == NONE:
        return None
    return read_subset(flag)


def _choices() -> str:
    return ", ".join(TEST_SETS)


def check_name(name: str) -> TestSet:
    if name not in TEST_SETS:
        raise UsageError(f"--test-set {name!r}: expected one of {_choices()}")
    return TEST_SETS[name]


def _v2_variant(root: Path) -> str:
    """The ImageNetV2 variant a numeric folder's name says (its archive's name), else ``imagenetv2``."""
    folder = root.resolve().name.lower()
    for name, test_set in TEST_SETS.items():
        if test_set.folders == "index" and name != IMAGENETV2 and name in folder:
            return name
    return IMAGENETV2


def recognise(root: Path, folders: str, classes: Collection[int], requested: str | None) -> str:
    """The test set of a folder: ``folders`` is how its classes are named ("wnid", "index",
    or "flat" with a ground-truth file), ``classes`` the global indices present.

    ``requested`` (--test-set) must fit the folder: its naming, and its classes inside the
    test set's. Unrequested, a folder inside two 200-class lists without being either is
    ambiguous: an error naming the choices."""
    present = set(classes)
    if requested is not None:
        test_set = check_name(requested)
        if (test_set.folders == "index") != (folders == "index"):
            wanted = "named by class index 0..999" if test_set.folders == "index" else "named by WordNet id"
            raise UsageError(f"{shown(root)}: --test-set {requested} has class folders {wanted}; this folder's are "
                             f"{'numeric' if folders == 'index' else 'not'}")
        outside = sorted(present - set(classes_of(test_set)))
        if outside:
            raise UsageError(f"{shown(root)}: holds {len(outside)} classes that are not among the "
                             f"{len(classes_of(test_set))} of --test-set {requested} (first {wnids()[outside[0]]}, "
                             f"class {outside[0]}); is it the right folder and --test-set?")
        return requested
    if folders == "index":
        return _v2_variant(root)
    restricted = [t for t in TEST_SETS.values() if t.restricted]
    for test_set in restricted:
        if present == set(classes_of(test_set)):
            return test_set.name
    inside = [t.name for t in restricted if present <= set(classes_of(t))]
    if len(inside) > 1:
        raise UsageError(f"{shown(root)}: its {len(present)} classes are all in the class lists of "
                         f"{' and '.join(inside)}, so it could be {', '.join(inside)} or part of {VAL}; "
                         "pass --test-set NAME")
    if folders == "wnid" and root.resolve().name.lower() in _NAMED_FOLDERS:
        return _NAMED_FOLDERS[root.resolve().name.lower()]
    if inside:
        warnings.warn(f"{root}: its classes are all in {inside[0]}'s list; taken as part of {VAL} (no class "
                      f"restriction): if it is {inside[0]}, pass --test-set {inside[0]}", stacklevel=2)
    return VAL
