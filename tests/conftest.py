"""Shared test fixtures: paths into ../shared, and small generated val sets.

Files in ../shared are read by path, never copied. In CI (CI=true) a missing
shared file fails the test instead of skipping it.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
# This test session loads both frameworks (the Keras tests build models in-process): torch's
# compiler stack (torch._dynamo, which loads triton; torchvision imports it) must come before
# TensorFlow, or triton's native import segfaults. The scripts themselves never load both.
import torch._dynamo  # noqa: F401  isort: skip

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SEED = SHARED / "reference" / "seed-2019"
VAL500 = SHARED / "data" / "imagenet-val-500"
VAL_FULL_TXT = SHARED / "data" / "ilsvrc2012-val-labels" / "val_full.txt"
WEIGHTS = SHARED / "weights"


def shared(path: Path) -> Path:
    """Return a ../shared path, or fail (CI) / skip (elsewhere) when it is missing."""
    if not path.exists():
        message = f"shared test data missing: {path}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_script(script: str, *args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run one of the top-level scripts as a user would, capturing its output."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, env=full_env, timeout=1800)


@pytest.fixture(scope="session", autouse=True)
def score_cache_home(tmp_path_factory):
    """The table script's score cache, in every run of the tests, goes to a folder of the
    session ($XDG_CACHE_HOME), never the user's ~/.cache."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield Path(os.environ["XDG_CACHE_HOME"])
    if old is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = old


def sweep_enabled() -> bool:
    return os.environ.get("IMAGENET_BENCH_SWEEP") == "1"


@pytest.fixture
def seed_dirs() -> tuple[Path, Path]:
    return shared(SEED / "keras_imagenet"), shared(SEED / "pytorch_imagenet")


@pytest.fixture
def standard_labels() -> np.ndarray:
    """Independent of the code under test: 50 images per class, sorted by class."""
    return np.repeat(np.arange(1000), 50)


def bad_run(script: str, out: Path, *args, env: dict | None = None) -> tuple[str, Path]:
    """Run a prediction script on bad input: exit status 2, exactly one ``error:`` line, and
    no prediction file written. Returns the first error line and the output folder."""
    result = run_script(script, *args, "-o", out, env=env)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert not out.exists() or not any(p.name.endswith("_top5preds.npy") for p in out.iterdir())
    return lines[0], out


def tiny_dataset(folder: Path, n: int = 2):
    """``n`` generated 400-pixel-wide images in a flat Dataset (labels all 0)."""
    from imagenet_bench.datasets.layout import Dataset
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        Image.fromarray(rng.integers(0, 255, (300 + 20 * i, 400, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return Dataset(folder, "flat", tuple(paths), np.zeros(n, dtype=np.int64),
                   tuple(p.stat().st_size for p in paths), "test")


def val_with_truncated_image(root: Path) -> Path:
    """An ImageFolder of three small JPEGs whose second (ILSVRC2012_val_00000002.JPEG) is truncated."""
    from PIL import Image

    val = root / "val" / "n01440764"
    val.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((64, 64, 3), 40 * i, dtype=np.uint8)).save(val / f"ILSVRC2012_val_0000000{i + 1}.JPEG")
    bad = val / "ILSVRC2012_val_00000002.JPEG"
    bad.write_bytes(bad.read_bytes()[:200])
    return val.parent
