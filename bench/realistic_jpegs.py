"""Real-size JPEGs for benchmarks: 500 x 375, photographic-like content, ~110 KB.

ImageNet val images average about 110 KB at about 500 x 375. Uniform noise
compresses badly and smooth fields too well; a sum of smooth random fields at
several scales plus fine noise lands near ImageNet's size and decoding cost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from imagenet_bench.base.classes import wnids


def image(rng: np.random.Generator, width: int = 500, height: int = 375) -> Image.Image:
    field = np.zeros((height, width, 3))
    for scale, weight in ((8, 90.0), (32, 50.0), (125, 25.0)):
        coarse = rng.normal(size=(max(2, height * scale // width), scale, 3))
        field += (
            weight
            * np.asarray(
                Image.fromarray(coarse.astype(np.float32)[..., 0]).resize((width, height), Image.Resampling.BICUBIC)
            )[..., None]
            * rng.uniform(0.5, 1.5, size=3)
        )
    field += rng.normal(scale=23.0, size=field.shape)
    return Image.fromarray(np.clip(field + 128, 0, 255).astype(np.uint8))


def make_val_set(root: Path, n_images: int, n_classes: int = 10, seed: int = 0) -> Path:
    """An ImageFolder val set of ``n_images`` JPEGs over ``n_classes`` classes (reused if present)."""
    rng = np.random.default_rng(seed)
    marker = root / f".complete-{n_images}-{n_classes}-{seed}"
    if marker.exists():
        return root
    for i in range(n_images):
        folder = root / wnids()[i % n_classes]
        folder.mkdir(parents=True, exist_ok=True)
        image(rng).save(folder / f"ILSVRC2012_val_{i + 1:08d}.JPEG", quality=90)
    marker.touch()
    return root


def mean_file_kb(root: Path) -> float:
    sizes = [p.stat().st_size for p in root.glob("n*/*.JPEG")]
    return sum(sizes) / len(sizes) / 1024
