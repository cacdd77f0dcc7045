"""What every manifest records about the environment a prediction file was made in."""
from __future__ import annotations

import datetime
import functools
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import PIL

from .layout import Dataset

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "imagenet-bench/manifest/1"


@functools.lru_cache(maxsize=None)
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
    """The common part of a manifest; the framework code adds the rest.

    ``request`` holds everything that must match for a rerun to reuse the outputs
    (weights, preprocessing, numerics...); resume compares it as a whole.
    """
    return {
        "schema": SCHEMA,
        "model": model_id,
        "platform": platform_name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "protocol": protocol,
        "dataset": dataset_summary(dataset),
        "labels_source": dataset.label_source,
        "request": request,
        "environment": environment(),
        "git": git_state(),
        "command": command_line(),
    }
