"""Accuracy on corrected val labels (Northcutt, Athalye and Mueller 2021, "Pervasive Label
Errors in Test Sets Destabilize Machine Learning Benchmarks").

Their imagenet_mturk.json (cleanlab/label-errors) lists the 5,440 val images their
method flagged, each shown to five crowd workers, who chose the given label, the
guessed one, both or neither. An image is a label error when fewer than 3 of the 5
chose the given label (2,916 images); of those, the 1,428 where at least 3 chose the
guessed label get it as their corrected label. "id" is the 1-based number in the val
file name (ILSVRC2012_val_<id>), so rows are matched by file name, as for ReaL.

Two measures: "clean_drop" scores the images that are not errors against their labels;
"clean_fix" adds the 1,428 relabelled images with their new label.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..base.errors import UsageError
from .measures import Measure, TopK

AGREE = 3  # of 5 workers
_PREFIX = "ILSVRC2012_val_"
_NUMBER_RE = re.compile(rf"^{_PREFIX}(\d{{8}})")
DOWNLOAD = "label-errors"
FILE = "mturk/imagenet_mturk.json"


@dataclass(frozen=True)
class LabelErrors:
    """{val number: corrected label, or None when no label won 3 votes} for every label error;
    ``checked``: every val number the crowd was shown (errors or not)."""

    errors: dict[int, int | None]
    given: dict[int, int]
    checked: frozenset[int] = frozenset()

    @property
    def relabelled(self) -> int:
        return sum(label is not None for label in self.errors.values())


def load(path: Path) -> LabelErrors:
    try:
        entries = json.loads(Path(path).read_text())
        errors, given, checked = {}, {}, set()
        for entry in entries:
            votes, number = entry["mturk"], int(entry["id"])
            checked.add(number)
            if votes["given"] < AGREE:
                errors[number] = int(entry["our_guessed_label"]) if votes["guessed"] >= AGREE else None
                given[number] = int(entry["given_original_label"])
    except FileNotFoundError:
        raise UsageError(
            f"{path}: --clean-labels file not found; fetch it with --download {DOWNLOAD} "
            f"(or place cleanlab/label-errors' {FILE} there)"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not cleanlab's imagenet_mturk.json ({exc!r}); check --clean-labels") from None
    return LabelErrors(errors, given, frozenset(checked))


def val_numbers(names: list[str], flag: str = "--clean-labels") -> np.ndarray:
    """The number in each val file name (ILSVRC2012_val_<number>), the key of the crowd's data
    (and of ImageNet-X's); ``flag`` is the option that needs them, for the error."""
    start, end = len(_PREFIX), len(_PREFIX) + 8
    if all(name.startswith(_PREFIX) and "/" not in name for name in names):  # bare names: the digits at once
        digits = "".join([name[start:end] for name in names])
        if len(digits) == 8 * len(names) and digits.isascii() and digits.isdigit():
            values = np.frombuffer(digits.encode("ascii"), dtype=np.uint8).reshape(-1, 8) - ord("0")
            fast: np.ndarray = values.astype(np.int64) @ 10 ** np.arange(7, -1, -1)
            return fast
    numbers = np.empty(len(names), dtype=np.int64)  # a name at a time: finds the first that is not one
    for row, name in enumerate(names):
        match = _NUMBER_RE.match(name.rpartition("/")[2])  # the file's name (a str split: 50,000 of them)
        if not match:
            raise UsageError(
                f"{name}: not an ILSVRC2012 val file name; {flag} needs val file names (val and its subsets)"
            )
        numbers[row] = int(match[1])
    return numbers


def measures(names: list[str], labels: np.ndarray, data: LabelErrors, path: Path) -> list[Measure]:
    """The two measures for rows named ``names`` (val file names) with ``labels``."""
    numbers = val_numbers(names)
    fixed = np.asarray(labels, dtype=np.int64).copy()
    keep_drop = np.ones(len(names), dtype=bool)
    keep_fix = np.ones(len(names), dtype=bool)
    for row, number in enumerate(numbers.tolist()):
        if number in data.errors:
            if data.given[number] != labels[row]:
                raise UsageError(
                    f"{path}: {names[row]} has label {data.given[number]} there but {labels[row]} "
                    "here; --clean-labels applies to the ImageNet val labels only"
                )
            keep_drop[row] = False
            corrected = data.errors[number]
            if corrected is None:
                keep_fix[row] = False
            else:
                fixed[row] = corrected
    drop_rows, fix_rows = np.flatnonzero(keep_drop), np.flatnonzero(keep_fix)
    return [TopK("clean_drop", labels[drop_rows], 1, drop_rows), TopK("clean_fix", fixed[fix_rows], 1, fix_rows)]
