"""Keras's pre-trained ImageNet classifiers: one entry per weight set, with its preprocessing.

Entries are enumerated at import time from the installed Keras's public
``keras.applications`` API file (read with ``ast``, so this module imports
neither Keras nor TensorFlow: the parent process of the Keras script, which runs
each model in a child process, never loads TensorFlow, and ``--list-models``
builds nothing). Every constructor with ImageNet weights becomes an entry; the
width/resolution variants with published weights come from the committed table
``data/keras_variants.csv`` (its header names its sources), because Keras's
constructors accept many combinations for which no weights exist.

Ids (documented, stable):
  * the 13 ids of 2019 keep their meaning: densenet121, densenet169, densenet201,
    mobilenet, mobilenetV2, nasnetmobile, resnet50, vgg16, vgg19, xception,
    inceptionresnetv2, inceptionv3, nasnetlarge;
  * every other constructor: its lower-cased name (resnet101, efficientnetb0,
    convnexttiny, mobilenetv3large, ...);
  * variants: {id}_{alpha}_{resolution} (mobilenet_0.25_128, mobilenetV2_1.4_224);
    the plain id is alpha 1.0 at 224 and has no second name; MobileNetV3:
    mobilenetv3small_0.75, mobilenetv3large_minimalistic.

Each entry declares its preprocessing for the three protocols (``preprocess``),
and where each choice comes from (``reference_source``); see
../shared/reference/keras_protocols.md for the facts behind them.
"""

from __future__ import annotations

import ast
import csv
import functools
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base.errors import UsageError
from ..datasets.preprocessing import Preprocess
from . import published, sources

SEED_2019_IDS = published.KERAS_2019_IDS
VARIANTS_CSV = Path(__file__).resolve().parents[1] / "data" / "keras_variants.csv"

# --- per family (the keras.src.applications module that defines the constructor) ---------------
#
# normalization: what the module's preprocess_input does (Keras 3 source, keras_protocols.md):
#   keras:caffe  RGB->BGR, subtract the ImageNet mean in 0..255 (VGG, ResNet v1)
#   keras:tf     x / 127.5 - 1 (Xception, Inception, MobileNet v1/v2, NASNet, ResNet v2)
#   keras:torch  x / 255, then ImageNet mean/std (DenseNet)
#   in_model     the model normalises RGB 0..255 itself; preprocess_input is the identity
#                (EfficientNet, EfficientNetV2, ConvNeXt, MobileNetV3)
# The script always calls the family module's own preprocess_input, once, on a fresh
# float32 array; the string is what the manifest and --list-models show.
#
# geometry (--protocol reference), the resize and crop behind Keras's published numbers:
#   classic        shorter side to size * 8 / 7 (256 for 224, 341 for 299, 378 for 331), centre
#                  crop to size. Source: keras-applications README and taehoonlee/tensornets
#                  evaluation scripts (keras-applications issues 88 and 99). The README states
#                  bicubic (cv2 INTER_CUBIC); the tensornets script actually resized bilinear.
#                  Neither antialiased. We use the stated bicubic through PIL's resize, the
#                  resampler of every other protocol here, which antialiases when it
#                  downscales: a documented difference from both sources, not a match.
#   crop_fraction  centre square of size / (size + 32) of the shorter side, bicubic resize to
#                  size. Source: the EfficientNet paper's evaluation (TF tpu/efficientnet
#                  preprocessing), which the keras.io figures are; EfficientNetV2 the same
#                  (sebastian-sz/efficientnet-v2-keras).
#   convnext       squash to round(size / 0.875) square (256 for 224), bicubic, centre crop
#                  0.875 (224). Source: sayakpaul/keras-convnext-conversion.
#   Both resized with TensorFlow's bicubic (tf.image.resize, no antialiasing); PIL's
#   bicubic here antialiases, as for the classic models.
FAMILIES: dict[str, tuple[str, str]] = {
    "convnext": ("in_model", "convnext"),
    "densenet": ("keras:torch", "classic"),
    "efficientnet": ("in_model", "crop_fraction"),
    "efficientnet_v2": ("in_model", "crop_fraction"),
    "inception_resnet_v2": ("keras:tf", "classic"),
    "inception_v3": ("keras:tf", "classic"),
    "mobilenet": ("keras:tf", "classic"),
    "mobilenet_v2": ("keras:tf", "classic"),
    "mobilenet_v3": ("in_model", "classic"),
    "nasnet": ("keras:tf", "classic"),
    "resnet": ("keras:caffe", "classic"),
    "resnet_v2": ("keras:tf", "classic"),
    "vgg16": ("keras:caffe", "classic"),
    "vgg19": ("keras:caffe", "classic"),
    "xception": ("keras:tf", "classic"),
}

