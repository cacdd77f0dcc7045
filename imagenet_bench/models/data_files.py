"""The committed data files of published figures: where they are, how they are read,
and the shape of one figure. Their generators are in tools/."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class Published:
    """A published accuracy, in percent, and where it comes from."""

    acc1: float | None
    acc5: float | None  # None when unknown (Keras publishes no top-5 for ConvNeXt, MobileNetV3)
    source: str


def csv_rows(path: str | Path) -> list[dict[str, str]]:
    """A committed CSV's rows; ``#`` lines are comments."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(line for line in handle if line.strip() and not line.lstrip().startswith("#")))
