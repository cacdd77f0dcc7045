"""The prediction-file format shared by all three scripts.

One model's outputs on one dataset are, in one folder:
  {model}_{platform}_imagenet_top5preds.npy   N x k class indices (integers)
  {model}_{platform}_imagenet_top5probs.npy   N x k probabilities (floats)
  {model}_{platform}_imagenet_manifest.json   how they were made (not in 2019 files)
The names are the 2019 ones, kept for every k. The 2019 files are not sorted by
probability, so top-1 is always ``preds[i, argmax(probs[i])]``; files this project
writes are sorted, for which that is column 0.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..base import atomic
from ..base.cached import cached_property
from ..base.classes import NUM_CLASSES
from ..base.errors import UsageError

PLATFORMS = ("pytorch", "keras")

# Source names that older manifests record (``request.source``), and the name they have now
# (sources.SOURCES): outputs made before a rename still resume and show under today's name.
RENAMED_SOURCES = {"keras.applications": "keras"}


def current_source(name: str | None) -> str | None:
    """Today's name of a source a manifest records (unchanged if it was never renamed)."""
    return RENAMED_SOURCES.get(name, name) if name is not None else None


def current_request(request: dict[str, Any]) -> dict[str, Any]:
    """A recorded request with its source named as today, and its device as its kind alone
    (``cuda:0`` was recorded before the index moved to the manifest): for resume's comparison."""
    if request.get("source") in RENAMED_SOURCES:
        request = {**request, "source": RENAMED_SOURCES[request["source"]]}
    if isinstance(request.get("device"), str) and ":" in request["device"]:
        request = {**request, "device": request["device"].partition(":")[0]}
    return request


_PREDS_RE = re.compile(r"^(?P<model>[^/]+)_(?P<platform>pytorch|keras)_imagenet_top5preds\.npy$")


class BadPredictionFile(UsageError):
    """A prediction file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class ModelFiles:
    """Where one model's prediction files live (they may not exist yet)."""

    folder: Path
    model: str
    platform: str

    def _path(self, suffix: str) -> Path:
        return self.folder / f"{self.model}_{self.platform}_imagenet_{suffix}"

    @property
    def preds_path(self) -> Path:
        return self._path("top5preds.npy")

    @property
    def probs_path(self) -> Path:
        return self._path("top5probs.npy")

    @property
    def manifest_path(self) -> Path:
        return self._path("manifest.json")

    @property
    def all_probs_path(self) -> Path:
        return self._path("allprobs.npy")

    @property
    def label(self) -> str:
        return f"{self.platform} {self.model}"


@dataclass
class Predictions:
    files: ModelFiles
    preds: np.ndarray
    probs: np.ndarray
    manifest: dict[str, Any] | None = None
    top1: np.ndarray = field(init=False)
    warnings: list[str] = field(default_factory=list)
    top1_column: np.ndarray = field(init=False)  # the most probable column of each row
    derived: dict[str, Any] = field(default_factory=dict)  # what measures share while the arrays are loaded

    def __post_init__(self) -> None:
        self.top1_column = np.argmax(self.probs, axis=1)
        self.top1 = self.preds[np.arange(len(self.preds)), self.top1_column]

    @cached_property
    def confidence(self) -> np.ndarray:
        """Each row's top-1 probability (of ``top1``'s column), float32 where the file's are no
        wider (the measures that grade it sum in float64), else float64; computed once, when asked."""
        rows, width = self.probs.shape  # one flat index: half the time of a gather by row and column
        found: np.ndarray = self.probs.reshape(-1).take(_row_starts(rows, width) + self.top1_column)
        narrow = found.dtype.kind == "f" and found.dtype.itemsize <= 4
        return found.astype(np.float32 if narrow else np.float64, copy=False)

    @property
    def n(self) -> int:
        return len(self.preds)

    @property
    def k(self) -> int:
        k: int = self.preds.shape[1]
        return k


@functools.lru_cache(maxsize=4)
def _row_starts(rows: int, width: int) -> np.ndarray:
    """Where each row of a rows x width array starts in its flat order (made once per shape, read only)."""
    starts = np.arange(0, rows * width, width)
    starts.flags.writeable = False
    return starts


def model_files(folder: str | Path, model: str, platform: str) -> ModelFiles:
    if "/" in model or not model:
        raise UsageError(f"model id {model!r} may not be empty or contain '/'")
    if platform not in PLATFORMS:
        raise UsageError(f"platform {platform!r} is not one of {', '.join(PLATFORMS)}")
    return ModelFiles(Path(folder), model, platform)


