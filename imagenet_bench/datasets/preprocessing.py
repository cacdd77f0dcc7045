"""Preprocessing protocols in one declarative form, applied with PIL and numpy.

Every model (torchvision, Keras, timm, a user's --model-spec) declares its
preprocessing as a ``Preprocess``: how the decoded RGB image is resized and
cropped to uint8 pixels (``geometry``), then how the pixels are normalised.
The geometry needs neither torch nor TensorFlow, so the PyTorch and Keras scripts can feed two
models identical pixels (``--protocol common``), models with the same geometry
can share one decoding pass, and the whole recipe goes into the manifest.

The "shorter" mode reproduces torchvision's Resize(int) + CenterCrop on PIL
images exactly (same output size rounding, same crop offsets, zero padding when
the crop is larger than the image), which tests check against torchvision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import PIL
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
RESIZE_MODES = ("shorter", "squash", "crop_fraction")
PROTOCOLS = ("reference", "seed2019", "common")  # see docs/pytorch.md, "Protocols"
COMMON_CROP_PCT = 0.875


@dataclass(frozen=True)
class Preprocess:
    """How one model turns a decoded RGB image into its input.

    resize_mode:
      "shorter":       shorter side to ``resize_size`` (aspect kept), centre crop ``crop_size``
      "squash":        whole image to ``resize_size`` x ``resize_size``, centre crop ``crop_size``
      "crop_fraction": centre square of crop_size / (crop_size + 32) of the shorter side,
                       resized to ``crop_size`` (EfficientNet's evaluation)
    PIL resizing always antialiases when downscaling.
    normalization: "mean_std" ((x / 255 - mean) / std, in the model's framework), or a
      platform's own rule named by its code (e.g. "keras:tf", "in_model").
    """

    crop_size: int
    resize_size: int
    resize_mode: str = "shorter"
    interpolation: str = "bilinear"
    normalization: str = "mean_std"
    mean: tuple[float, float, float] | None = IMAGENET_MEAN
    std: tuple[float, float, float] | None = IMAGENET_STD
    border: int = 0  # pixels cut off each edge first: a test set's image step (ObjectNet's frame)
    rule: str = ""  # on a test set of two rules (ImageNet-9): "model" or "authors: no resize"

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, not {self.resize_mode!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {sorted(INTERPOLATIONS)}")

    @property
    def geometry(self) -> tuple[Any, ...]:
        """What determines the uint8 pixels: equal geometry, identical pixels."""
        plain = (self.resize_mode, self.resize_size, self.crop_size, self.interpolation)
        return plain + (("border", self.border),) if self.border else plain

    def to_dict(self) -> dict[str, Any]:
        recorded = asdict(self)
        for key in ("border", "rule"):
            if not recorded[key]:  # as recorded before test sets had image steps and rules
                del recorded[key]
        return {**recorded, "antialias": True, "library": f"PIL {PIL.__version__}"}

    def to_record(self) -> dict[str, Any]:
        """Its fields, as JSON keeps them (the Keras model process's job): ``from_record`` reads them back."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Preprocess:
        fields = dict(record)
        for key in ("mean", "std"):
            if fields.get(key) is not None:
                fields[key] = tuple(fields[key])
        return cls(**fields)

    def pixels(self, image: Image.Image) -> np.ndarray:
        """The uint8 H x W x 3 crop this protocol makes from an RGB image."""
        resample = INTERPOLATIONS[self.interpolation]
        if self.border:
            width, height = image.size
            image = image.crop((self.border, self.border, width - self.border, height - self.border))
        if self.resize_mode == "shorter":
            image = _resize_shorter(image, self.resize_size, resample)
        elif self.resize_mode == "squash":
            if image.size != (self.resize_size, self.resize_size):
                image = image.resize((self.resize_size, self.resize_size), resample)
        else:
            image = _crop_fraction(image, self.crop_size).resize((self.crop_size, self.crop_size), resample)
        return np.asarray(_center_crop(image, self.crop_size))


def _resize_shorter(image: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    """torchvision Resize(size) on a PIL image: the longer side is truncated, not rounded."""
    width, height = image.size
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    if (new_w, new_h) == (width, height):
        return image
    return image.resize((new_w, new_h), resample)


def _center_crop(image: Image.Image, size: int) -> Image.Image:
    """torchvision CenterCrop(size): pads with zeros when the image is smaller; offsets use round()."""
    width, height = image.size
    if size > width or size > height:
        padded = Image.new(image.mode, (max(width, size), max(height, size)), 0)
        padded.paste(image, ((size - width) // 2 if size > width else 0, (size - height) // 2 if size > height else 0))
        image, (width, height) = padded, padded.size
        if (width, height) == (size, size):
            return image
    top = round((height - size) / 2.0)
    left = round((width - size) / 2.0)
    return image.crop((left, top, left + size, top + size))


def _crop_fraction(image: Image.Image, size: int) -> Image.Image:
    """The centre square of size / (size + 32) of the shorter side (TF EfficientNet eval)."""
    width, height = image.size
    side = int(size / (size + 32) * min(width, height))
    top = ((height - side) + 1) // 2
    left = ((width - side) + 1) // 2
    return image.crop((left, top, left + side, top + side))


def common(
    crop_size: int,
    normalization: str = "mean_std",
    mean: tuple[float, float, float] | None = IMAGENET_MEAN,
    std: tuple[float, float, float] | None = IMAGENET_STD,
) -> Preprocess:
    """The ``common`` protocol: one rule for every model on both platforms.

    Shorter side to round(size / 0.875) (256, 342, 378 for 224, 299, 331) with PIL
    bilinear, centre crop to the native size, then the model's own normalisation.
    """
    return Preprocess(crop_size, round(crop_size / COMMON_CROP_PCT), "shorter", "bilinear", normalization, mean, std)
