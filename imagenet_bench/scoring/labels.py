"""A test set's labels for the table, and its rule: the one place that decides them.

Labels come from --val-dir, --labels, the dataset_labels.npy beside the files, or the standard
order of the full val set. A test set with its own classes (ObjectNet, ImageNet-9) records in
its dataset.json which ImageNet classes each of its classes accepts, so its files are scored by
its authors' rule without the table knowing its declaration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..base.classes import FULL_VAL_SIZE
from ..base.errors import UsageError
from ..datasets.test_set import ACCURACIES, OwnClasses, valid_columns
from ..outputs import output_folder
from .measures import Accepted, Measure, TopK
from .score import PredictionSet


@dataclass
class Labels:
    values: np.ndarray
    source: str
    names: list[str] | None  # val file names in row order, when known
    accepts: np.ndarray | None = None  # own classes x 1000: what each label accepts (None: the label itself)
    columns: tuple[str, ...] = ("acc1", "acc5")  # the accuracies that score this test set

    def need_imagenet_classes(self, flag: str) -> None:
        """An option that compares predictions with ImageNet labels is refused on a test set whose
        labels are its own classes (they would be compared with positions in its class list)."""
        if self.accepts is not None:
            raise UsageError(
                f"{flag} compares predictions with ImageNet class labels, but {self.source} holds a "
                "test set's own classes; rank that test set without it"
            )

    def accuracy_measures(self) -> list[Measure]:
        """Acc@1 and Acc@5 by the test set's rule: the label itself, or one of its accepted classes."""
        if self.accepts is None:
            made: list[Measure] = [TopK("acc1", self.values, 1), TopK("acc5", self.values, 5)]
        else:
            made = [Accepted("acc1", self.values, self.accepts, 1), Accepted("acc5", self.values, self.accepts, 5)]
        return [measure for measure in made if measure.name in self.columns]


@dataclass(frozen=True)
class Given:
    """The labels the user gave for the primary test set (the table's options)."""

    val_dir: Path | None = None
    val_ground_truth: Path | None = None
    labels: Path | None = None


def standard_val_labels() -> np.ndarray:
    """Labels of the full val set in the standard (ImageFolder) order: 50 per class."""
    return np.repeat(np.arange(1000, dtype=np.int64), 50)


def labels_beside(test_set: PredictionSet) -> tuple[np.ndarray, Path] | None:
    """dataset_labels.npy from the first folder of this test set that has one, checked."""
    for folder in test_set.folders:
        labels = output_folder.read_labels(folder)
        if labels is not None:
            path = folder / output_folder.DATASET_LABELS
            if labels.size and (labels.min() < 0 or labels.max() >= 1000):
                raise UsageError(
                    f"{path}: class index out of range 0..999 (found {labels.min()}..{labels.max()}); "
                    "the file is damaged: regenerate it, or pass --labels"
                )
            return labels.astype(np.int64), path
    return None


def read_index_file(path: Path, flag: str) -> np.ndarray:
    try:
        values: np.ndarray = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"{path}: file given to {flag} does not exist") from None
    except Exception as exc:
        raise UsageError(f"{path}: not a readable .npy file for {flag} ({exc})") from None
    if values.ndim != 1 or not (np.issubdtype(values.dtype, np.integer) or values.dtype == bool):
        raise UsageError(f"{path}: {flag} expects a 1-D integer .npy array, got {values.dtype} {values.shape}")
    return values


def read_class_file(path: Path, flag: str) -> np.ndarray:
    values = read_index_file(path, flag)
    if values.dtype == bool:
        raise UsageError(f"{path}: {flag} expects class indices, not a boolean mask")
    if values.size and (values.min() < 0 or values.max() >= 1000):
        raise UsageError(f"{path}: class index out of range 0..999")
    return values.astype(np.int64)


def standard_order_names(ground_truth_path: Path) -> list[str]:
    """Val file names in the standard row order (by class, then file name)."""
    from ..datasets import ground_truth

    truth = ground_truth.read(ground_truth_path)
    if len(truth) != FULL_VAL_SIZE:
        raise UsageError(f"{ground_truth_path}: {len(truth)} images, expected the full val set (50,000)")
    # by class, then file name: a stable sort by class of the names in order (read in that order, mostly)
    return [f"{stem}.JPEG" for stem in sorted(sorted(truth), key=truth.__getitem__)]


def resolve(test_set: PredictionSet, given: Given | None = None) -> Labels:
    """The test set's labels and its rule: ``_values`` for the labels, then the rule its
    dataset.json records (a test set with its own classes), else one ImageNet class per image."""
    labels = _values(test_set, given)
    own = (test_set.info or {}).get("own_classes")
    if own is not None:
        labels.accepts = _membership(own, test_set, labels.values)
        columns = (test_set.info or {}).get("columns", list(ACCURACIES))
        if not valid_columns(columns):
            raise UsageError(
                f"{test_set.folders[0] / output_folder.DATASET_JSON}: columns is {columns!r}, not "
                f"{list(ACCURACIES[:1])} or {list(ACCURACIES)}; regenerate the folder"
            )
        labels.columns = tuple(columns)
    return labels


def _membership(own: Any, test_set: PredictionSet, labels: np.ndarray) -> np.ndarray:
    """own classes x 1000 bool from dataset.json's own_classes; a record that is not one, or
    labels beyond its classes, is one error naming the file (dataset.json is input)."""
    where = test_set.folders[0] / output_folder.DATASET_JSON
    try:
        accepts = tuple(tuple(sorted(int(c) for c in accepted)) for accepted in own["accepts"])
        member = OwnClasses(tuple(str(i) for i in range(len(accepts))), accepts).membership()
    except (TypeError, KeyError, ValueError):
        raise UsageError(
            f"{where}: own_classes.accepts is not a list of lists of class indices 0..999; "
            "regenerate the folder with the prediction scripts"
        ) from None
    if labels.size and labels.max() >= len(member):
        raise UsageError(
            f"{where}: labels up to {labels.max()} but {len(member)} own classes; the folder is damaged: regenerate it"
        )
    return member


def _values(test_set: PredictionSet, given: Given | None) -> Labels:
    """--val-dir, --labels (primary only), dataset_labels.npy, else the standard order of the
    full val set; with the rows' file names where known."""
    if given is not None and given.val_dir:
        from ..datasets import layout

        dataset = layout.scan(given.val_dir, given.val_ground_truth)
        return Labels(dataset.labels, f"--val-dir {given.val_dir} ({dataset.label_source})", dataset.names)
    names = None
    for folder in test_set.folders:
        names = names or output_folder.read_files(folder)
    if names is not None and len(names) != test_set.n:
        folder = next(f for f in test_set.folders if output_folder.read_files(f) is not None)
        raise UsageError(
            f"{folder / output_folder.DATASET_FILES}: {len(names)} file names but {test_set.n} "
            "prediction rows; regenerate it (or remove it: --real-labels and --clean-labels need it)"
        )
    if given is not None and given.labels:
        return Labels(read_class_file(given.labels, "--labels"), f"--labels {given.labels}", names)
    beside = labels_beside(test_set)
    if beside is not None:
        return Labels(beside[0], str(beside[1]), names)
    if test_set.n == FULL_VAL_SIZE:
        if names is None and given is not None and given.val_ground_truth:
            names = standard_order_names(given.val_ground_truth)
        return Labels(standard_val_labels(), "standard order of the full val set (50 images per class)", names)
    raise UsageError(
        f"{test_set.models[0].preds_path}: no labels for these {test_set.n} images; pass --val-dir or --labels"
    )