GEOMETRY_SOURCES = {
    "classic": "keras-applications README / tensornets eval: shorter side to size*8/7, centre crop; "
    "bicubic as the README states, PIL antialiased (cv2 INTER_CUBIC and the tensornets bilinear "
    "did not antialias)",
    "crop_fraction": "EfficientNet paper eval (tpu/efficientnet; efficientnet-v2-keras): centre crop of "
    "size/(size+32) of the shorter side, bicubic resize "
    "(PIL antialiased; TF's resize did not antialias)",
    "convnext": "keras-convnext-conversion: squash to 256x256 bicubic, centre crop 0.875 "
    "(PIL antialiased; TF's resize did not antialias)",
}

# Native input size of every constructor with ImageNet weights (its `default_size`: Keras
# builds the ImageNet top only at this size). A constructor missing here is left out, with
# the reason shown by --list-models, until its size and protocol are recorded.
INPUT_SIZES: dict[str, int] = {
    "ConvNeXtBase": 224,
    "ConvNeXtLarge": 224,
    "ConvNeXtSmall": 224,
    "ConvNeXtTiny": 224,
    "ConvNeXtXLarge": 224,
    "DenseNet121": 224,
    "DenseNet169": 224,
    "DenseNet201": 224,
    "EfficientNetB0": 224,
    "EfficientNetB1": 240,
    "EfficientNetB2": 260,
    "EfficientNetB3": 300,
    "EfficientNetB4": 380,
    "EfficientNetB5": 456,
    "EfficientNetB6": 528,
    "EfficientNetB7": 600,
    "EfficientNetV2B0": 224,
    "EfficientNetV2B1": 240,
    "EfficientNetV2B2": 260,
    "EfficientNetV2B3": 300,
    "EfficientNetV2S": 384,
    "EfficientNetV2M": 480,
    "EfficientNetV2L": 480,
    "InceptionResNetV2": 299,
    "InceptionV3": 299,
    "MobileNet": 224,
    "MobileNetV2": 224,
    "MobileNetV3Large": 224,
    "MobileNetV3Small": 224,
    "NASNetLarge": 331,
    "NASNetMobile": 224,
    "ResNet101": 224,
    "ResNet101V2": 224,
    "ResNet152": 224,
    "ResNet152V2": 224,
    "ResNet50": 224,
    "ResNet50V2": 224,
    "VGG16": 224,
    "VGG19": 224,
    "Xception": 299,
}

# EfficientNet B0-B7 built with weights="imagenet" get an extra Rescaling layer after their
# Normalization layer (keras/src/applications/efficientnet.py); built with weights=None (then
# load_weights from a file) they do not. keras_predict adds it back for --weights-file.
EXTRA_RESCALING_FAMILIES = ("efficientnet",)

RESNET_V2_NOTE = (
    "published at 299, but Keras builds ResNet*V2 with its ImageNet top only at 224: "
    "run at 224 (shorter side 256, centre crop 224), so expect less than the published figure"
)
MOBILENET_V3_NOTE = (
    "MobileNetV3 is not in the keras.io table (figures: TF-slim, via the Keras docstring); "
    "run with the classic rule (TF-slim's own eval crops 87.5% of each side and resizes "
    "bilinear without keeping the aspect ratio, not one of this project's modes)"
)