def discover(folder: str | Path) -> list[ModelFiles]:
    """Every model with a preds file at the top level of ``folder``, sorted by name."""
    found = []
    for path in Path(folder).iterdir():
        match = _PREDS_RE.match(path.name)
        if match and path.is_file():
            found.append(ModelFiles(Path(folder), match["model"], match["platform"]))
    return sorted(found, key=lambda f: (f.platform, f.model))


_HEADER_RE = re.compile(rb"^\{'descr': '([^']+)', 'fortran_order': (True|False), 'shape': \(([0-9, ]*)\), *\} *\n$")


def _header(data: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int] | None:
    """(shape, fortran order, dtype, data offset) of a version 1.0 .npy header as numpy writes
    it, parsed with one regex (numpy's own parser evaluates it as Python: 10 times slower);
    None for any other header, which numpy then reads."""
    if data[:8] != b"\x93NUMPY\x01\x00" or len(data) < 10:
        return None
    end = 10 + int.from_bytes(data[8:10], "little")
    match = _HEADER_RE.match(data[10:end])
    if match is None or len(data) < end:
        return None
    shape = tuple(int(x) for x in match[3].split(b",") if x.strip())
    return shape, match[2] == b"True", np.dtype(match[1].decode()), end


def _parse_npy(data: bytes) -> np.ndarray:
    """The array in .npy bytes, as a view of them (no copy)."""
    header = _header(data)
    if header is None:
        array: np.ndarray = np.load(io.BytesIO(data), allow_pickle=False)
        return array
    shape, fortran, dtype, offset = header
    if dtype.hasobject:
        raise ValueError("object arrays are not prediction files")
    count = int(np.prod(shape, dtype=np.int64))
    array = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def _read_npy(path: Path, promised: str | None) -> np.ndarray:
    """The array in ``path``, read once; when a sha256 is ``promised`` (by the manifest),
    the bytes read are hashed and must match it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadPredictionFile(f"{path}: file is missing") from None
    except OSError as exc:
        raise BadPredictionFile(f"{path}: cannot read ({exc.strerror or exc})") from None
    if promised is not None and hashlib.sha256(data).hexdigest() != promised:
        raise BadPredictionFile(
            f"{path}: sha256 does not match its manifest (the file was edited, or swapped "
            "with another model's); regenerate it, or restore the file the manifest names"
        )
    try:
        return _parse_npy(data)
    except Exception as exc:  # numpy raises ValueError, EOFError, OSError... for bad files
        raise BadPredictionFile(
            f"{path}: not a readable .npy file (truncated or corrupt: {exc}); regenerate it"
        ) from None


def npy_rows(path: Path) -> int:
    """The row count in a .npy file's header, without reading its data."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(256)
        header = _header(start)
        shape = header[0] if header is not None else np.load(path, mmap_mode="r", allow_pickle=False).shape
    except FileNotFoundError:
        raise BadPredictionFile(f"{path}: file is missing") from None
    except Exception as exc:
        raise BadPredictionFile(
            f"{path}: not a readable .npy file (truncated or corrupt: {exc}); regenerate it"
        ) from None
    return int(shape[0]) if shape else 0


