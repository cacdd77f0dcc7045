"""torchvision's pre-trained ImageNet classifiers, read from its weights metadata.

Ids (documented, stable): a builder name alone means the builder's first weight
set (for the 21 models of 2019 that is IMAGENET1K_V1, what ``pretrained=True``
gave then); every other weight set is ``builder.WEIGHTS`` (``resnet50.IMAGENET1K_V2``,
``quantized_resnet50.IMAGENET1K_FBGEMM_V2``). Quantized builders are those of
torchvision.models.quantization, run on the CPU with the engine named by their
weights' ``backend``. Weight sets without ImageNet-1K metrics (VGG16
IMAGENET1K_FEATURES, a feature extractor with no classifier) are left out, with
the reason shown by --list-models.

Imports torchvision: only the PyTorch prediction script loads this module.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from torchvision import models  # type: ignore[import-untyped]  # torchvision ships no py.typed marker
from torchvision.models import quantization  # type: ignore[import-untyped]  # (no py.typed marker)

from ..base.errors import UsageError
from ..datasets.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from . import sources

# The 21 torchvision models of the 2019 benchmark (its --protocol seed2019 covers only these).
SEED_2019_IDS = (
    "alexnet",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "inception_v3",
    "squeezenet1_0",
    "squeezenet1_1",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "densenet121",
    "densenet161",
    "densenet169",
    "densenet201",
)


@dataclass(frozen=True)
class TorchEntry:
    id: str
    builder: str
    weights: Any  # a torchvision WeightsEnum member
    quantized: bool

    @property
    def weights_name(self) -> str:
        return f"{type(self.weights).__name__}.{self.weights.name}"

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = self.weights.meta
        return meta

    @property
    def published(self) -> dict[str, Any]:
        metrics = self.meta["_metrics"]["ImageNet-1K"]
        return {
            "acc1": metrics["acc@1"],
            "acc5": metrics["acc@5"],
            "source": f"torchvision weights metadata ({self.weights_name})",
        }

    @property
    def backend(self) -> str | None:
        return self.meta.get("backend") if self.quantized else None

    source = "torchvision"

    def num_params(self) -> int:
        return int(self.meta["num_params"])

    def gflops(self) -> float | None:
        return self.meta.get("_ops")

    @property
    def note(self) -> str:
        return f"quantized, CPU, {self.backend}" if self.quantized else ""

    def request(self) -> dict[str, Any]:
        return {"source": self.source, "model_spec": None, "weights": self.weights_name}

    def build(self, weights_file: Any = None) -> tuple[Any, dict[str, Any]]:
        """The model with its pre-trained weights, and the manifest's ``weights`` record."""
        from .torch_build import build_torchvision

        return build_torchvision(self, weights_file)

    def reference_preprocess(self) -> Preprocess:
        """The weights' own transforms(): resize, crop, interpolation, mean/std."""
        t = self.weights.transforms()
        return Preprocess(
            crop_size=int(t.crop_size[0]),
            resize_size=int(t.resize_size[0]),
            resize_mode="shorter",
            interpolation=t.interpolation.value,
            mean=tuple(t.mean),
            std=tuple(t.std),
        )

    def seed2019_preprocess(self) -> Preprocess:
        if self.id not in SEED_2019_IDS:
            raise UsageError(f"{self.id}: --protocol seed2019 covers only the 21 models of 2019")
        crop = 299 if self.builder == "inception_v3" else 224
        # 2019: Resize(256), CenterCrop(crop): inception_v3's 256-pixel image is padded to 299.
        return Preprocess(crop, 256, "shorter", "bilinear", "mean_std", IMAGENET_MEAN, IMAGENET_STD)

    def preprocess(self, protocol: str) -> Preprocess:
        """This model's preprocessing under a protocol (decided in sources.preprocess_for)."""
        found: Preprocess = sources.preprocess_for(self, protocol)
        return found


def _has_metrics(weights: Any) -> bool:
    metrics = weights.meta.get("_metrics", {}).get("ImageNet-1K", {})
    return all(isinstance(metrics.get(k), (int, float)) and math.isfinite(metrics[k]) for k in ("acc@1", "acc@5"))


@functools.cache
def _scan() -> tuple[tuple[TorchEntry, ...], tuple[tuple[str, str], ...]]:
    entries, excluded = [], []
    for module, quantized in ((models, False), (quantization, True)):
        for builder in models.list_models(module=module):
            for position, weights in enumerate(models.get_model_weights(builder)):
                model_id = builder if position == 0 else f"{builder}.{weights.name}"
                if _has_metrics(weights):
                    entries.append(TorchEntry(model_id, builder, weights, quantized))
                else:
                    excluded.append(
                        (
                            model_id,
                            f"{type(weights).__name__}.{weights.name} has no ImageNet-1K "
                            "classifier metrics (a feature extractor)",
                        )
                    )
    return tuple(entries), tuple(excluded)


def entries() -> tuple[TorchEntry, ...]:
    """Every runnable weight set, quantized ones last, in torchvision's order."""
    return _scan()[0]


def excluded() -> tuple[tuple[str, str], ...]:
    """(id, reason) of weight sets that are not run."""
    return _scan()[1]


def by_id() -> dict[str, TorchEntry]:
    return {entry.id: entry for entry in entries()}
