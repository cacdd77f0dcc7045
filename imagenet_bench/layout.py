"""Finding the images of a val set and putting them in one canonical order.

Two layouts are supported:
  * ImageFolder: one folder per class named by WordNet id (what valprep.sh makes);
  * flat: ``ILSVRC2012_val_*.JPEG`` in one folder, labelled by a ground-truth file.
Whatever the layout, rows are ordered by class index, then file name, so both give
identical prediction files and the same fingerprint, and the full val set comes
in the 2019 row order (labels ``numpy.repeat(arange(1000), 50)``).

The fingerprint hashes the ordered (file base name, byte size, label) triples: an
ImageFolder and a flat copy of the same images agree; a re-encoded copy does not.

An image whose name is not valid UTF-8, or holds a line break, is refused by name
before anything runs: the fingerprint, dataset.json and dataset_files.txt (one line
per row) record names as UTF-8 text, and no ImageNet file is named so. Refusing keeps
every existing fingerprint as it is; the user renames the file.
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import ground_truth
from .classes import NUM_CLASSES, wnid_to_index
from .errors import UsageError, shown

IMAGE_EXTENSIONS = {".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif"}
FULL_VAL_SIZE = 50_000


def _is_image_name(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


@dataclass(frozen=True)
class Dataset:
    """The images of one val set, in canonical order, with their global labels."""

    root: Path
    layout: str  # "imagefolder" or "flat"
    paths: tuple[Path, ...]
    labels: np.ndarray
    sizes: tuple[int, ...]
    label_source: str
    subset: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.paths]

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name, size, label in zip(self.names, self.sizes, self.labels.tolist()):
            digest.update(f"{name}\t{size}\t{label}\n".encode())
        return digest.hexdigest()

    @property
    def classes_present(self) -> list[int]:
        return sorted(set(self.labels.tolist()))

    @property
    def is_full_val(self) -> bool:
        """True for the 50,000 ILSVRC2012 val images, i.e. the order of the 2019 files."""
        names = {p.stem for p in self.paths}
        return len(names) == FULL_VAL_SIZE and names == {
            f"ILSVRC2012_val_{i:08d}" for i in range(1, FULL_VAL_SIZE + 1)
        }

    def describe(self) -> dict[str, Any]:
        """What dataset.json records about this dataset."""
        return {
            "fingerprint": self.fingerprint,
            "layout": self.layout,
            "root": str(self.root),
            "n_images": len(self),
            "n_classes_present": len(self.classes_present),
            "classes_present": self.classes_present,
            "full_val": self.is_full_val,
            "label_source": self.label_source,
            "subset": self.subset,
        }


def _check_name(path: Path) -> None:
    """UsageError for an image name that cannot be recorded as one line of UTF-8 text."""
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{shown(path)}: file name is not valid UTF-8; rename the file or move it out of "
                         "the val folder") from None
    if len(f"{path.name}x".splitlines()) != 1:
        raise UsageError(f"{shown(path)}: file name holds a line break; rename the file or move it out of "
                         "the val folder")


def _canonical(root: Path, layout: str, items: list[tuple[int, Path]], source: str) -> Dataset:
    for _, path in items:
        _check_name(path)
    items.sort(key=lambda item: (item[0], item[1].name))
    paths = tuple(path for _, path in items)
    labels = np.array([label for label, _ in items], dtype=np.int64)
    sizes = tuple(path.stat().st_size for path in paths)
    return Dataset(root, layout, paths, labels, sizes, source)


def _scan_imagefolder(root: Path, class_dirs: list[Path]) -> Dataset:
    index = wnid_to_index()
    items = []
    for folder in class_dirs:
        if folder.name not in index:
            raise UsageError(
                f"{shown(folder)}: folder name is not an ImageNet-1k WordNet id; an ImageFolder val set "
                "has one folder per class named like n01440764"
            )
        items.extend((index[folder.name], p) for p in folder.iterdir() if p.is_file() and _is_image_name(p))
    return _canonical(root, "imagefolder", items, "folder names (WordNet ids)")


def _scan_flat(root: Path, files: list[Path], truth_path: Path) -> Dataset:
    truth = ground_truth.read(truth_path)
    items = []
    for path in files:
        if path.stem not in truth:
            raise UsageError(f"{shown(path)}: no line for this image in {truth_path}; is it the right ground truth?")
        items.append((truth[path.stem], path))
    return _canonical(root, "flat", items, f"ground truth {truth_path}")


def scan(val_dir: str | Path, val_ground_truth: str | Path | None = None) -> Dataset:
    """Find the images of ``val_dir`` (ImageFolder or flat) in canonical order.

    Warns when fewer than 1000 classes are present (a subset of the val set).
    """
    root = Path(val_dir)
    if not root.is_dir():
        raise UsageError(f"{shown(root)}: validation folder does not exist (VAL_DIR)")
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    class_dirs = sorted(p for p in entries if p.is_dir())
    files = sorted(p for p in entries if p.is_file() and _is_image_name(p))
    if class_dirs:
        if files:
            raise UsageError(
                f"{root}: holds both class folders and images ({files[0].name}); use one layout"
            )
        dataset = _scan_imagefolder(root, class_dirs)
    elif files:
        if val_ground_truth is None:
            raise UsageError(
                f"{root}: flat folder of images needs labels: pass --val-ground-truth FILE "
                "(val_full.txt, LOC_val_solution.csv or the devkit's ground truth)"
            )
        dataset = _scan_flat(root, files, Path(val_ground_truth))
    else:
        raise UsageError(f"{root}: no images found (expected class folders or ILSVRC2012_val_*.JPEG files)")
    if len(dataset) == 0:
        raise UsageError(f"{root}: no images found in its class folders")
    n_classes = len(dataset.classes_present)
    if n_classes < NUM_CLASSES:
        warnings.warn(
            f"{root}: {n_classes} of {NUM_CLASSES} classes present ({len(dataset)} images); "
            "labels stay global class indices",
            stacklevel=2,
        )
    return dataset


def select(dataset: Dataset, limit: int | None = None, per_class: int | None = None) -> Dataset:
    """A deterministic subset: the first ``per_class`` images of each class (in
    canonical order), then the first ``limit`` rows. Recorded in ``subset``."""
    keep = np.arange(len(dataset))
    subset: dict[str, Any] = dict(dataset.subset)
    if per_class is not None:
        if per_class < 1:
            raise UsageError("--per-class must be at least 1")
        # Rows are sorted by label, so each class is one contiguous run.
        _, first, counts = np.unique(dataset.labels, return_index=True, return_counts=True)
        rank_in_class = np.arange(len(dataset)) - np.repeat(first, counts)
        keep = keep[rank_in_class < per_class]
        subset["per_class"] = per_class
    if limit is not None:
        if limit < 1:
            raise UsageError("--limit must be at least 1")
        keep = keep[:limit]
        subset["limit"] = limit
    if len(keep) == len(dataset):
        return replace(dataset, subset=subset)
    return replace(
        dataset,
        paths=tuple(dataset.paths[i] for i in keep),
        labels=dataset.labels[keep],
        sizes=tuple(dataset.sizes[i] for i in keep),
        subset=subset,
    )
