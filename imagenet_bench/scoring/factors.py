"""ImageNet-X factors of variation (Idrissi et al. 2022): on which kinds of image a model fails.

ImageNet-X annotated 48,868 val images with the factors that make each unusual (pose,
background, texture...) and marked one as its top factor. A factor's error ratio is the
model's error rate on the images whose top factor it is, divided by its error rate on all
annotated images: above 1, the factor hurts it more than the average image does. As the
``imagenet-x`` package does by default, the 3,000 prototypical images (the ones annotators
compared against) are left out: 46,110 annotated images remain on the full val set.

The annotations are the package's data files (``imagenet_x/annotations``), read here without
importing the package (which imports pandas): ``imagenet_x_val_top_factor.jsonl`` (a JSON
object per image: file name, class, a 0/1 per factor) and ``prototypical_paths.csv``. Their
licence is CC BY-NC 4.0. Rows are matched by val file name, as ReaL and corrected labels are.
"""

from __future__ import annotations

import importlib.util
import json
import operator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..base.errors import UsageError

PACKAGE = "imagenet-x==0.0.7"
TOP_FACTORS = "imagenet_x_val_top_factor.jsonl"
PROTOTYPES = "prototypical_paths.csv"
FACTORS = (  # in the package's order
    "pose",
    "background",
    "pattern",
    "color",
    "smaller",
    "shape",
    "partial_view",
    "subcategory",
    "texture",
    "larger",
    "darker",
    "object_blocking",
    "person_blocking",
    "style",
    "brighter",
    "multiple_objects",
)
NONE = len(FACTORS)  # an annotated image with no top factor (2 of them): counted in the whole, in no factor
SIZE = 2 + 2 * len(FACTORS)  # annotated images, their errors, then per factor images and errors


def default_folder() -> Path:
    """The installed package's annotations, found without importing it."""
    spec = importlib.util.find_spec("imagenet_x")
    if spec is None or spec.origin is None:
        raise UsageError(
            f"--factors needs the ImageNet-X annotations: pip install {PACKAGE}, or pass --factors "
            f"FOLDER holding its {TOP_FACTORS} and {PROTOTYPES}"
        )
    return Path(spec.origin).parent / "annotations"


@dataclass(frozen=True)
class Annotations:
    """Per val number (ILSVRC2012_val_<number>): its class and top factor (NONE: none)."""

    classes: np.ndarray  # indexed by val number; -1 where not annotated or prototypical
    factor: np.ndarray
    source: str


# The package's lines, in its key order: file name, class, then the 16 flags in this order.
FILE_ORDER = (
    "multiple_objects", "background", "color", "brighter", "darker", "style", "larger", "smaller",
    "object_blocking", "person_blocking", "partial_view", "pattern", "pose", "shape", "subcategory", "texture",
)  # fmt: skip
HEAD = b'{"file_name":"ILSVRC2012_val_'  # then 8 digits, then
CLASS = b'.JPEG","class":'  # then 1 to 3 digits and a comma, then
FLAGS = ",".join(f'"{name}":0' for name in FILE_ORDER).encode() + b',"'  # each 0 a digit 0 or 1, then anything, "}"
FLAG_AT = np.array([FLAGS.index(f'"{name}":'.encode()) + len(name) + 3 for name in FACTORS])  # in FACTORS' order
DIGIT = np.frombuffer(b"0123456789", dtype=np.uint8)


