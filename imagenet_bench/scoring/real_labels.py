"""ImageNet-ReaL accuracy (Beyer et al. 2020, "Are we done with ImageNet?").

An image counts as right when the top-1 class is in its ReaL label set; images
whose set is empty (3,163 of 50,000) are left out. ReaL labels are indexed by
val file name (ILSVRC2012_val_00000001 is entry 0), so each prediction row must
be matched to its file name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..base.errors import UsageError

_NUMBER_RE = re.compile(r"^ILSVRC2012_val_(\d{8})")


def load(path: str | Path) -> list[list[int]]:
    path = Path(path)
    try:
        real = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read ReaL labels ({exc}); check --real-labels") from None
    if (
        not isinstance(real, list)
        or len(real) != 50_000
        or not all(isinstance(s, list) and all(type(c) is int and 0 <= c < 1000 for c in s) for s in real)
    ):
        raise UsageError(f"{path}: expected a JSON list of 50,000 lists of class indices 0..999 (ImageNet-ReaL)")
    return real


def label_sets_for(names: list[str], real: list[list[int]]) -> list[list[int]]:
    """The ReaL label set of each row, from its val file name."""
    sets = []
    for name in names:
        match = _NUMBER_RE.match(Path(name).name)
        if not match or not 1 <= int(match[1]) <= len(real):
            raise UsageError(f"{name}: not an ILSVRC2012 val file name; ReaL labels need val file names")
        sets.append(real[int(match[1]) - 1])
    return sets


def membership(label_sets: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(rows with a non-empty set, N x 1000 boolean membership matrix) for fast scoring."""
    valid = np.array([bool(s) for s in label_sets])
    member = np.zeros((len(label_sets), 1000), dtype=bool)
    rows = np.repeat(np.arange(len(label_sets)), [len(s) for s in label_sets])
    cols = np.fromiter((c for s in label_sets for c in s), dtype=np.int64, count=len(rows))
    member[rows, cols] = True
    return valid, member


def accuracy(top1: np.ndarray, valid: np.ndarray, member: np.ndarray) -> tuple[int, int]:
    """(correct, counted) ReaL top-1 over the rows with a non-empty label set."""
    hit = member[np.arange(len(top1)), top1]
    return int(np.count_nonzero(hit & valid)), int(np.count_nonzero(valid))
