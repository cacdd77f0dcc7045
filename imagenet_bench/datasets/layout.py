"""Finding the images of a val set and putting them in one canonical order.

Four layouts are supported:
  * ImageFolder: one folder per class named by WordNet id (what valprep.sh makes);
  * ImageNetV2's: one folder per class named by its class index, ``0``..``999``;
  * a test set's own class folders (``test_set.OwnClasses``), labelled by their position;
  * flat: ``ILSVRC2012_val_*.JPEG`` in one folder, labelled by a ground-truth file.
Which test set a folder holds (val, ImageNetV2, Sketch, A, R, a declared one) is decided by
``test_sets``; the test set, its own classes and the class subset are part of the fingerprint
only beyond the plain val set, so every val fingerprint stays as it was.
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
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..base.classes import FULL_VAL_SIZE, NUM_CLASSES, wnid_to_index
from ..base.errors import UsageError, shown
from . import ground_truth, test_sets
from .class_subset import ClassSubset
from .path_list import PathList
from .test_set import TestSet

IMAGE_EXTENSIONS = {".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif"}


def is_image_name(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


@dataclass(frozen=True)
class Dataset:
    """The images of one val set, in canonical order, with their global labels."""

    root: Path
    layout: str  # "imagefolder", "indexfolder", "ownfolder" (a test set's own class folders) or "flat"
    paths: Sequence[Path]  # a PathList when scanned: compact, as a run keeps it to its end
    labels: np.ndarray
    sizes: tuple[int, ...]
    label_source: str
    subset: dict[str, Any] = field(default_factory=dict)
    test_set: str = test_sets.VAL  # a name of test_sets.TEST_SETS
    class_subset: ClassSubset | None = None  # the classes every model's outputs are restricted to
    left_out: dict[str, int] | None = None  # a test set's unscored class folders: {"folders", "images"}

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def names(self) -> list[str]:
        return list(self.each_name())

    def each_name(self) -> Iterator[str]:
        """The names one at a time: a list of them all costs some 90 bytes an image (issue 27)."""
        return map(utf8_name, self.paths)

    def _images_digest(self) -> hashlib._Hash:
        digest = hashlib.sha256()
        for name, size, label in zip(self.each_name(), self.sizes, self.labels, strict=True):
            digest.update(f"{name}\t{size}\t{int(label)}\n".encode())
        return digest

    @property
    def images_fingerprint(self) -> str:
        """The images and their labels alone: what a pixel cache entry depends on."""
        return self._images_digest().hexdigest()

    @property
    def fingerprint(self) -> str:
        """The images, their labels, and (beyond the plain val set, whose fingerprints stay as
        they were) the test set and class subset: one output folder holds one of these."""
        digest = self._images_digest()
        if self.test_set != test_sets.VAL or self.class_subset is not None:
            subset = "none" if self.class_subset is None else self.class_subset.sha256
            digest.update(f"test_set\t{self.test_set}\nclass_subset\t{subset}\n".encode())
            rule = self._rule()
            if rule:  # a test set's own classes: what each accepts is part of what the labels mean
                digest.update(json.dumps(rule, sort_keys=True).encode())
        return digest.hexdigest()

    @property
    def recorded_test_set(self) -> str | None:
        """The test set dataset.json and manifests name; None for part of the val set, which
        the table names by its folder, as before."""
        return None if self.test_set == test_sets.VAL and not self.is_full_val else self.test_set

    def accepts(self) -> np.ndarray | None:
        """own classes x 1000 bool for a test set with its own classes (its labels are those
        classes), else None (its labels are ImageNet classes)."""
        own = test_sets.TEST_SETS[self.test_set].own_classes
        return None if own is None else own().membership()

    @property
    def classes_present(self) -> list[int]:
        return sorted(set(self.labels.tolist()))

    @property
    def is_full_val(self) -> bool:
        """True for the 50,000 ILSVRC2012 val images, i.e. the order of the 2019 files."""
        names = {p.stem for p in self.paths}
        return len(names) == FULL_VAL_SIZE and names == {f"ILSVRC2012_val_{i:08d}" for i in range(1, FULL_VAL_SIZE + 1)}

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
            "test_set": self.recorded_test_set,
            "class_subset": None if self.class_subset is None else self.class_subset.describe(),
            **({} if self.left_out is None else {"left_out": self.left_out}),
            **self._rule(),
        }

    def _rule(self) -> dict[str, Any]:
        """A test set with its own classes records them and the ImageNet classes each accepts, and
        the accuracies that score it, so the table scores its files by its rule (nothing for the
        others: their dataset.json stays as it was)."""
        declared = test_sets.TEST_SETS[self.test_set]
        if declared.own_classes is None:
            return {}
        own = declared.own_classes()
        return {
            "own_classes": {
                "source": own.source,
                "folders": list(own.folders),
                "accepts": [list(a) for a in own.accepts],
            },
            "columns": list(declared.columns),
        }


def utf8_name(path: Path) -> str:
    """The file name as its bytes say in UTF-8, whatever the locale: under ISO-8859-1 Python
    decodes ``Ünïcødé_日本.JPEG`` as mojibake, under a plain C locale as escapes, and the
    fingerprint and ``dataset_files.txt`` would differ from a UTF-8 machine's."""
    return os.fsencode(path.name).decode("utf-8")


