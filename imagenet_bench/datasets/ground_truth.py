"""Readers for the ILSVRC2012 val ground truth in the formats people have.

Each returns {file stem: class index}, with class indices in sorted-WordNet-id
order (imagenet_bench.base.classes). Supported, detected from the content:
  * val_full.txt (Caffe):  ``ILSVRC2012_val_00000001.JPEG 65``
  * Kaggle LOC_val_solution.csv: ``ImageId,PredictionString`` then
    ``ILSVRC2012_val_00008726,n02119789 255 142 454 329 ...`` (first WordNet id)
  * devkit ILSVRC2012_validation_ground_truth.txt: one ILSVRC2012_ID (1..1000) per
    line in val-file order, mapped to WordNet ids through the devkit's meta.mat,
    which must lie beside it (as in the devkit's data/ folder).
"""

from __future__ import annotations

from pathlib import Path

from ..base.classes import wnid_to_index
from ..base.errors import UsageError


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


def _read_caffe(path: Path, lines: list[str]) -> dict[str, int]:
    labels = {}
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit() or not 0 <= int(parts[1]) < 1000:
            raise UsageError(f"{path}:{number}: expected 'FILE CLASS_INDEX' (0..999), got {line.strip()!r}")
        labels[_stem(parts[0])] = int(parts[1])
    return labels


def _read_kaggle(path: Path, lines: list[str]) -> dict[str, int]:
    index = wnid_to_index()
    labels = {}
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        image_id, _, prediction = line.strip().partition(",")
        wnid = prediction.split()[0] if prediction.split() else ""
        if wnid not in index:
            raise UsageError(f"{path}:{number}: {wnid!r} is not an ImageNet-1k WordNet id")
        labels[_stem(image_id)] = index[wnid]
    return labels


def _devkit_ids_to_index(meta: Path) -> dict[int, int]:
    if not meta.exists():
        raise UsageError(
            f"{meta}: missing; the devkit ground truth needs the devkit's meta.mat beside it "
            "(ILSVRC2012_devkit_t12/data/meta.mat)"
        )
    try:
        from scipy.io import loadmat  # only this format needs scipy
    except ImportError:
        raise UsageError(
            f"{meta}: reading the devkit's meta.mat needs scipy: pip install -r requirements.txt"
        ) from None

    try:
        synsets = loadmat(str(meta), squeeze_me=True)["synsets"]
        mapping = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets}
    except Exception as exc:
        raise UsageError(f"{meta}: not a readable devkit meta.mat ({exc})") from None
    index = wnid_to_index()
    return {ilsvrc: index[wnid] for ilsvrc, wnid in mapping.items() if wnid in index}


def _read_devkit(path: Path, lines: list[str]) -> dict[str, int]:
    ids_to_index = _devkit_ids_to_index(path.parent / "meta.mat")
    labels = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if not line.strip().isdigit():
            raise UsageError(f"{path}:{number}: expected one ILSVRC2012_ID per line, got {line.strip()!r}")
        ilsvrc = int(line)
        if ilsvrc not in ids_to_index:
            raise UsageError(f"{path}:{number}: ILSVRC2012_ID {ilsvrc} is not one of the 1000 classes")
        labels[f"ILSVRC2012_val_{number:08d}"] = ids_to_index[ilsvrc]
    return labels


def read(path: str | Path) -> dict[str, int]:
    """Read a ground-truth file in any supported format: {file stem: class index}."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read ground truth ({exc}); check --val-ground-truth") from None
    first = next((line for line in lines if line.strip()), "")
    if first.startswith("ImageId"):
        return _read_kaggle(path, lines)
    if first.strip().isdigit():
        return _read_devkit(path, lines)
    if len(first.split()) == 2:
        return _read_caffe(path, lines)
    raise UsageError(
        f"{path}: unknown ground-truth format; expected val_full.txt lines, "
        "LOC_val_solution.csv or ILSVRC2012_validation_ground_truth.txt"
    )
