"""A cache on disk of decoded, resized and cropped uint8 pixels.

Decoding and resizing JPEGs dominates on a GPU box, and is the same for every
model with the same geometry. One cache entry holds the N x H x W x 3 pixels of
one dataset under one geometry, as a .npy file that any process (both scripts,
every Keras subprocess, every torchrun rank) can memory-map.

An entry lives in ``<cache-dir>/<key hash>/``: ``pixels.npy``, then ``key.json``
written last. It is used only if key.json equals the expected key (dataset
fingerprint, geometry, PIL version, file names) and pixels.npy has exactly the
expected shape, dtype and byte size; otherwise it is rebuilt. Both files are
written under temporary names and renamed, so a killed build leaves no entry.

A killed build does leave its temporary pixels file (as large as the entry). It is
named for its owner and locked while written (``atomic.temp_beside``), so every run
that opens the cache first removes those that dead processes left, in every entry
folder, and never one that a live build is writing.

A build reserves the entry's space before it decodes anything and writes with ``pwrite``,
not through a map (``build``): a full disk is one error line naming --cache-dir, never SIGBUS.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image  # loaded here as before; the key records PIL.__version__ (PIL.Image does not export it)

from ..base import atomic, errors, test_pause
from ..datasets.layout import Dataset
from ..datasets.preprocessing import Preprocess


def validate_root(root: str | Path) -> None:
    """--cache-dir must be a folder this process can write (or create), checked before anything runs."""
    atomic.validate_folder(root, "--cache-dir")


def remove_orphans(root: str | Path) -> list[Path]:
    """Delete the temporary pixel files that killed builds left in any entry of the cache at ``root``."""
    removed: list[Path] = []
    root = Path(root)
    if root.is_dir():
        for folder in root.iterdir():
            if folder.is_dir():
                removed += atomic.remove_orphans(folder)
    return removed


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """The .npy header of a uint8 array of ``shape``, as numpy writes it (``open_memmap`` and
    ``np.save`` alike: format 1.0), so that the entry's bytes are what they always were."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
    )
    return header.getvalue()


