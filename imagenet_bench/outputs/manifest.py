"""What every manifest records about the environment a prediction file was made in."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL

from ..datasets.layout import Dataset

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the repository (imagenet_bench/outputs/ is two below)
SCHEMA = "imagenet-bench/manifest/1"


@functools.cache
def git_state() -> dict[str, Any]:
    """The project's commit, and whether the working tree had uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "os": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
    }


def dataset_summary(dataset: Dataset) -> dict[str, Any]:
    return {
        "fingerprint": dataset.fingerprint,
        "layout": dataset.layout,
        "root": str(dataset.root),
        "n_images": len(dataset),
        "n_classes_present": len(dataset.classes_present),
        "full_val": dataset.is_full_val,
        "subset": dataset.subset,
        "test_set": dataset.recorded_test_set,
        "class_subset": None if dataset.class_subset is None else dataset.class_subset.describe(),
    }


def command_line() -> list[str]:
    """The command line that started this process, to run again from the same folder."""
    return ["python", *sys.argv]


def new(model_id: str, platform_name: str, dataset: Dataset, protocol: str, request: dict[str, Any]) -> dict[str, Any]:
    """The common part of a manifest; each platform adds the rest.

    ``request`` holds everything that must match for a rerun to reuse the outputs
    (weights, preprocessing, numerics...); resume compares it as a whole.
    """
    return {
        "schema": SCHEMA,
        "model": model_id,
        "platform": platform_name,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "protocol": protocol,
        "dataset": dataset_summary(dataset),
        "labels_source": dataset.label_source,
        "request": request,
        "environment": environment(),
        "git": git_state(),
        "command": command_line(),
    }


@dataclass(frozen=True)
class ModelRun:
    """What every platform records about one model's run, in the same words for both."""

    framework: dict[str, Any]
    weights: dict[str, Any] | None
    published: dict[str, Any] | None
    preprocessing: dict[str, Any]
    device: dict[str, Any]
    numerics: dict[str, Any]
    batch_size: int
    workers: int
    throughput: dict[str, Any]
    params: int | None  # the registry's count, else counted on the model that ran
    gflops: float | None  # per image, from the registry where it knows them (the table's --speed)


def for_model(
    model_id: str,
    platform_name: str,
    dataset: Dataset,
    protocol: str,
    request: dict[str, Any],
    model_run: ModelRun,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """A model's whole manifest: the common part, its run, then what only its platform
    records (``extra``: e.g. the torchrun pass, or the Keras child process)."""
    record = new(model_id, platform_name, dataset, protocol, request)
    record.update({field.name: getattr(model_run, field.name) for field in dataclasses.fields(model_run)})
    record.update(extra)
    return record