@dataclass(frozen=True)
class KerasEntry:
    source = "keras"

    id: str
    application: str  # constructor name in keras.applications
    family: str  # keras.applications submodule: its preprocess_input is used
    input_size: int
    alpha: float | None = None
    minimalistic: bool = False
    params: int | None = None  # exact, for variants (table); None: see published params_m
    weights_file: str | None = None  # Keras's download file (variants table), relative to its base URL

    @property
    def kwargs(self) -> dict[str, Any]:
        """Constructor arguments besides weights and input_shape."""
        kwargs: dict[str, Any] = {}
        if self.alpha is not None:
            kwargs["alpha"] = self.alpha
        if self.minimalistic:
            kwargs["minimalistic"] = True
        return kwargs

    @property
    def normalization(self) -> str:
        return FAMILIES[self.family][0]

    @property
    def geometry_rule(self) -> str:
        return FAMILIES[self.family][1]

    @property
    def preprocess_input(self) -> str:
        """The function the script applies (once) to the float32 pixels."""
        return f"keras.applications.{self.family}.preprocess_input"

    @property
    def extra_rescaling(self) -> bool:
        return self.family in EXTRA_RESCALING_FAMILIES

    @property
    def published(self) -> dict[str, Any] | None:
        found = published.lookup("keras", self.id)
        if found is None:
            return None
        return {"acc1": found.acc1, "acc5": found.acc5, "source": found.source}

    @property
    def params_m(self) -> float | None:
        """Parameters in millions: exact for variants, keras.io's figure for constructors."""
        if self.params is not None:
            return self.params / 1e6
        return _published_params().get(self.application)

    def num_params(self) -> int | None:
        params_m = self.params_m
        return None if params_m is None else round(params_m * 1e6)

    @property
    def note(self) -> str:
        if self.family == "resnet_v2":
            return RESNET_V2_NOTE
        if self.family == "mobilenet_v3":
            return MOBILENET_V3_NOTE
        return ""

    def gflops(self) -> float | None:
        return None  # keras.io's table gives parameters and latency, not FLOPs

    def request(self) -> dict[str, Any]:
        """What the outputs must have been made from to be reused (resume)."""
        return {
            "source": self.source,
            "application": self.application,
            "kwargs": self.kwargs,
            "input_size": self.input_size,
            "weights": "imagenet",
        }

    weights_folder = None  # nothing to read before building: the constructor knows its preprocessing
    weights_in_folder = False  # --weights-file: one file

    def with_weights(self, weights_file: Any = None) -> KerasEntry:
        return self

    def build(self, weights_file: Any = None) -> tuple[Any, dict[str, Any]]:
        """The model with its ImageNet weights and the manifest's ``weights`` record (imports Keras)."""
        from . import keras_applications

        return keras_applications.build(self, weights_file)

    def preprocess_input_function(self, preprocess: Preprocess) -> Any:
        """The family module's own preprocess_input (imports Keras)."""
        from . import keras_applications

        return keras_applications.preprocess_input_function(self)

    def reference_preprocess(self) -> Preprocess:
        size, norm, rule = self.input_size, self.normalization, self.geometry_rule
        if rule == "classic":
            return Preprocess(size, size * 8 // 7, "shorter", "bicubic", norm, None, None)
        if rule == "crop_fraction":
            return Preprocess(size, size, "crop_fraction", "bicubic", norm, None, None)
        if rule == "convnext":
            return Preprocess(size, round(size / 0.875), "squash", "bicubic", norm, None, None)
        raise AssertionError(rule)

    def reference_source(self) -> str:
        source = GEOMETRY_SOURCES[self.geometry_rule]
        return f"{source}; {self.note}" if self.note else source

    def seed2019_preprocess(self) -> Preprocess:
        if self.id not in SEED_2019_IDS:
            raise UsageError(f"{self.id}: --protocol seed2019 covers only the 13 Keras models of 2019")
        # 2019: keras load_img(path, target_size=(s, s)): the whole image squashed to s x s with
        # PIL NEAREST (load_img's default), no crop; then preprocess_input. A test checks these
        # pixels equal keras.utils.load_img's on real images, greyscale ones included.
        s = self.input_size
        return Preprocess(s, s, "squash", "nearest", self.normalization, None, None)

    def preprocess(self, protocol: str) -> Preprocess:
        """This model's preprocessing under a protocol (decided in sources.preprocess_for)."""
        found: Preprocess = sources.preprocess_for(self, protocol)
        return found

    def protocol_source(self, protocol: str) -> str:
        if protocol == "reference":
            return self.reference_source()
        if protocol == "common":
            return "common: shorter side to round(size/0.875), PIL bilinear, centre crop (as the PyTorch script)"
        return "seed2019: keras load_img(path, target_size) (squash, nearest), as the 2019 script"


# --- enumeration -----------------------------------------------------------------------------


def _api_file() -> Path | None:
    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        for relative in ("applications/__init__.py", "api/applications/__init__.py"):
            path = Path(location) / relative
            if path.is_file():
                return path
    return None


@functools.cache
def constructors() -> tuple[tuple[str, str], ...]:
    """(constructor name, defining module) of every class-like name that the installed
    Keras exports from keras.applications, in Keras's (alphabetical) order.

    Read from Keras's generated public API file, without importing Keras."""
    path = _api_file()
    if path is None:
        raise UsageError("Keras is not installed: pip install keras tensorflow (see requirements.txt)")
    found = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("keras.src.applications."):
            module = node.module.rsplit(".", 1)[1]
            for alias in node.names:
                name = alias.asname or alias.name
                if name[:1].isupper():
                    found.append((name, module))
    if not found:
        raise UsageError(f"{path}: no keras.applications constructors found; is Keras 3 installed?")
    return tuple(sorted(found, key=lambda item: item[0].lower()))


@functools.cache
def _published_params() -> dict[str, float]:
    return {row["application"]: row["params_m"] for row in published.read_keras_csv()}


def read_variants(path: Path = VARIANTS_CSV) -> list[dict[str, Any]]:
    """Rows of the committed variant table (``#`` lines are its header and sources)."""
    with open(path, encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if line.strip() and not line.lstrip().startswith("#")]
    rows = []
    for row in csv.DictReader(lines):
        rows.append(
            {
                "id": row["id"],
                "application": row["application"],
                "alpha": float(row["alpha"]),
                "input_size": int(row["input_size"]),
                "minimalistic": row["minimalistic"] == "yes",
                "params": int(row["params"]),
                "weights_file": row["weights_file"],
            }
        )
    return rows


@functools.cache
def _scan() -> tuple[tuple[KerasEntry, ...], tuple[tuple[str, str], ...]]:
    variants: dict[str, list[dict[str, Any]]] = {}
    for row in read_variants():
        variants.setdefault(row["application"], []).append(row)
    entries, excluded = [], []
    for application, module in constructors():
        model_id = published.keras_model_id(application)
        if module not in FAMILIES or application not in INPUT_SIZES:
            excluded.append(
                (
                    model_id,
                    f"keras.applications.{application} ({module}) is not in this project's "
                    "registry yet: its input size and protocol are not recorded",
                )
            )
            continue
        rows = variants.pop(application, None)
        if rows is None:
            entries.append(KerasEntry(model_id, application, module, INPUT_SIZES[application]))
            continue
        plain = [row for row in rows if row["id"] == model_id]
        if len(plain) != 1 or plain[0]["input_size"] != INPUT_SIZES[application] or plain[0]["alpha"] != 1.0:
            raise RuntimeError(
                f"{VARIANTS_CSV}: needs exactly one row {model_id} (alpha 1.0 at "
                f"{INPUT_SIZES[application]}) for {application}"
            )
        for row in plain + [row for row in rows if row["id"] != model_id]:
            entries.append(
                KerasEntry(
                    row["id"],
                    application,
                    module,
                    row["input_size"],
                    row["alpha"],
                    row["minimalistic"],
                    row["params"],
                    row["weights_file"],
                )
            )
    for application in variants:
        excluded.append(
            (application, f"{VARIANTS_CSV.name} lists variants of {application}, which this Keras does not have")
        )
    return tuple(entries), tuple(excluded)


def entries() -> tuple[KerasEntry, ...]:
    """Every runnable weight set, in Keras's constructor order, variants after their plain id."""
    return _scan()[0]


def excluded() -> tuple[tuple[str, str], ...]:
    """(id, reason) of constructors that are not run."""
    return _scan()[1]


def by_id() -> dict[str, KerasEntry]:
    return {entry.id: entry for entry in entries()}
