"""Shared test fixtures: paths into ../shared, and small generated val sets.

Files in ../shared are read by path, never copied. In CI (CI=true) a missing
shared file fails the test instead of skipping it.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# The tests assume no CUDA and no network, on any machine. Their expected values are the CPU's
# (accuracies to the hundredth, probabilities equal to ones computed in this process, "cpu" in
# manifests, a quantized and a float model in one pass), so the GPUs are hidden from this process
# and from every run it starts, before torch or TensorFlow look; a test of -g/--gpus sets
# CUDA_VISIBLE_DEVICES itself, as the script does for its model processes (and the GPU check is
# bench/gpu_check.py). Downloads are either served on 127.0.0.1 by the test or meant to fail
# (NO_NETWORK): the local servers are reached without any proxy the machine sets.
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

# This test session loads both frameworks (the Keras tests build models in-process): torch's
# compiler stack (torch._dynamo, which loads triton; torchvision imports it) must come before
# TensorFlow, or triton's native import segfaults. The scripts themselves never load both.
import torch._dynamo  # noqa: F401  isort: skip

# A run started in the background by a shell without job control (`pytest &`) inherits SIGINT
# ignored, and so would every script the tests start: the Ctrl-C tests would see no Ctrl-C.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SEED = SHARED / "reference" / "seed-2019"
VAL500 = SHARED / "data" / "imagenet-val-500"
VAL_FULL_TXT = SHARED / "data" / "ilsvrc2012-val-labels" / "val_full.txt"
WEIGHTS = SHARED / "weights"


# A run that must find no network, on a machine that has one: HTTP(S) through a proxy on a closed
# local port (the discard port, 9), so a download fails at once, as it does offline.
NO_NETWORK = {name: "http://127.0.0.1:9" for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def shared(path: Path) -> Path:
    """Return a ../shared path, or fail (CI) / skip (elsewhere) when it is missing."""
    if not path.exists():
        message = f"shared test data missing: {path}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def unprivileged(command: list[str]) -> list[str]:
    """``command`` without root's power to write anywhere: as root (CI runs as root) it runs in a
    user namespace of its own as uid 1000, where a folder's missing write bit holds (no capability
    reaches outside it); as any other user, unchanged."""
    if os.geteuid() != 0:
        return command
    probe = subprocess.run(["unshare", "--user", "--map-user=1000", "--map-group=1000", "true"], capture_output=True)
    if probe.returncode != 0:
        message = f"no user namespace for an unprivileged run (unshare: {probe.stderr.decode().strip()})"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return ["unshare", "--user", "--map-user=1000", "--map-group=1000", *command]


def torchrun(program: Path, *args: object, log_dir: Path, ranks: int = 2) -> list[str]:
    """The command line of ``program`` (a script or test worker) under torchrun with ``ranks``
    processes, its logs in ``log_dir`` (not a torchelastic_* folder left in /tmp)."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={ranks}",
        "--log-dir",
        str(log_dir),
        str(program),
        *map(str, args),
    ]