def _columns(raw: bytes, at: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` bytes from ``at`` of each line (lines x width; each line holds them): one
    bytes slice a line, joined (a gather of numpy's would need an index per byte)."""
    found: np.ndarray = np.frombuffer(b"".join([raw[a : a + width] for a in at.tolist()]), dtype=np.uint8)
    return found.reshape(len(at), width)


def _fixed_layout(raw: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``_parsed`` of lines all of the package's layout (its key order), read as bytes by numpy: each
    field is at a fixed place from the line's start, or from the end of the class (1 to 3
    digits). None where any non-empty line is not so (``_parsed`` then reads the text)."""
    data = np.frombuffer(raw, dtype=np.uint8)
    breaks = np.flatnonzero(data == ord("\n"))
    starts, ends = np.append(0, breaks + 1), np.append(breaks, len(data))
    starts, ends = starts[ends > starts], ends[ends > starts]
    shortest = len(HEAD) + 8 + len(CLASS) + 2 + len(FLAGS) + 1
    if not len(starts) or (ends - starts).min() < shortest or (data.take(ends - 1) != ord("}")).any():
        return None
    head = _columns(raw, starts, len(HEAD) + 8 + len(CLASS) + 4)
    number, rest = head[:, len(HEAD) : len(HEAD) + 8], head[:, len(HEAD) + 8 + len(CLASS) :]
    if (head[:, : len(HEAD)] != np.frombuffer(HEAD, np.uint8)).any() or not np.isin(number, DIGIT).all():
        return None
    if (head[:, len(HEAD) + 8 : len(HEAD) + 8 + len(CLASS)] != np.frombuffer(CLASS, np.uint8)).any():
        return None
    digits = np.isin(rest, DIGIT)
    width = np.where(rest[:, 1] == ord(","), 1, np.where(rest[:, 2] == ord(","), 2, 3))  # the class's digits
    if not (digits[:, 0] & ((width < 2) | digits[:, 1]) & ((width < 3) | digits[:, 2])).all():
        return None
    if (rest[np.arange(len(rest)), width] != ord(",")).any() or ((ends - starts) < shortest + width - 1).any():
        return None
    value = rest[:, :3].astype(np.int64) - ord("0")  # the class's digits, then a comma or a third digit
    two = 10 * value[:, 0] + value[:, 1]
    classes = np.where(width == 1, value[:, 0], np.where(width == 2, two, 10 * two + value[:, 2]))
    block = _columns(raw, starts + len(HEAD) + 8 + len(CLASS) + width + 1, len(FLAGS))
    flags = block[:, FLAG_AT]
    if ((flags != ord("0")) & (flags != ord("1"))).any():
        return None
    # the template's flags are 0s: a block is the template exactly when its only differences are its 1s
    if np.count_nonzero(block != np.frombuffer(FLAGS, np.uint8)) != np.count_nonzero(flags == ord("1")):
        return None
    numbers = (number.astype(np.int64) - ord("0")) @ 10 ** np.arange(7, -1, -1)
    return numbers, classes, flags.astype(np.int64) - ord("0")


def _parsed(raw: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each annotated image's val number, class and 16 flags (in FACTORS' order). Where every
    line is in the package's layout (its key order), numpy reads them all at once, as bytes
    (``_fixed_layout``); otherwise (another key order, other spacing) the lines are read as JSON."""
    if not raw.isascii():  # ASCII is UTF-8; a file that is not UTF-8 is not the package's (UnicodeDecodeError)
        raw.decode("utf-8")
    fixed = _fixed_layout(raw)
    if fixed is not None:
        return fixed
    lines = [line for line in raw.decode("utf-8").split("\n") if line.strip()]
    from .clean_labels import val_numbers  # here: the registry imports this module for every table

    records = json.loads("[" + ",".join(lines) + "]")  # one parse: 5x faster than a parse a line
    numbers = val_numbers([r["file_name"] for r in records], "--factors")
    flags = np.array([operator.itemgetter(*FACTORS)(r) for r in records], dtype=np.int64).reshape(-1, NONE)
    return np.asarray(numbers, dtype=np.int64), np.array([int(r["class"]) for r in records], dtype=np.int64), flags


def load(folder: Path) -> Annotations:
    from .clean_labels import val_numbers

    classes = np.full(50_001, -1, dtype=np.int64)
    factor = np.full(50_001, -1, dtype=np.int64)
    try:
        numbers, classes_found, flags = _parsed((folder / TOP_FACTORS).read_bytes())
        if len(flags) and flags.sum(axis=1).max() > 1:
            raise ValueError("an image with more than one top factor")
        if len(numbers) and (numbers.min() < 1 or numbers.max() > 50_000):
            raise ValueError("a val number outside 1-50,000")
        classes[numbers] = classes_found
        factor[numbers] = np.where(flags.any(axis=1), flags.argmax(axis=1), NONE)
        prototypes = (folder / PROTOTYPES).read_text(encoding="utf-8").split()[1:]  # a header, then a name a line
    except FileNotFoundError as exc:
        raise UsageError(
            f"{exc.filename}: not found; --factors needs ImageNet-X's annotations (pip install {PACKAGE}, "
            f"or --factors FOLDER holding {TOP_FACTORS} and {PROTOTYPES})"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{folder / TOP_FACTORS}: not ImageNet-X's annotations ({exc}); check --factors") from None
    left_out = val_numbers(prototypes, "--factors")
    classes[left_out], factor[left_out] = -1, -1
    return Annotations(classes, factor, str(folder))


def row_factors(names: list[str], labels: np.ndarray, annotations: Annotations) -> np.ndarray:
    """Each row's top factor (NONE: annotated with none; -1: not annotated, or a prototype);
    an annotated image whose label is not ImageNet-X's class is an error (not the val labels)."""
    from .clean_labels import val_numbers

    numbers = val_numbers(names, "--factors")
    classes: np.ndarray = annotations.classes[numbers]
    factor: np.ndarray = annotations.factor[numbers]
    wrong = np.flatnonzero((classes >= 0) & (classes != labels))
    if len(wrong):
        row = int(wrong[0])
        raise UsageError(
            f"{annotations.source}: {names[row]} is class {classes[row]} there but {labels[row]} here; "
            "--factors applies to the ImageNet val labels only"
        )
    return factor


class Counts:
    """What a model keeps: [annotated images, errors, images per factor..., errors per factor...]
    over the rows with ``factor`` >= 0; what does not depend on the model is counted once. A
    model's errors are counted from its wrong rows alone: each row's factor, or NONE + 1 where
    it has none (not annotated, or a prototype), gathered at them and counted by one bincount."""

    def __init__(self, factor: np.ndarray) -> None:
        factor = np.asarray(factor, dtype=np.int64)
        self.annotated = int(np.count_nonzero(factor >= 0))
        self.code = np.where(factor >= 0, factor, NONE + 1).astype(np.intp)
        self.sizes = np.bincount(self.code, minlength=NONE + 2)[:NONE]

    def __call__(self, right: np.ndarray) -> np.ndarray:
        wrong = np.bincount(self.code.take(np.flatnonzero(~np.asarray(right, dtype=bool))), minlength=NONE + 2)
        return np.concatenate([[self.annotated, wrong[: NONE + 1].sum()], self.sizes, wrong[:NONE]]).astype(np.float64)


@dataclass(frozen=True)
class FactorErrors:
    n: int
    ratios: dict[str, float | None]  # None: no image of that factor, or no error at all
    images: dict[str, int]

    @classmethod
    def of(cls, values: np.ndarray) -> FactorErrors:
        n, errors = values[0], values[1]
        sizes, wrong = values[2 : 2 + NONE], values[2 + NONE :]
        ratios: dict[str, float | None] = {}
        for i, name in enumerate(FACTORS):
            ratios[name] = None if sizes[i] == 0 or errors == 0 else float((wrong[i] / sizes[i]) / (errors / n))
        return cls(int(n), ratios, {name: int(sizes[i]) for i, name in enumerate(FACTORS)})

    @property
    def worst(self) -> str | None:
        known = {k: v for k, v in self.ratios.items() if v is not None}
        return max(known, key=lambda k: known[k]) if known else None
