"""Published accuracies: the committed tables, the model-id rules, and import lightness."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagenet_bench.models import published
from tools import torchvision_published

REPO = Path(__file__).resolve().parents[1]
SHARED_KERAS_CSV = REPO.parent / "shared" / "reference" / "keras_published.csv"

PYTORCH_2019_IDS = (
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
# The 2019 Keras ids and the application each one means.
KERAS_2019 = {
    "densenet121": "DenseNet121",
    "densenet169": "DenseNet169",
    "densenet201": "DenseNet201",
    "mobilenet": "MobileNet",
    "mobilenetV2": "MobileNetV2",
    "nasnetmobile": "NASNetMobile",
    "resnet50": "ResNet50",
    "vgg16": "VGG16",
    "vgg19": "VGG19",
    "xception": "Xception",
    "inceptionresnetv2": "InceptionResNetV2",
    "inceptionv3": "InceptionV3",
    "nasnetlarge": "NASNetLarge",
}


def _metrics(weights) -> tuple[float, float]:
    m = weights.meta["_metrics"]["ImageNet-1K"]
    return m["acc@1"], m["acc@5"]


# --- torchvision -----------------------------------------------------------------


def test_committed_torchvision_table_matches_installed_library():
    pytest.importorskip("torchvision")
    committed = json.loads(published.TORCHVISION_JSON.read_text(encoding="utf-8"))
    assert committed == torchvision_published.generate_torchvision_table(), (
        "data/torchvision_published.json is stale: run python -m tools.torchvision_published"
    )


def test_torchvision_counts_match_library():
    pytest.importorskip("torchvision")
    from torchvision import models
    from torchvision.models import quantization

    def count(module) -> int:
        n = 0
        for builder in models.list_models(module=module):
            for weights in models.get_model_weights(builder):
                m = weights.meta.get("_metrics", {}).get("ImageNet-1K", {})
                if all(isinstance(m.get(k), float) and math.isfinite(m[k]) for k in ("acc@1", "acc@5")):
                    n += 1
        return n

    table = torchvision_published.generate_torchvision_table()
    assert table["counts"] == {"classification": count(models), "quantized": count(quantization)}
    assert len(table["entries"]) == count(models) + count(quantization)
    assert "vgg16.IMAGENET1K_FEATURES" not in {e["id"] for e in table["entries"]}  # NaN accuracy


def test_resnet50_plain_is_v1_and_v2_is_suffixed():
    tv = pytest.importorskip("torchvision")
    v1 = tv.models.ResNet50_Weights.IMAGENET1K_V1
    assert _metrics(v1) == (76.13, 92.862)
    got = published.lookup("pytorch", "resnet50")
    assert (got.acc1, got.acc5) == (76.13, 92.862)
    assert "ResNet50_Weights.IMAGENET1K_V1" in got.source
    v2 = published.lookup("pytorch", "resnet50.IMAGENET1K_V2")
    assert (v2.acc1, v2.acc5) == _metrics(tv.models.ResNet50_Weights.IMAGENET1K_V2)


@pytest.mark.parametrize("model", PYTORCH_2019_IDS)
def test_pytorch_2019_ids_mean_imagenet1k_v1(model):
    pytest.importorskip("torchvision")
    from torchvision import models

    weights = models.get_model_weights(model).IMAGENET1K_V1
    got = published.lookup("pytorch", model)
    assert got is not None
    assert (got.acc1, got.acc5) == _metrics(weights)
    assert got.source.endswith(f"({type(weights).__name__}.IMAGENET1K_V1)")


def test_quantized_ids():
    pytest.importorskip("torchvision")
    from torchvision.models import quantization

    qmnv2 = published.lookup("pytorch", "quantized_mobilenet_v2")
    assert qmnv2 is not None and "IMAGENET1K_QNNPACK_V1" in qmnv2.source
    fbgemm_v2 = quantization.ResNet50_QuantizedWeights.IMAGENET1K_FBGEMM_V2
    got = published.lookup("pytorch", "quantized_resnet50.IMAGENET1K_FBGEMM_V2")
    assert (got.acc1, got.acc5) == _metrics(fbgemm_v2)


def test_unknown_ids_are_none():
    assert published.lookup("pytorch", "no_such_model") is None
    assert published.lookup("pytorch", "resnet50.NO_SUCH_WEIGHTS") is None
    assert published.lookup("keras", "mobilenet_0.25_128") is None
    assert published.lookup("tensorflow", "resnet50") is None


# --- Keras -----------------------------------------------------------------------


def _shared_keras_rows() -> dict[str, dict[str, str]]:
    if not SHARED_KERAS_CSV.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED_KERAS_CSV} is missing")
        pytest.skip(f"{SHARED_KERAS_CSV} is missing")
    with open(SHARED_KERAS_CSV, encoding="utf-8", newline="") as handle:
        return {row["model"]: row for row in csv.DictReader(handle)}


def _opt(text: str) -> float | None:
    return float(text) if text.strip() else None


@pytest.mark.parametrize("model_id", sorted(KERAS_2019))
def test_keras_2019_ids(model_id):
    row = _shared_keras_rows()[KERAS_2019[model_id]]
    got = published.lookup("keras", model_id)
    assert got is not None
    assert (got.acc1, got.acc5) == (_opt(row["top1"]), _opt(row["top5"]))
    assert got.source.startswith("keras.io applications table")


def test_keras_csv_agrees_with_shared_reference():
    shared = _shared_keras_rows()
    ours = {row["application"]: row for row in published.read_keras_csv()}
    assert set(ours) == set(shared)
    for application, row in shared.items():
        assert (ours[application]["acc1"], ours[application]["acc5"]) == (_opt(row["top1"]), _opt(row["top5"])), (
            application
        )


def test_keras_other_ids_are_lower_cased_constructor_names():
    b0 = published.lookup("keras", "efficientnetb0")
    assert (b0.acc1, b0.acc5) == (77.1, 93.3)
    assert published.lookup("keras", "efficientnetv2s").acc1 == 83.9
    tiny = published.lookup("keras", "convnexttiny")
    assert tiny.acc1 == 81.3 and tiny.acc5 is None
    small = published.lookup("keras", "mobilenetv3small")
    assert small.acc1 == 68.1 and small.acc5 is None and "mobilenet_v3.py" in small.source
    assert published.keras_model_id("MobileNetV2") == "mobilenetV2"
    assert published.keras_model_id("ResNet50V2") == "resnet50v2"


# --- import lightness ------------------------------------------------------------


def test_lookup_does_not_import_frameworks():
    code = (
        "import sys; from imagenet_bench.models import published; "
        "published.lookup('pytorch', 'resnet50'); published.lookup('keras', 'resnet50'); "
        "bad = [m for m in ('torch', 'torchvision', 'tensorflow', 'keras', 'timm') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_a_timm_file_without_a_manifest_gets_its_parameters_from_the_committed_counts():
    # timm's resnet50 is torchvision's architecture: torchvision's weights metadata says 25,557,032
    tv = published.cost("pytorch", "resnet50")
    assert tv["params"] == 25557032
    assert published.cost("pytorch", "timm.resnet50.a1_in1k") == {"params": 25557032, "gflops": None}
    assert published.cost("keras", "keras_hub.resnet_50_imagenet") == {"params": None, "gflops": None}