def _reserve(fd: int, size: int) -> None:
    """Allocate ``size`` bytes of the file now: a full disk is an OSError here, before any decoding.
    A file system that cannot (EOPNOTSUPP, EINVAL) is passed over: the writes report it then."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    except AttributeError:  # no posix_fallocate on this platform (macOS)
        pass


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (pwrite may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _names_digest(dataset: Dataset) -> str:
    """sha256 of the names joined by newlines, fed one name at a time."""
    digest = hashlib.sha256()
    for row, name in enumerate(dataset.each_name()):
        digest.update(f"\n{name}".encode() if row else name.encode())
    return digest.hexdigest()


class PixelCache:
    """The cache entry for one dataset and one geometry."""

    def __init__(self, root: str | Path, dataset: Dataset, preprocess: Preprocess) -> None:
        self.key: dict[str, Any] = {
            "dataset": dataset.images_fingerprint,  # for the val set, its fingerprint (layout.Dataset)
            "geometry": list(preprocess.geometry),
            "pil": PIL.__version__,
            "files": _names_digest(dataset),
        }
        digest = hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:24]
        self.folder = Path(root) / digest
        self.shape = (len(dataset), preprocess.crop_size, preprocess.crop_size, 3)

    @property
    def pixels_path(self) -> Path:
        return self.folder / "pixels.npy"

    @property
    def key_path(self) -> Path:
        return self.folder / "key.json"

    def valid(self) -> bool:
        """A complete entry for exactly this key."""
        try:
            if json.loads(self.key_path.read_text()) != json.loads(json.dumps(self.key)):
                return False
            pixels: np.memmap[Any, np.dtype[Any]] = np.load(self.pixels_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return False
        expected_bytes = int(np.prod(self.shape))
        return (
            pixels.shape == self.shape
            and pixels.dtype == np.uint8
            and self.pixels_path.stat().st_size - pixels.offset == expected_bytes
        )

    def build(self, batches: Iterable[tuple[int, np.ndarray]], progress: Callable[[int], None] | None = None) -> None:
        """Write the entry from (start row, uint8 N x H x W x 3 batch) pieces covering every row once.

        The whole file is reserved first (``posix_fallocate``), so a disk too small for the
        entry is found before anything is decoded; the rows are then written with ``pwrite``,
        never through a memory map, where a full disk is SIGBUS (the process dies with no
        message) instead of an error. A file system that cannot reserve space reports a full
        disk at the write that meets it. Either way it is one NoSpaceError naming --cache-dir
        and the bytes the entry needs, and nothing of the entry is left."""
        header = _npy_header(self.shape)
        total = len(header) + int(np.prod(self.shape))
        made = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
        try:
            with atomic.full_disk_reported(self.pixels_path, total):
                self.folder.mkdir(parents=True, exist_ok=True)
                self.key_path.unlink(missing_ok=True)  # the entry is incomplete until key.json is back
                with atomic.temp_beside(self.pixels_path) as tmp:
                    fd = atomic.open_regular(tmp, os.O_RDWR)  # still the file mkstemp made, not a planted link
                    try:
                        _reserve(fd, total)
                        _pwrite_all(fd, header, 0)
                        self._write_rows(fd, len(header), batches, progress)
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    os.replace(tmp, self.pixels_path)
            atomic.write_json(self.key_path, self.key)
        except errors.NoSpaceError as exc:
            root = self.folder.parent
            free = (
                None
                if exc.quota
                else errors.free_bytes(next(p for p in (self.folder, *self.folder.parents) if p.exists()))
            )
            for folder in made:  # what this build created, if nothing else came into it
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise errors.NoSpaceError(
                root,
                f"the pixel cache entry {self.folder.name}/{exc.writing}",
                exc.needed,
                exc.quota,
                "--cache-dir",
                "nothing of the entry is left",
                free,
            ) from None

    def _write_rows(
        self, fd: int, offset: int, batches: Iterable[tuple[int, np.ndarray]], progress: Callable[[int], None] | None
    ) -> None:
        row_bytes = int(np.prod(self.shape[1:]))
        filled = 0
        for start, batch in batches:
            rows = np.ascontiguousarray(batch, dtype=np.uint8)
            if rows.shape[1:] != self.shape[1:] or not 0 <= start <= self.shape[0] - len(rows):
                raise RuntimeError(f"pixel cache: rows {start}+{rows.shape} do not fit the entry's {self.shape}")
            _pwrite_all(fd, rows.reshape(-1).data, offset + start * row_bytes)
            filled += len(rows)
            if progress:
                progress(len(rows))
            if filled == len(rows):  # the first rows are in, the temporary file open
                test_pause.wait_at("cache-build")
        if filled != self.shape[0]:
            raise RuntimeError(f"pixel cache: {filled} of {self.shape[0]} rows written")

    def fill(self, dataset: Dataset, preprocess: Preprocess, threads: int, batch_size: int = 64) -> None:
        """Decode the dataset once into this entry (threads decode; no framework needed)."""
        from tqdm import tqdm

        from ..datasets.images import decode_batches

        def pieces() -> Iterable[tuple[int, np.ndarray]]:
            start = 0
            for batch in decode_batches(dataset.paths, preprocess, batch_size, threads):
                yield start, batch
                start += len(batch)

        with tqdm(
            total=len(dataset),
            desc="decoding into the pixel cache",
            unit="img",
            file=sys.stderr,
            leave=False,
            disable=None,
        ) as bar:
            self.build(pieces(), bar.update)

    def ensure(self, dataset: Dataset, preprocess: Preprocess, threads: int) -> PixelCache:
        """Fill the entry unless a valid one exists (first removing what killed builds left); return self."""
        remove_orphans(self.folder.parent)
        if not self.valid():
            self.fill(dataset, preprocess, threads)
        return self