def read_manifest(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadPredictionFile(f"{path}: not a readable JSON manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise BadPredictionFile(f"{path}: manifest is not a JSON object")
    validate_manifest(path, manifest)
    return manifest


def validate_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """BadPredictionFile naming ``path`` and the field when a field readers use has the wrong type."""
    from .manifest_fields import wrong_field

    wrong = wrong_field(manifest)
    if wrong is not None:
        raise BadPredictionFile(f"{path}: {wrong}; regenerate the outputs (or fix the manifest)")


PROB_TOLERANCE = 1e-3  # float16 rounding of a probability near 1 (or 0) stays inside


def _class_ids_in_range(preds: np.ndarray) -> bool:
    """Every id in 0..NUM_CLASSES-1, read as signed whatever the dtype. One pass where the
    dtype is wide enough that a negative viewed as unsigned is >= NUM_CLASSES (int16 and
    wider); int8's -1 is 255 unsigned, so there it takes the min."""
    if preds.dtype.kind == "i" and np.iinfo(preds.dtype).max < NUM_CLASSES:
        return bool(preds.min() >= 0)  # an int8 cannot reach NUM_CLASSES
    unsigned = preds.view(np.dtype(f"u{preds.dtype.itemsize}")) if preds.dtype.kind == "i" else preds
    return bool(unsigned.max() < NUM_CLASSES)


def load(files: ModelFiles) -> Predictions:
    """Read and validate one model's files, each read once; BadPredictionFile names the faulty file.

    When a manifest records the files' sha256 (every file this project writes), the
    bytes read are checked against it. Probabilities that are not numbers (NaN) are
    kept, and noted in ``Predictions.warnings``.
    """
    manifest = read_manifest(files.manifest_path)
    promised = (manifest or {}).get("outputs") or {}
    preds = _read_npy(files.preds_path, promised.get(files.preds_path.name))
    probs = _read_npy(files.probs_path, promised.get(files.probs_path.name))
    if preds.ndim != 2 or preds.shape[1] < 1 or not np.issubdtype(preds.dtype, np.integer):
        raise BadPredictionFile(f"{files.preds_path}: expected an N x k integer array, got {preds.dtype} {preds.shape}")
    if not np.issubdtype(probs.dtype, np.floating):
        raise BadPredictionFile(f"{files.probs_path}: expected floats, got {probs.dtype}")
    if probs.shape != preds.shape:
        raise BadPredictionFile(
            f"{files.probs_path}: shape {probs.shape} does not match {files.preds_path.name} {preds.shape}"
        )
    if preds.size and not _class_ids_in_range(preds):
        raise BadPredictionFile(
            f"{files.preds_path}: class index out of range 0..{NUM_CLASSES - 1} (found {preds.min()}..{preds.max()})"
        )
    has_nan = bool(probs.size) and bool(np.isnan(probs.max()))  # max is NaN when any is: one fast pass
    numbers = probs[~np.isnan(probs)] if has_nan else probs
    if numbers.size and not (numbers.min() >= -PROB_TOLERANCE and numbers.max() <= 1 + PROB_TOLERANCE):
        raise BadPredictionFile(
            f"{files.probs_path}: probabilities must be finite and in [0, 1], found {numbers.min()}..{numbers.max()} "
            "(logits or scores?); regenerate the file"
        )
    loaded = Predictions(files, preds, probs, manifest)
    if has_nan:  # rows counted only then
        nan_rows = int(np.count_nonzero(np.isnan(probs).any(axis=1)))
        loaded.warnings.append(
            f"{files.probs_path}: {nan_rows} rows hold NaN probabilities (their top-1 "
            "ignores the NaN columns); regenerate the file"
        )
    return loaded


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_unchanged(path: str | Path) -> str:
    """``sha256_file`` of a weights file, once a run while its size and time are unchanged: a
    sweep asks for it at every test set, and a checkpoint can be gigabytes."""
    stat = Path(path).stat()
    return _sha256_of(Path(path).resolve(), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _sha256_of(path: Path, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def save(files: ModelFiles, preds: np.ndarray, probs: np.ndarray, manifest: dict[str, Any]) -> None:
    """Write preds, probs, then the manifest (which marks the outputs complete), each atomically.

    An old manifest is removed first: a kill while an overwrite is under way leaves
    arrays without a manifest, which a rerun redoes and the table script refuses.

    The manifest records the sha256 of both arrays, so a later run can tell that
    the files beside it are the ones it describes.
    """
    files.manifest_path.unlink(missing_ok=True)  # until the new manifest is written, the model is incomplete
    order = np.argsort(-probs, axis=1, kind="stable")
    preds = np.take_along_axis(np.asarray(preds, dtype=np.int64), order, axis=1)
    probs = np.take_along_axis(np.asarray(probs, dtype=np.float32), order, axis=1)
    atomic.save_npy(files.preds_path, preds)
    atomic.save_npy(files.probs_path, probs)
    manifest = dict(manifest)
    manifest["outputs"] = {
        files.preds_path.name: sha256_file(files.preds_path),
        files.probs_path.name: sha256_file(files.probs_path),
        "n_images": int(preds.shape[0]),
        "topk": int(preds.shape[1]),
    }
    atomic.write_json(files.manifest_path, manifest)


def outputs_complete(files: ModelFiles) -> dict[str, Any] | None:
    """The manifest if this model's outputs are complete and match it, else None."""
    try:
        manifest = read_manifest(files.manifest_path)
    except BadPredictionFile:
        return None
    if not manifest or "outputs" not in manifest:
        return None
    for path in (files.preds_path, files.probs_path):
        if not path.exists() or sha256_file(path) != manifest["outputs"].get(path.name):
            return None
    return manifest
