"""Decoding val images to RGB, with errors that name the file.

Images are converted to RGB whatever their mode (greyscale, CMYK, palette; alpha
is dropped, as torchvision's and Keras's loaders do) or real format (PNG content
under a .JPEG name opens fine: PIL reads the content). 16-bit greyscale (PIL's
I;16 modes, which PIL's own convert would clip to nearly all white) keeps its high
byte, as PIL does for 16-bit RGB and RGBA PNGs, so every 16-bit image is scaled the
same way. Pixels of 32-bit integers (I) or floats (F) have no agreed 8-bit range:
refused by name. A corrupt or truncated file raises ImageError; truncated JPEGs are
not padded (PIL's LOAD_TRUNCATED_IMAGES stays off), so a damaged file is never scored.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ..base.errors import ImageError
from .preprocessing import Preprocess

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")  # 16-bit greyscale: PNG, TIFF, PGM
REFUSED_MODES = {"I": "32-bit integer pixels", "F": "32-bit float pixels"}


class _Refused(Exception):
    """A pixel format that decodes but has no agreed 8-bit meaning."""


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in SIXTEEN_BIT_MODES:
        high = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
        return Image.fromarray(high).convert("RGB")
    if image.mode in REFUSED_MODES or image.mode.startswith("I;"):
        raise _Refused(
            f"{REFUSED_MODES.get(image.mode, image.mode + ' pixels')} (PIL mode {image.mode}) have no "
            "standard 8-bit range; convert the file to 8-bit"
        )
    return image.convert("RGB")


def load_rgb(path: str | Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return _to_rgb(image)
    except _Refused as exc:
        raise ImageError(path, str(exc)) from None
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for bad files
        reason = " ".join(str(exc).replace(f" '{path}'", "").split())
        raise ImageError(path, f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__) from None


def load_pixels(path: str | Path, preprocess: Preprocess) -> np.ndarray:
    """Decode one image and apply a protocol's geometry: uint8 H x W x 3."""
    image, border = load_rgb(path), getattr(preprocess, "border", 0)  # KerasHub's converter has none
    if border and min(image.size) <= 2 * border:
        raise ImageError(
            path, f"{image.size[0]} x {image.size[1]} pixels, too small to lose the test set's {border}-pixel border"
        )
    return preprocess.pixels(image)


def decode_batches(
    paths: Sequence[Path], preprocess: Preprocess, batch_size: int, threads: int = 2
) -> Iterator[np.ndarray]:
    """uint8 N x H x W x 3 batches in row order, decoded by ``threads`` threads a few
    batches ahead (PIL releases the GIL while decoding and resizing)."""
    if threads <= 0:
        for start in range(0, len(paths), batch_size):
            yield np.stack([load_pixels(p, preprocess) for p in paths[start : start + batch_size]])
        return
    ahead = 2 * batch_size + 2 * threads
    with ThreadPoolExecutor(threads, thread_name_prefix="decode") as pool:
        queue = iter(paths)
        pending = deque(pool.submit(load_pixels, p, preprocess) for p in _take(queue, ahead))
        batch: list[np.ndarray] = []
        try:
            while pending:
                batch.append(pending.popleft().result())
                for path in _take(queue, 1):
                    pending.append(pool.submit(load_pixels, path, preprocess))
                if len(batch) == batch_size:
                    yield np.stack(batch)
                    batch = []
            if batch:
                yield np.stack(batch)
        finally:
            for future in pending:
                future.cancel()


def _take(iterator: Iterator[Path], n: int) -> list[Path]:
    out = []
    for _ in range(n):
        try:
            out.append(next(iterator))
        except StopIteration:
            break
    return out


def cached_batches(pixels_path: str | Path, n: int, batch_size: int, offset: int = 0) -> Iterator[np.ndarray]:
    """uint8 batches of rows [offset, offset + n) of a pixel cache entry's pixels.npy, read
    with ``pread``: a mapping of the file would keep every row read in the process's resident
    memory (150 KB an image at 224), where a read leaves it to the page cache."""
    fd = os.open(pixels_path, os.O_RDONLY)
    try:
        with open(fd, "rb", closefd=False) as file:
            version = np.lib.format.read_magic(file)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(file)
            start_of_rows = file.tell()
        if fortran or dtype != np.uint8 or offset + n > shape[0]:
            raise ValueError(f"{pixels_path}: not rows {offset}..{offset + n} of uint8 pixels")
        row_bytes = int(np.prod(shape[1:]))
        for start in range(offset, offset + n, batch_size):
            batch = np.empty((min(batch_size, offset + n - start), *shape[1:]), np.uint8)
            view, position = batch.data.cast("B"), start_of_rows + start * row_bytes
            while view:
                got = os.preadv(fd, [view], position)
                if got == 0:
                    raise ValueError(f"{pixels_path}: ends before row {start + len(batch)}")
                view, position = view[got:], position + got
            yield batch
    finally:
        os.close(fd)
