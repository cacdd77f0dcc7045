"""Scoring prediction files: which files rank together, against which labels.

Files made on different datasets are never ranked together. A folder's dataset
is its dataset.json; files without one (the 2019 files) are taken to be in the
standard order of the full 50,000-image val set, and rank beside new files only
when those were made on the full val set.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


import numpy as np

from . import output_folder, predfiles
from .errors import UsageError
from .layout import FULL_VAL_SIZE
from .metrics import topk_correct

FULL_VAL_KEY = "ILSVRC2012 val (50,000 images, standard order)"


def standard_val_labels() -> np.ndarray:
    """Labels of the full val set in the standard (ImageFolder) order: 50 per class."""
    return np.repeat(np.arange(1000, dtype=np.int64), 50)


@dataclass
class Source:
    """A folder to read prediction files from; ``required`` ones must exist."""

    folder: Path
    required: bool


def find_files(sources: list[Source]) -> list[predfiles.ModelFiles]:
    """Every model's files in the given folders; a model found twice is taken once."""
    found: dict[tuple[str, str], predfiles.ModelFiles] = {}
    for source in sources:
        if not source.folder.is_dir():
            if source.required:
                raise UsageError(f"{source.folder}: prediction folder does not exist")
            continue
        for files in predfiles.discover(source.folder):
            key = (files.platform, files.model)
            if key in found:
                print(f"warning: {files.preds_path} ignored: {files.label} already read from "
                      f"{found[key].folder}", file=sys.stderr)
                continue
            found[key] = files
    return list(found.values())


def dataset_key(files: predfiles.ModelFiles, n: int) -> str:
    """The dataset a model's files were made on, as a key for grouping."""
    info = output_folder.read_info(files.folder)
    if info is None:
        return FULL_VAL_KEY if n == FULL_VAL_SIZE else f"unknown dataset of {n} images in {files.folder}"
    if info.get("full_val"):
        return FULL_VAL_KEY
    return f"dataset {info['fingerprint'][:12]} ({info['n_images']} images)"


@dataclass
class Scored:
    """One model's per-image correctness, plus what the table shows about it."""

    preds: predfiles.Predictions
    correct1: np.ndarray
    correct5: np.ndarray | None

    @property
    def files(self) -> predfiles.ModelFiles:
        return self.preds.files


@dataclass
class Loaded:
    models: list[predfiles.Predictions]
    failures: list[str]
    dataset: str


def load_all(all_files: list[predfiles.ModelFiles]) -> Loaded:
    """Load every model; bad files become failure messages, not errors.

    Raises UsageError when the good files come from more than one dataset.
    """
    models, failures = [], []
    for files in all_files:
        try:
            loaded = predfiles.load(files)
        except predfiles.BadPredictionFile as exc:
            failures.append(str(exc))
            continue
        if loaded.manifest is None and output_folder.read_info(files.folder) is not None:
            failures.append(f"{files.manifest_path}: missing, so these outputs are incomplete (a run was "
                            "stopped while writing them); run the prediction script again")
            continue
        models.append(loaded)
    groups: dict[str, list[str]] = {}
    for model in models:
        groups.setdefault(dataset_key(model.files, model.n), []).append(str(model.files.preds_path))
    if len(groups) > 1:
        described = "; ".join(f"{key}: {', '.join(paths[:2])}{' ...' if len(paths) > 2 else ''}"
                              for key, paths in groups.items())
        raise UsageError(f"prediction files from different datasets cannot be ranked together ({described}); "
                         "pass their folders separately")
    return Loaded(models, failures, next(iter(groups), ""))


def labels_beside(models: list[predfiles.Predictions]) -> tuple[np.ndarray, str] | None:
    """dataset_labels.npy from the first folder of these models that has one."""
    for folder in dict.fromkeys(m.files.folder for m in models):
        labels = output_folder.read_labels(folder)
        if labels is not None:
            return labels, str(folder / output_folder.DATASET_LABELS)
    return None


def score(models: list[predfiles.Predictions], labels: np.ndarray, failures: list[str]) -> list[Scored]:
    """Per-image correctness of every model whose row count matches the labels."""
    scored = []
    for model in models:
        if model.n != len(labels):
            failures.append(f"{model.files.preds_path}: {model.n} rows but {len(labels)} labels; "
                            "were these made on another dataset?")
            continue
        correct1, correct5 = topk_correct(model.preds, model.top1, labels)
        scored.append(Scored(model, correct1, correct5))
    return scored
