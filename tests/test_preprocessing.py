"""Preprocessing geometry: identical pixels to torchvision's transforms, and the
documented rules of the other modes, on generated images of awkward sizes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from torchvision import transforms as T

from imagenet_bench.datasets import preprocessing
from imagenet_bench.datasets.preprocessing import Preprocess
from imagenet_bench.models import torch_registry

SIZES = [(500, 375), (375, 500), (224, 224), (256, 300), (123, 457), (301, 299), (200, 150), (1000, 51)]


def _images():
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in SIZES]


def _torchvision_pixels(image, resize, crop, interpolation):
    mode = getattr(T.InterpolationMode, interpolation.upper())
    return (
        T.Compose([T.Resize(resize, interpolation=mode), T.CenterCrop(crop), T.PILToTensor()])(image)
        .permute(1, 2, 0)
        .numpy()
    )


@pytest.mark.slow
def test_every_reference_geometry_is_pixel_identical_to_torchvision():
    geometries = {torch_registry.by_id()[i].preprocess("reference").geometry for i in torch_registry.by_id()}
    geometries |= {
        e.preprocess("seed2019").geometry for e in torch_registry.entries() if e.id in torch_registry.SEED_2019_IDS
    }
    assert len(geometries) >= 8
    for image in _images():
        for mode, resize, crop, interpolation in geometries:
            assert mode == "shorter"
            ours = Preprocess(crop, resize, mode, interpolation).pixels(image)
            theirs = _torchvision_pixels(image, resize, crop, interpolation)
            assert ours.shape == theirs.shape == (crop, crop, 3)
            assert np.array_equal(ours, theirs), (image.size, resize, crop, interpolation)


def test_crop_larger_than_resized_image_is_zero_padded_like_2019_inception():
    image = Image.new("RGB", (400, 300), (200, 100, 50))
    pixels = Preprocess(299, 256).pixels(image)  # 341 x 256 -> pad rows to 299
    assert pixels.shape == (299, 299, 3)
    assert (pixels[0] == 0).all() and (pixels[-1] == 0).all()  # padded rows
    assert (pixels[150, 150] == (200, 100, 50)).all()


def test_common_rule_sizes():
    assert [preprocessing.common(s).resize_size for s in (224, 299, 331)] == [256, 342, 378]
    assert preprocessing.common(224).interpolation == "bilinear"


def test_squash_and_crop_fraction_modes():
    image = Image.fromarray(np.arange(300 * 400 * 3, dtype=np.uint8).reshape(300, 400, 3))
    squash = Preprocess(224, 256, "squash", "bicubic").pixels(image)
    expected = np.asarray(image.resize((256, 256), Image.Resampling.BICUBIC))[16:240, 16:240]
    assert np.array_equal(squash, expected)
    # EfficientNet eval: centre square of 224/256 of the shorter side (262 px), resized to 224
    frac = Preprocess(224, 224, "crop_fraction", "bicubic").pixels(image)
    side = int(224 / 256 * 300)
    top, left = (300 - side + 1) // 2, (400 - side + 1) // 2
    expected = np.asarray(image.crop((left, top, left + side, top + side)).resize((224, 224), Image.Resampling.BICUBIC))
    assert np.array_equal(frac, expected)


def test_bad_declarations_are_refused():
    with pytest.raises(ValueError):
        Preprocess(224, 256, "stretch")
    with pytest.raises(ValueError):
        Preprocess(224, 256, interpolation="area")