def _validate_name(path: Path) -> None:
    """UsageError for an image name that cannot be recorded as one line of UTF-8 text."""
    try:
        name = utf8_name(path)
    except UnicodeDecodeError:
        raise UsageError(
            f"{shown(path)}: file name is not valid UTF-8; rename the file or move it out of the val folder"
        ) from None
    if len(f"{name}x".splitlines()) != 1:
        raise UsageError(
            f"{shown(path)}: file name holds a line break; rename the file or move it out of the val folder"
        )


def _canonical(root: Path, layout: str, items: list[tuple[int, Path]], source: str) -> Dataset:
    for _, path in items:
        _validate_name(path)
    items.sort(key=lambda item: (item[0], utf8_name(item[1])))  # the order a UTF-8 machine gives
    labels = np.array([label for label, _ in items], dtype=np.int64)
    sizes = tuple(path.stat().st_size for _, path in items)
    return Dataset(root, layout, PathList(path for _, path in items), labels, sizes, source)


def _scan_imagefolder(root: Path, class_dirs: list[Path]) -> Dataset:
    index = wnid_to_index()
    items: list[tuple[int, Path]] = []
    for folder in class_dirs:
        if folder.name not in index:
            raise UsageError(
                f"{shown(folder)}: folder name is not an ImageNet-1k WordNet id; an ImageFolder val set "
                "has one folder per class named like n01440764"
            )
        items.extend((index[folder.name], p) for p in folder.iterdir() if p.is_file() and is_image_name(p))
    return _canonical(root, "imagefolder", items, "folder names (WordNet ids)")


def _scan_indexfolder(root: Path, class_dirs: list[Path]) -> Dataset:
    """ImageNetV2's layout: folders ``0``..``999``, the folder name IS the class index
    (never the rank of the name among the folders: ``10`` sorts before ``2``)."""
    items: list[tuple[int, Path]] = []
    for folder in class_dirs:
        if str(int(folder.name)) != folder.name or int(folder.name) >= NUM_CLASSES:
            raise UsageError(
                f"{shown(folder)}: a numeric class folder is named by its class index, 0 to 999 (ImageNetV2's layout)"
            )
        label = int(folder.name)
        items.extend((label, p) for p in folder.iterdir() if p.is_file() and is_image_name(p))
    return _canonical(root, "indexfolder", items, "folder names (class indices, ImageNetV2)")


def _scan_ownfolder(root: Path, class_dirs: list[Path], test_set: TestSet) -> Dataset:
    """A test set's own class folders: a folder's label is its position in the declaration;
    folders it does not score are left out and counted."""
    if test_set.own_classes is None:  # by_folder_names finds only test sets of their own classes
        raise ValueError(f"test set {test_set.name!r} has no own class folders")
    own = test_set.own_classes()
    index = {name: label for label, name in enumerate(own.folders)}
    items: list[tuple[int, Path]] = []
    left_out = {"folders": 0, "images": 0}
    for folder in class_dirs:
        images = [p for p in folder.iterdir() if p.is_file() and is_image_name(p)]
        if folder.name in index:
            items.extend((index[folder.name], p) for p in images)
        else:
            left_out["folders"] += 1
            left_out["images"] += len(images)
    dataset = _canonical(root, "ownfolder", items, f"folder names ({test_set.name}'s classes, {own.source})")
    return replace(dataset, test_set=test_set.name, left_out=left_out)


