"""One output folder holds the outputs of one dataset and one protocol.

Beside the prediction files, written once:
  dataset.json         fingerprint, layout, image count, classes present, protocol
  dataset_labels.npy   the N labels, in row order
  dataset_files.txt    the N file base names, in row order
so that scoring never needs the dataset itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..base import atomic
from ..base.errors import UsageError
from . import predfiles

if TYPE_CHECKING:  # the table reads output folders without the dataset scanner
    from ..datasets.layout import Dataset

DATASET_JSON = "dataset.json"
DATASET_LABELS = "dataset_labels.npy"
DATASET_FILES = "dataset_files.txt"
DATASET_FILE_NAMES = (DATASET_JSON, DATASET_LABELS, DATASET_FILES)
SCHEMA = "imagenet-bench/dataset/1"


def read_info(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / DATASET_JSON
    if not path.exists():
        return None
    try:
        info: dict[str, Any] = json.loads(path.read_text())
        info["fingerprint"], info["n_images"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a readable dataset.json ({exc}); remove it or pick another -o") from None
    return info


def read_labels(folder: str | Path) -> np.ndarray | None:
    path = Path(folder) / DATASET_LABELS
    if not path.exists():
        return None
    try:
        labels: np.ndarray = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise UsageError(f"{path}: not a readable .npy file ({exc})") from None
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise UsageError(f"{path}: expected a 1-D integer array, got {labels.dtype} {labels.shape}")
    return labels


def read_files(folder: str | Path) -> list[str] | None:
    path = Path(folder) / DATASET_FILES
    if not path.exists():
        return None
    return path.read_text().splitlines()


def _restriction(subset: dict[str, Any] | None) -> str:
    """A recorded class subset in a few words."""
    return "none" if not subset else f"{subset['n_classes']} classes, sha256 {subset['sha256'][:12]}"


def validate(folder: str | Path, dataset: Dataset, protocol: str) -> None:
    """Refuse, before anything runs, a folder that holds another dataset's or protocol's outputs.

    Writes nothing: the folder and its dataset files are created by ``claim`` only
    when the first model's outputs are about to be saved.
    """
    folder = Path(folder)
    atomic.validate_folder(folder, "-o/--output-dir")
    if not folder.exists():
        return
    info = read_info(folder)
    if info is not None:
        if info["fingerprint"] != dataset.fingerprint or info.get("protocol") != protocol:
            this_subset = None if dataset.class_subset is None else dataset.class_subset.describe()
            raise UsageError(
                f"{folder}: holds outputs of another dataset or protocol "
                f"({info['n_images']} images, protocol {info.get('protocol')}, class subset "
                f"{_restriction(info.get('class_subset'))}, fingerprint {info['fingerprint'][:12]}; this run: "
                f"{len(dataset)} images, protocol {protocol}, class subset {_restriction(this_subset)}, "
                f"fingerprint {dataset.fingerprint[:12]}); pick another -o/--output-dir"
            )
    elif predfiles.discover(folder):
        raise UsageError(
            f"{folder}: holds prediction files of an unknown dataset (no {DATASET_JSON}); pick another -o/--output-dir"
        )


def claim(folder: str | Path, dataset: Dataset, protocol: str) -> None:
    """Make ``folder`` the home of this dataset and protocol (after ``validate``): create
    the folder and its dataset files if they are not there yet.

    dataset.json is created exclusively (``atomic.create_json``), so of several jobs
    claiming one new folder at once (--model-shard jobs, maybe on several machines)
    exactly one creates it and the others check it against their own dataset; the
    labels and file names follow, from the job whose dataset.json it is or one of the
    same dataset (a job killed in between leaves them to the next)."""
    folder = Path(folder)
    validate(folder, dataset, protocol)
    labels, files = folder / DATASET_LABELS, folder / DATASET_FILES
    if read_info(folder) is not None and labels.exists() and files.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    if not atomic.create_json(folder / DATASET_JSON, {"schema": SCHEMA, "protocol": protocol, **dataset.describe()}):
        validate(folder, dataset, protocol)  # another job claimed it first: it must be for this dataset
    atomic.save_npy(labels, dataset.labels)
    atomic.write_text(files, "".join(f"{name}\n" for name in dataset.each_name()))