def run_script(
    script: str,
    *args: str,
    cwd: Path | None = None,
    env: dict | None = None,
    as_user: bool = False,
) -> subprocess.CompletedProcess:
    """Run one of the top-level scripts as a user would, capturing its output (``as_user``: an
    unprivileged one, see ``unprivileged``)."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    command = [sys.executable, str(ROOT / script), *map(str, args)]
    return subprocess.run(
        unprivileged(command) if as_user else command,
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=1800,
    )


def pausing(env: dict[str, str], moment: str, fifo: Path) -> dict[str, str]:
    """``env`` for a run that waits at ``moment`` (``imagenet_bench.base.test_pause``) on the FIFO
    ``fifo``, made here; ``wait_until_paused`` then says when it is there."""
    from imagenet_bench.base import test_pause

    assert moment in test_pause.MOMENTS, moment
    os.mkfifo(fifo)
    return {**env, test_pause.VARIABLE: f"{moment}:{fifo}"}


def wait_until_paused(process: subprocess.Popen, fifo: Path, timeout: float = 600) -> int:
    """Wait until the run ``process`` (or a process of it) waits at its moment: it has opened the
    FIFO, so opening the other end succeeds (ENXIO until then). Returns that end, open: the run
    stays where it is until it is killed or the end is closed. Fails if the run ends first, or
    after ``timeout`` seconds (a bound, not a guess at the run's speed)."""
    import errno
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
        assert process.poll() is None, f"the run ended ({process.returncode}) before reaching its pause point"
        assert time.monotonic() < deadline, f"the run did not reach its pause point within {timeout} s"
        time.sleep(0.01)


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


def _skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """In CI (CI=true) a skip is a failure, but for the opt-in sweeps (marked ``sweep``): a
    broken install or a missing browser must not show as a green run."""
    report: pytest.TestReport = yield
    if in_ci() and report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("sweep") is None:
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where only the opt-in sweeps may skip: {_skip_reason(report)}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> pytest.CollectReport:
    """The same for a whole module skipped at import (``pytest.importorskip`` at its top)."""
    report: pytest.CollectReport = yield
    if in_ci() and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"{collector.nodeid} skipped in CI: {_skip_reason(report)}"
    return report


@pytest.fixture
def seed_dirs() -> tuple[Path, Path]:
    return shared(SEED / "keras_imagenet"), shared(SEED / "pytorch_imagenet")


@pytest.fixture
def standard_labels() -> np.ndarray:
    """Independent of the code under test: 50 images per class, sorted by class."""
    return np.repeat(np.arange(1000), 50)


# The real weights of ../shared (weights/SOURCE.md), by the model ids that load them.
TORCH_WEIGHTS = {
    "mobilenet_v2": WEIGHTS / "torchvision_mobilenet_v2_dequantized.pth",
    "quantized_mobilenet_v2": WEIGHTS / "torchvision_quantized_mobilenet_v2_qnnpack.pth",
}
KERAS_WEIGHTS = {
    "mobilenet_0.25_128": WEIGHTS / "keras_mobilenet_alpha0.25_128.weights.h5",
    "mobilenetV2": WEIGHTS / "keras_mobilenetv2_alpha1.0_224.weights.h5",
}


def weights_flags(weights: dict[str, Path]) -> list[str]:
    """``--weights-file ID=PATH`` for each (each path checked: a missing one fails in CI)."""
    return [flag for model, path in weights.items() for flag in ("--weights-file", f"{model}={shared(path)}")]


@pytest.fixture(scope="session")
def torch_real_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The PyTorch script's run of both real weight sets on the 500 images (-b 50), once a
    session, for the tests that only read its outputs: (folder, the run)."""
    out = tmp_path_factory.mktemp("torch-real") / "out"
    result = run_script(
        "imagenet_pytorch_get_predictions.py",
        shared(VAL500),
        "-m",
        *TORCH_WEIGHTS,
        *weights_flags(TORCH_WEIGHTS),
        "-o",
        out,
        "-b",
        "50",
        "-j",
        "0",
    )
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.fixture(scope="session")
def keras_real_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The Keras script's run of both real weight sets on the 500 images, --protocol common,
    one image at a time (the default) with --check-batching 20, once a session: (folder, the run)."""
    out = tmp_path_factory.mktemp("keras-real") / "out"
    result = run_script(
        "imagenet_keras_get_predictions.py",
        shared(VAL500),
        "-m",
        *KERAS_WEIGHTS,
        "--protocol",
        "common",
        *weights_flags(KERAS_WEIGHTS),
        "--check-batching",
        "20",
        "-o",
        out,
    )
    assert result.returncode == 0, result.stderr
    return out, result


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
    from PIL import Image

    from imagenet_bench.datasets.layout import Dataset

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        Image.fromarray(rng.integers(0, 255, (300 + 20 * i, 400, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return Dataset(
        folder, "flat", tuple(paths), np.zeros(n, dtype=np.int64), tuple(p.stat().st_size for p in paths), "test"
    )


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


# --- the table script's fixtures --------------------------------------------------------------
# helpers.py imports this module's paths: imported here, once they are defined.
from helpers import SEED_TABLE, synthetic_labels, write_dataset, write_model  # noqa: E402  isort: skip
from helpers import promise as _promise  # noqa: E402  isort: skip


@pytest.fixture
def four_models(tmp_path):
    """N=200 in one folder with its dataset files; ties: a and b share Acc@1, a and c Acc@5."""
    folder = tmp_path / "runs"
    labels = synthetic_labels()
    write_dataset(folder, labels)
    models = {
        "a": write_model(folder, "a", labels, range(150), range(150, 180), seed=1),
        "b": write_model(folder, "b", labels, range(50, 200), range(10, 30), seed=2),
        "c": write_model(folder, "c", labels, range(120), range(120, 180), platform="keras", seed=3),
        "d": write_model(folder, "d", labels, range(0, 200, 2), seed=4),
    }
    return folder, labels, models


@pytest.fixture(scope="session")
def seed_truth():
    """Per-image correctness of the 34 models of 2019, scored here with plain numpy."""
    shared(SEED_TABLE)
    labels = np.repeat(np.arange(1000), 50)
    truth = {}
    for platform, name in (("keras", "Keras"), ("pytorch", "PyTorch")):
        for preds_path in sorted((SEED / f"{platform}_imagenet").glob("*_top5preds.npy")):
            model = preds_path.name[: -len(f"_{platform}_imagenet_top5preds.npy")]
            preds = np.load(preds_path)
            probs = np.load(preds_path.with_name(preds_path.name.replace("top5preds", "top5probs")))
            top1 = preds[np.arange(len(preds)), np.argmax(probs, axis=1)]
            truth[(name, model)] = {
                "top1": top1,
                "preds": preds,
                "c1": top1 == labels,
                "c5": (preds == labels[:, None]).any(axis=1),
            }
    assert len(truth) == 34
    return truth


@pytest.fixture(scope="session")
def seed_table():
    with open(shared(SEED_TABLE), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 34
    return {(row["platform"].split()[0], row["model"]): row for row in rows}


@pytest.fixture
def promised(four_models):
    folder, labels, models = four_models
    for model, platform in (("a", "pytorch"), ("b", "pytorch"), ("c", "keras"), ("d", "pytorch")):
        _promise(folder, model, platform)
    return folder, labels, models
