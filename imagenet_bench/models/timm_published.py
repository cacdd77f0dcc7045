"""timm's published accuracy on each test set, read from a committed data file.

timm publishes, for every pre-trained weight set with an ImageNet-1k head, top-1/top-5
on the val set, ReaL labels, ImageNetV2 matched-frequency, ImageNet-Sketch, ImageNet-A
and ImageNet-R (the last two with outputs restricted to their 200 classes; the
"clean" files score the val images of those 200 classes the same way), each at the
image size it was run at: a weight set can appear at its train and at its test size.
Its package ships none of this (the tables live in its repository), so the figures
are generated into data/timm_published.csv by

    python -m tools.timm_published ../shared/reference/timm-results

from a copy of timm's ``results/`` folder (its SOURCE.md names the commit), and looked
up by model id (``timm.<name>``), image size and test set. The table script reads only
the CSV (no timm, no torch).
"""

from __future__ import annotations

import functools

from .data_files import DATA_DIR, Published, csv_rows

TIMM_CSV = DATA_DIR / "timm_published.csv"

# Our test-set name -> the suffix of timm's results file (results-{suffix}.csv).
RESULT_FILES = {
    "imagenet-val": "imagenet",
    "imagenet-real": "imagenet-real",
    "imagenetv2-matched-frequency": "imagenetv2-matched-frequency",
    "imagenet-sketch": "sketch",
    "imagenet-a": "imagenet-a",
    "imagenet-r": "imagenet-r",
    "imagenet-a-clean": "imagenet-a-clean",
    "imagenet-r-clean": "imagenet-r-clean",
}
KEY_COLUMNS = ("model", "img_size", "crop_pct", "interpolation")
PREFIX = "timm."


def _float(text: str) -> float | None:
    text = text.strip()
    return float(text) if text else None


@functools.cache
def _table() -> tuple[str, dict[tuple[str, int], dict[str, str]]]:
    """(source line, {(timm model name, img_size): row})."""
    source = next(
        (
            line[1:].strip()
            for line in TIMM_CSV.read_text(encoding="utf-8").splitlines()
            if line.startswith("# source:")
        ),
        "timm results",
    )
    rows = {(row["model"], int(row["img_size"])): row for row in csv_rows(TIMM_CSV)}
    return source.removeprefix("source:").strip(), rows


def lookup(model: str, test_set: str = "imagenet-val", img_size: int | None = None) -> Published | None:
    """timm's figure for ``timm.<name>`` on ``test_set`` at ``img_size``; with no size, the
    model's only row (None when it has rows at several sizes). None when timm did not
    publish that test set for that model and size."""
    if not model.startswith(PREFIX) or test_set not in RESULT_FILES:
        return None
    source, rows = _table()
    name = model[len(PREFIX) :]
    if img_size is None:
        sizes = [size for (m, size) in rows if m == name]
        if len(sizes) != 1:
            return None
        img_size = sizes[0]
    row = rows.get((name, img_size))
    if row is None or _float(row[f"{test_set}_acc1"]) is None:
        return None
    return Published(
        acc1=_float(row[f"{test_set}_acc1"]),
        acc5=_float(row[f"{test_set}_acc5"]),
        source=f"{source}, results-{RESULT_FILES[test_set]}.csv at {img_size} px",
    )
