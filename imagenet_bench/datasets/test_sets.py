"""The test sets, each one declaration (``TestSet``), and how a folder is recognised as one.

A declaration (``test_set.TestSet``) says how its class folders are named and labelled (WordNet
ids, ImageNetV2's class indices ``0``..``999``, or its own class names with the ImageNet classes
each accepts), the classes the outputs are restricted to, an image step before preprocessing,
and which accuracies score it. A new test set is one module holding its declaration (and its
data file) and one line here, in ``BUILT_IN``, or a ``register`` call.
Two ways users get these sets wrong are decided here, once:

  * ImageNetV2's folder name IS the class index. Sorting the names as strings and
    numbering them (torchvision's ImageFolder) puts folder ``10`` at index 2, and
    mislabels most images (ImageNetV2 issues #4 and #10).
  * ImageNet-A and ImageNet-R are scored with each model's outputs restricted to their
    200 classes (``class_subset``); that is their default subset here (ObjectNet: its 125).

A folder is recognised by its class folders (numeric: ImageNetV2, the variant from the
folder's name; a declaration's own class folders, ``by_folder_names``), by its classes
(exactly ImageNet-A's or ImageNet-R's list), or by its name (``sketch``); anything else is
the val set, or part of it, as before. ``--test-set`` names it outright and is checked
against the folder.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Collection
from pathlib import Path

from ..base.classes import timm_info_dir, wnids
from ..base.errors import UsageError, shown
from . import imagenet_9, imagenet_c, objectnet
from .class_subset import NONE, ClassSubset
from .class_subset import read as read_subset
from .test_set import TestSet

VAL = "imagenet-val"
IMAGENETV2 = "imagenetv2"  # a numeric folder whose variant is unknown


def _timm_list(stem: str) -> Callable[[], tuple[int, ...]]:
    return lambda: class_list(stem)


_V2 = "Recht et al. 2019, github.com/modestyachts/ImageNetV2"
TEST_SETS: dict[str, TestSet] = {}  # the catalogue: BUILT_IN, then whatever ``register`` adds


def register(test_set: TestSet) -> TestSet:
    """Add a declaration (a test set's module calls this once); a name taken twice is refused."""
    if test_set.name in TEST_SETS:
        raise ValueError(f"test set {test_set.name!r} is declared twice")
    if test_set.folders not in ("wnid", "index", "own") or (test_set.folders == "own") != bool(test_set.own_classes):
        raise ValueError(f"test set {test_set.name!r}: folders is wnid, index, or own (with own_classes)")
    TEST_SETS[test_set.name] = test_set
    return test_set


BUILT_IN = (
    TestSet(VAL, 50_000, "val/ (with valprep.sh)", "image-net.org, ILSVRC2012_img_val.tar"),
    TestSet(
        "imagenetv2-matched-frequency",
        10_000,
        "imagenetv2-matched-frequency-format-val",
        f"{_V2} (Hugging Face vaishaal/ImageNetV2)",
        folders="index",
    ),
    TestSet("imagenetv2-threshold0.7", 10_000, "imagenetv2-threshold0.7-format-val", _V2, folders="index"),
    TestSet("imagenetv2-top-images", 10_000, "imagenetv2-top-images-format-val", _V2, folders="index"),
    TestSet(
        IMAGENETV2, 10_000, "(a numeric ImageNetV2 folder of unknown variant)", "Recht et al. 2019", folders="index"
    ),
    TestSet(
        "imagenet-sketch",
        50_889,
        "sketch/",
        "Wang et al. 2019, github.com/HaohanWang/ImageNet-Sketch",
        named_by=("sketch", "imagenet-sketch"),
    ),
    TestSet(
        "imagenet-a",
        7_500,
        "imagenet-a/",
        "Hendrycks et al. 2021, github.com/hendrycks/natural-adv-examples",
        restrict_to=_timm_list("imagenet_a"),
    ),
    TestSet(
        "imagenet-r",
        30_000,
        "imagenet-r/",
        "Hendrycks et al. 2021, github.com/hendrycks/imagenet-r",
        restrict_to=_timm_list("imagenet_r"),
    ),
    objectnet.TEST_SET,
    *imagenet_9.TEST_SETS,
    *imagenet_c.TEST_SETS,
)
for _declared in BUILT_IN:
    register(_declared)


@functools.cache
def class_list(stem: str) -> tuple[int, ...]:
    """A 200-class list from timm's data files (``imagenet_a_indices.txt``), checked against
    its synsets file; sorted global class indices."""
    folder = timm_info_dir()
    indices = [int(x) for x in (folder / f"{stem}_indices.txt").read_text().split()]
    synsets = (folder / f"{stem}_synsets.txt").read_text().split()
    if [wnids()[i] for i in indices] != synsets or len(set(indices)) != len(indices):
        raise RuntimeError(f"timm's {stem}_indices.txt and {stem}_synsets.txt disagree")
    return tuple(sorted(indices))


def default_subset(name: str) -> ClassSubset | None:
    test_set = TEST_SETS[name]
    return ClassSubset(test_set.classes(), name) if test_set.restricted else None


def choose_subset(name: str, flag: str | None) -> ClassSubset | None:
    """--class-subset FILE, ``none``, or (absent) the test set's default."""
    if flag is None:
        return default_subset(name)
    if flag == NONE:
        return None
    return read_subset(flag)


def _choices() -> str:
    """The names, a family of variants without a declaration of its own (ImageNet-C's 95) as one."""
    shown_names: dict[str, None] = {}
    for name, test_set in TEST_SETS.items():
        family = test_set.variant_of
        shown_names[name if family is None or family in TEST_SETS else f"{family}/..."] = None
    return ", ".join(shown_names)


def validate_name(name: str) -> TestSet:
    if name not in TEST_SETS:
        raise UsageError(f"--test-set {name!r}: expected one of {_choices()}")
    return TEST_SETS[name]


def _path_names(root: Path) -> set[str]:
    """What a folder's path may say of its test set (lower case): its name (``sketch``) and its
    last two names (ImageNet-C's ``gaussian_noise/3``)."""
    parts = [part.lower() for part in root.resolve().parts]
    return {parts[-1], "/".join(parts[-2:])}


def _by_path(root: Path, family: str | None = None) -> list[str]:
    """The test sets of class folders named by WordNet id that the folder's path names."""
    where = _path_names(root)
    return [
        t.name
        for t in TEST_SETS.values()
        if t.own_classes is None
        and where & set(t.named_by)
        and family in (None, t.variant_of)
        and (t.named_if is None or t.named_if(root))
    ]


def _v2_variant(root: Path) -> str:
    """The ImageNetV2 variant a numeric folder's name says (its archive's name), else ``imagenetv2``."""
    folder = root.resolve().name.lower()
    for name, test_set in TEST_SETS.items():
        if test_set.folders == "index" and name != IMAGENETV2 and name in folder:
            return name
    return IMAGENETV2


def _fits(names: set[str], test_set: TestSet) -> bool:
    """These class folders are this test set's: each one of its folders or ignored ones, at least
    one scored, and all of them where it needs every one (ImageNet-9's nine). A folder that comes
    near (most names its own) and does not fit is an error saying what is missing or extra."""
    assert test_set.own_classes is not None, "only test sets of their own classes are matched by folder names"
    own = test_set.own_classes()
    scored, known = set(own.folders), set(own.folders) | own.ignored
    missing = sorted(scored - names) if test_set.complete else []
    if names <= known and names & scored and not missing:
        return True
    if 2 * len(names & known) <= len(names):
        return False
    extra = sorted(names - known)
    problem = (
        f"{extra[0]!r} is not one of its class folders"
        if extra
        else f"{missing[0]!r} is missing ({len(missing)} of its {len(scored)} class folders)"
        if missing
        else f"none of its {len(scored)} scored class folders is here, only folders it leaves out"
    )
    raise UsageError(
        f"its class folders are nearly {test_set.name}'s, but {problem} (its map: {own.source}); "
        "use the folder as the release unpacks it"
    )


def by_folder_names(root: Path, names: Collection[str], requested: str | None) -> TestSet | None:
    """The test set whose own class folders these are (None if no declaration names them; an
    error where they nearly are a declaration's, ``_fits``). --test-set must agree; a test set of
    variants (ImageNet-9) takes the variant the folder's name (or its parent's) says."""
    names = set(names)
    try:
        found = [t for t in TEST_SETS.values() if t.own_classes is not None and _fits(names, t)]
    except UsageError as exc:
        raise UsageError(f"{shown(root)}: {exc}") from None
    where = {part.lower() for part in root.resolve().parts[-2:]}
    named = [t for t in found if where & set(t.named_by)]
    if requested is not None:
        declared = validate_name(requested)
        if found and requested not in {t.name for t in found}:
            raise UsageError(f"{shown(root)}: its class folders are {found[0].name}'s, not --test-set {requested}'s")
        if not found and declared.own_classes is not None:
            own = declared.own_classes()
            unknown = sorted(names - set(own.folders) - own.ignored)
            raise UsageError(
                f"{shown(root)}: --test-set {requested} has its own class folders, and "
                f"{f'{unknown[0]!r} is not one of them' if unknown else 'none of its scored ones is here'}"
                f" (its map: {own.source})"
            )
        variants = [t for t in named if t.variant_of == requested]
        return variants[0] if len(variants) == 1 else TEST_SETS[requested] if found else None
    if len(found) > 1:  # one class list, several test sets (ImageNet-9's variations): the folder's name says which
        families = {t.variant_of for t in found}
        unnamed = [t for t in found if t.name in families]  # the variant-less name (imagenet-9)
        if len(named) != 1 and len(unnamed) != 1:
            raise UsageError(
                f"{shown(root)}: its class folders fit {', '.join(t.name for t in found)}; pass --test-set NAME"
            )
        found = named if len(named) == 1 else unnamed
    return found[0] if found else None


def recognise(root: Path, folders: str, classes: Collection[int], requested: str | None) -> str:
    """The test set of a folder: ``folders`` is how its classes are named ("wnid", "index",
    or "flat" with a ground-truth file), ``classes`` the global indices present.

    ``requested`` (--test-set) must fit the folder: its naming, and its classes inside the
    test set's. Unrequested, a folder inside two 200-class lists without being either is
    ambiguous: an error naming the choices."""
    present = set(classes)
    families = {t.variant_of for t in TEST_SETS.values() if t.variant_of} - set(TEST_SETS)
    if requested in families:  # --test-set imagenet-c: the variant the folder's path names
        variant, named = _by_path(root, requested), _by_path(root)
        if len(variant) != 1 and not named:
            raise UsageError(
                f"{shown(root)}: --test-set {requested} takes the variant the folder's path names "
                f"({requested}'s <corruption>/<severity>/), and this one names none; pass the full name"
            )
        if len(variant) != 1:  # it names another family's (a regenerated ImageNet-C folder)
            raise UsageError(f"{shown(root)}: not --test-set {requested} but {named[0]}; pass that or leave it out")
        requested = variant[0]
    if requested is not None:
        test_set = validate_name(requested)
        if test_set.named_if is not None and not test_set.named_if(root):
            named = _by_path(root)
            raise UsageError(
                f"{shown(root)}: not --test-set {requested}"
                + (f" but {named[0]}; pass that or leave it out" if named else "")
            )
        if test_set.own_classes is not None:  # folders "own" (register checks that they go together)
            raise UsageError(
                f"{shown(root)}: --test-set {requested} has its own class folders "
                f"({', '.join(test_set.own_classes().folders[:3])}, ...); this folder's are not those"
            )
        if (test_set.folders == "index") != (folders == "index"):
            wanted = "named by class index 0..999" if test_set.folders == "index" else "named by WordNet id"
            raise UsageError(
                f"{shown(root)}: --test-set {requested} has class folders {wanted}; this folder's are "
                f"{'numeric' if folders == 'index' else 'not'}"
            )
        outside = sorted(present - set(test_set.classes()))
        if outside:
            raise UsageError(
                f"{shown(root)}: holds {len(outside)} classes that are not among the "
                f"{len(test_set.classes())} of --test-set {requested} (first {wnids()[outside[0]]}, "
                f"class {outside[0]}); is it the right folder and --test-set?"
            )
        return requested
    if folders == "index":
        return _v2_variant(root)
    restricted = [t for t in TEST_SETS.values() if t.restricted]
    for test_set in restricted:
        if present == set(test_set.classes()):
            return test_set.name
    inside = [t.name for t in restricted if present <= set(t.classes())]
    if len(inside) > 1:
        raise UsageError(
            f"{shown(root)}: its {len(present)} classes are all in the class lists of "
            f"{' and '.join(inside)}, so it could be {', '.join(inside)} or part of {VAL}; "
            "pass --test-set NAME"
        )
    named = _by_path(root)
    if folders == "wnid" and named:
        return named[0]
    if inside:
        warnings.warn(
            f"{root}: its classes are all in {inside[0]}'s list; taken as part of {VAL} (no class "
            f"restriction): if it is {inside[0]}, pass --test-set {inside[0]}",
            stacklevel=2,
        )
    return VAL
