"""Decoding val images to RGB, with errors that name the file.

Images are converted to RGB whatever their mode (greyscale, CMYK, palette) or
real format (PNG content under a .JPEG name opens fine: PIL reads the content).
A corrupt or truncated file raises ImageError; truncated JPEGs are not padded
(PIL's LOAD_TRUNCATED_IMAGES stays off), so a damaged file can never be scored.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .errors import UsageError
from .preprocessing import Preprocess


class ImageError(UsageError):
    """An image that cannot be decoded; the message names the file."""


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
