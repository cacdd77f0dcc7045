"""Decoding val images to RGB, with errors that name the file.

Images are converted to RGB whatever their mode (greyscale, CMYK, palette) or
real format (PNG content under a .JPEG name opens fine: PIL reads the content).
A corrupt or truncated file raises ImageError; truncated JPEGs are not padded
(PIL's LOAD_TRUNCATED_IMAGES stays off), so a damaged file can never be scored.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from .errors import ImageError
from .preprocessing import Preprocess


def load_rgb(path: str | Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for bad files
        raise ImageError(f"{path}: cannot decode image ({type(exc).__name__}: {exc}); "
                         "replace the file or remove it from the val set") from None


def load_pixels(path: str | Path, preprocess: Preprocess) -> np.ndarray:
    """Decode one image and apply a protocol's geometry: uint8 H x W x 3."""
    return preprocess.pixels(load_rgb(path))


def decode_batches(paths: Sequence[Path], preprocess: Preprocess, batch_size: int,
                   threads: int = 2) -> Iterator[np.ndarray]:
    """uint8 N x H x W x 3 batches in row order, decoded by ``threads`` threads a few
    batches ahead (PIL releases the GIL while decoding and resizing)."""
    if threads <= 0:
        for start in range(0, len(paths), batch_size):
            yield np.stack([load_pixels(p, preprocess) for p in paths[start:start + batch_size]])
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
    """uint8 batches of rows [offset, offset + n) of a pixel cache entry's pixels.npy."""
    pixels = np.load(pixels_path, mmap_mode="r", allow_pickle=False)
    for start in range(offset, offset + n, batch_size):
        yield np.ascontiguousarray(pixels[start:min(start + batch_size, offset + n)])
