"""Helpers shared by the table script's tests (imagenet_benchmarking.py run as a user runs it):
running it (with an import-lightness check), reading its CSV, plain-numpy expected counts, and
synthetic prediction folders written by hand (not by the code under test).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from conftest import ROOT, SEED, SHARED, VAL500, VAL_FULL_TXT, run_script, shared

SCRIPT = "imagenet_benchmarking.py"
REAL_JSON = SHARED / "data" / "imagenet-real" / "real.json"
SEED_TABLE = SEED / "seed_table.csv"
SHARED_KERAS_CSV = SHARED / "reference" / "keras_published.csv"
BASE_HEADER = ["Platform", "Model", "Acc@1", "Acc@5", "Rank@1", "Rank@5"]
HEAVY = ("torch", "tensorflow", "keras", "timm", "scipy", "matplotlib")
N = 200


_LIGHT_WRAPPER = r"""
import os, runpy, sys
script, sys.argv = sys.argv[1], sys.argv[1:]
sys.path.insert(0, os.environ["LIGHT_ROOT"])
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exc:
    code = exc.code
allowed = set(os.environ.get("LIGHT_ALLOWED", "").split(","))
heavy = [m for m in os.environ["LIGHT_HEAVY"].split(",") if m in sys.modules and m not in allowed]
if heavy:
    print("HEAVY IMPORTS: " + ",".join(heavy), file=sys.stderr)
    sys.exit(99)
sys.exit(code if isinstance(code, int) else (0 if code is None else 1))
"""


def run_light(
    *args,
    allowed: tuple[str, ...] = (),
    script: Path = ROOT / SCRIPT,
    cwd: Path | None = None,
    heavy: tuple[str, ...] = HEAVY,
) -> subprocess.CompletedProcess:
    """Run the script in-process of a wrapper (runpy) that then fails (exit 99) if a
    ``heavy`` module other than ``allowed`` was imported."""
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        LIGHT_ROOT=str(ROOT),
        LIGHT_HEAVY=",".join(heavy),
        LIGHT_ALLOWED=",".join(allowed),
    )
    return subprocess.run(
        [sys.executable, "-c", _LIGHT_WRAPPER, str(script), *map(str, args)],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def bench(*args) -> subprocess.CompletedProcess:
    return run_script(SCRIPT, *args)


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def by_model(text: str) -> dict[str, dict[str, str]]:
    return {row["Model"]: row for row in csv_rows(text)}


def ok_csv(*args) -> list[dict[str, str]]:
    proc = bench(*args, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    return csv_rows(proc.stdout)


def pct(count: int, n: int) -> str:
    return f"{100 * count / n:.2f}"


def competition_ranks(counts: list[int]) -> list[int]:
    return [1 + sum(other > c for other in counts) for c in counts]


def assert_one_error(proc: subprocess.CompletedProcess, *mentions) -> str:
    """Exit 2, nothing on stdout, one 'error:' line naming ``mentions``, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert [line for line in lines if not line.startswith(("error:", "labels:"))] == [], proc.stderr
    for mention in mentions:
        assert str(mention) in errors[0], (mention, errors[0])
    return errors[0]


def labels_line(proc: subprocess.CompletedProcess) -> str:
    found = [line for line in proc.stderr.splitlines() if line.startswith("labels:")]
    assert len(found) == 1, proc.stderr
    return found[0]