def _scan_flat(root: Path, files: list[Path], truth_path: Path) -> Dataset:
    truth = ground_truth.read(truth_path)
    items: list[tuple[int, Path]] = []
    for path in files:
        if path.stem not in truth:
            raise UsageError(f"{shown(path)}: no line for this image in {truth_path}; is it the right ground truth?")
        items.append((truth[path.stem], path))
    return _canonical(root, "flat", items, f"ground truth {truth_path}")


def scan(val_dir: str | Path, val_ground_truth: str | Path | None = None, test_set: str | None = None) -> Dataset:
    """Find the images of ``val_dir`` (ImageFolder, ImageNetV2's numeric folders, or flat) in
    canonical order, and its test set: ``test_set`` (--test-set), checked against the
    folder, or recognised from it (``test_sets.recognise``).

    Warns when fewer classes are present than the test set holds (part of it).
    """
    root = Path(val_dir)
    if not root.is_dir():
        raise UsageError(f"{shown(root)}: validation folder does not exist (VAL_DIR)")
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    class_dirs = sorted(p for p in entries if p.is_dir())
    files = sorted(p for p in entries if p.is_file() and is_image_name(p))
    if class_dirs:
        if files:
            raise UsageError(f"{root}: holds both class folders and images ({files[0].name}); use one layout")
        numeric = [p.isdigit() for p in (d.name for d in class_dirs)]
        if any(numeric) and not all(numeric):
            raise UsageError(
                f"{root}: holds class folders named by class index ({class_dirs[numeric.index(True)].name}) "
                f"and others ({class_dirs[numeric.index(False)].name}); use one naming"
            )
        known = wnid_to_index()
        own = (
            None
            if all(numeric) or all(d.name in known for d in class_dirs)
            else test_sets.by_folder_names(root, [d.name for d in class_dirs], test_set)
        )
        if own is not None:
            dataset = _scan_ownfolder(root, class_dirs, own)
        else:
            dataset = _scan_indexfolder(root, class_dirs) if all(numeric) else _scan_imagefolder(root, class_dirs)
    elif files:
        if val_ground_truth is None:
            raise UsageError(
                f"{root}: flat folder of images needs labels: pass --val-ground-truth FILE "
                "(val_full.txt, LOC_val_solution.csv or the devkit's ground truth)"
            )
        dataset = _scan_flat(root, files, Path(val_ground_truth))
    else:
        raise UsageError(f"{root}: no images found (expected class folders or ILSVRC2012_val_*.JPEG files)")
    declared = test_sets.TEST_SETS[dataset.test_set] if dataset.layout == "ownfolder" else None
    if len(dataset) == 0:
        scored = f"its scored class folders ({declared.name}'s)" if declared else "its class folders"
        raise UsageError(f"{root}: no images found in {scored}")
    if declared is None:
        folders = {"imagefolder": "wnid", "indexfolder": "index"}.get(dataset.layout, dataset.layout)
        dataset = replace(dataset, test_set=test_sets.recognise(root, folders, dataset.classes_present, test_set))
    n_classes = len(dataset.classes_present)
    own_classes = declared.own_classes if declared else None
    expected = len(own_classes().folders) if own_classes else len(test_sets.TEST_SETS[dataset.test_set].classes())
    of_set = "" if dataset.test_set == test_sets.VAL else f" of {dataset.test_set}"
    if n_classes < expected:
        kept = "labels are its own classes" if declared else "labels stay global class indices"
        warnings.warn(
            f"{root}: {n_classes} of {expected} classes{of_set} present ({len(dataset)} images); {kept}", stacklevel=2
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
        paths=PathList(dataset.paths[i] for i in keep.tolist()),
        labels=dataset.labels[keep],
        sizes=tuple(dataset.sizes[i] for i in keep),
        subset=subset,
    )