def write_model(
    folder: Path,
    model: str,
    labels: np.ndarray,
    correct1,
    correct5=(),
    *,
    platform="pytorch",
    seed=0,
    manifest: dict | None = None,
) -> dict[str, np.ndarray]:
    """One model's files, unsorted like the 2019 ones: the top-1 class sits in a random
    column with the highest probability. Rows ``correct1`` have the label as top-1, rows
    ``correct5`` have it in another column; elsewhere it is absent. Returns preds and top1."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels, dtype=np.int64)
    n, k = len(labels), 5
    rows1, rows5 = np.asarray(correct1, dtype=int), np.asarray(correct5, dtype=int)
    assert not set(rows1.tolist()) & set(rows5.tolist())
    rng = np.random.default_rng(seed)
    preds = (labels[:, None] + 1 + 7 * np.arange(k)) % 1000  # k distinct wrong classes
    probs = rng.uniform(0.01, 0.1, (n, k)).astype(np.float32)
    top = rng.integers(0, k, n)
    probs[np.arange(n), top] = 0.6
    preds[rows1, top[rows1]] = labels[rows1]
    preds[rows5, ((top + 1) % k)[rows5]] = labels[rows5]
    stem = folder / f"{model}_{platform}_imagenet_"
    np.save(f"{stem}top5preds.npy", preds.astype(np.int64))
    np.save(f"{stem}top5probs.npy", probs)
    if manifest is not None or (folder / "dataset.json").exists():
        # files in a folder the prediction scripts made always come with a manifest
        Path(f"{stem}manifest.json").write_text(json.dumps(manifest or {}))
    return {"preds": preds, "top1": preds[np.arange(n), top]}


def expected(model: dict[str, np.ndarray], labels: np.ndarray, mask: np.ndarray | None = None) -> tuple[int, int]:
    """(correct@1, correct@5) computed here with plain numpy."""
    preds, top1 = model["preds"], model["top1"]
    if mask is not None:
        preds, top1 = preds[mask], top1[mask]
    return int(np.sum(top1 == labels)), int(np.sum((preds == labels[:, None]).any(axis=1)))


def write_dataset(
    folder: Path,
    labels,
    names: list[str] | None = None,
    *,
    salt: int = 0,
    full_val: bool = False,
    with_labels: bool = True,
    with_files: bool = True,
) -> str:
    """dataset.json (+ dataset_labels.npy, dataset_files.txt) by hand, as output_folder.claim
    writes them; the fingerprint is the sha256 of the ordered 'name\\tsize\\tlabel' lines."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels, dtype=np.int64)
    names = names or [f"img_{i:05d}.JPEG" for i in range(len(labels))]
    sizes = [1000 + i + salt for i in range(len(labels))]
    digest = hashlib.sha256()
    for name, size, label in zip(names, sizes, labels.tolist(), strict=True):
        digest.update(f"{name}\t{size}\t{label}\n".encode())
    present = sorted(set(labels.tolist()))
    info = {
        "schema": "imagenet-bench/dataset/1",
        "protocol": "test-protocol",
        "fingerprint": digest.hexdigest(),
        "layout": "imagefolder",
        "root": "/data/val",
        "n_images": len(labels),
        "n_classes_present": len(present),
        "classes_present": present,
        "full_val": full_val,
        "label_source": "folder names (WordNet ids)",
        "subset": {},
    }
    (folder / "dataset.json").write_text(json.dumps(info))
    if with_labels:
        np.save(folder / "dataset_labels.npy", labels)
    if with_files:
        (folder / "dataset_files.txt").write_text("".join(f"{name}\n" for name in names))
    return info["fingerprint"]


def synthetic_labels(seed: int = 1, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1000, n)


def padded_sets(sets: list[list[int]]) -> np.ndarray:
    """Label sets as one array, padded with -1 (an empty set: a row of -1)."""
    width = max(len(s) for s in sets)
    return np.array([s + [-1] * (width - len(s)) for s in sets], dtype=np.int64)


def real_accuracy(top1: np.ndarray, sets: list[list[int]] | np.ndarray) -> tuple[int, int]:
    padded = sets if isinstance(sets, np.ndarray) else padded_sets(sets)
    valid = padded[:, 0] >= 0
    hit = (padded == top1[:, None]).any(axis=1) & valid
    return int(hit.sum()), int(valid.sum())


def val500_models(tmp_path: Path) -> tuple[Path, np.ndarray, dict]:
    """Prediction files for ../shared/data/imagenet-val-500 in the scripts' row order
    (class, then file name), labels from val_full.txt."""
    truth = dict(line.split() for line in shared(VAL_FULL_TXT).read_text().splitlines() if line.strip())
    files = sorted((int(truth[p.name]), p.name) for p in VAL500.glob("n*/*.JPEG"))
    assert len(files) == 500
    labels = np.array([label for label, _ in files])
    folder = tmp_path / "val500"
    models = {
        "m1": write_model(folder, "m1", labels, range(0, 500, 2), range(1, 300, 2), seed=1),
        "m2": write_model(folder, "m2", labels, range(300), seed=2, platform="keras"),
    }
    return folder, labels, {"names": [name for _, name in files], **models}


def promise(folder: Path, model: str, platform: str = "pytorch") -> None:
    """A manifest recording both arrays' sha256, as the prediction scripts write it."""
    stem = f"{model}_{platform}_imagenet_"
    outputs = {
        f"{stem}{s}.npy": hashlib.sha256((folder / f"{stem}{s}.npy").read_bytes()).hexdigest()
        for s in ("top5preds", "top5probs")
    }
    (folder / f"{stem}manifest.json").write_text(json.dumps({"outputs": outputs}))


def by_model_rows(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["Model"]: row for row in rows}


def keras_outputs(folder, model: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """A Keras model's (top-5 classes, probabilities, manifest) in ``folder``, read with numpy and json."""
    preds = np.load(folder / f"{model}_keras_imagenet_top5preds.npy", allow_pickle=False)
    probs = np.load(folder / f"{model}_keras_imagenet_top5probs.npy", allow_pickle=False)
    manifest = json.loads((folder / f"{model}_keras_imagenet_manifest.json").read_text())
    return preds, probs, manifest


@contextmanager
def local_server(handler: type[BaseHTTPRequestHandler] | partial) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 (a free port) for the block, with ``handler``; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def serving(folder: Path) -> Iterator[str]:
    """``local_server`` serving ``folder``'s files as they are, quietly."""
    quiet = type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    return local_server(partial(quiet, directory=str(folder)))


def closed_port_url() -> str:
    """A local URL nobody listens on: a download from it fails at once, with or without a network."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def flat_copy(folder: Path, source: Path) -> Path:
    """``folder``: a flat folder of links to ``source``'s ImageFolder images (same bytes, same names)."""
    folder.mkdir()
    for path in sorted(source.glob("n*/*.JPEG")):
        (folder / path.name).symlink_to(path)
    return folder
