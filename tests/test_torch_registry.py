"""The torchvision registry: every entry's metadata, checked without downloading,
and a forward pass with random weights (one per family and input size in CI,
every entry in the opt-in sweep)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torchvision
from torchvision import models
from torchvision.models import quantization

from imagenet_bench.base.errors import UsageError
from imagenet_bench.datasets.layout import Dataset
from imagenet_bench.models import torch_build, torch_registry
from imagenet_bench.predict import torch_predict

from conftest import sweep_enabled, tiny_dataset

SEED_2019 = [
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
]


def _library_weight_sets(module):
    """Independent enumeration: (builder, weights) with finite ImageNet-1K metrics."""
    out = []
    for builder in models.list_models(module=module):
        for w in models.get_model_weights(builder):
            m = w.meta.get("_metrics", {}).get("ImageNet-1K", {})
            if all(isinstance(m.get(k), float) and math.isfinite(m[k]) for k in ("acc@1", "acc@5")):
                out.append((builder, w))
    return out


def test_counts_match_the_installed_torchvision():
    entries = torch_registry.entries()
    plain = [e for e in entries if not e.quantized]
    quant = [e for e in entries if e.quantized]
    assert len(plain) == len(_library_weight_sets(models))
    assert len(quant) == len(_library_weight_sets(quantization))
    if torchvision.__version__.startswith("0.29."):
        assert (len(plain), len(quant)) == (114, 14)


def test_ids_follow_the_documented_rule():
    ids = [e.id for e in torch_registry.entries()]
    assert len(ids) == len(set(ids))
    for entry in torch_registry.entries():
        first = next(iter(models.get_model_weights(entry.builder)))
        if entry.weights is first:
            assert entry.id == entry.builder
        else:
            assert entry.id == f"{entry.builder}.{entry.weights.name}"
        assert "/" not in entry.id
    by_id = torch_registry.by_id()
    assert by_id["resnet50.IMAGENET1K_V2"].weights is models.ResNet50_Weights.IMAGENET1K_V2
    assert by_id["quantized_resnet50.IMAGENET1K_FBGEMM_V2"].quantized
    assert by_id["quantized_mobilenet_v2"].weights.name == "IMAGENET1K_QNNPACK_V1"
    assert by_id["quantized_mobilenet_v2"].backend == "qnnpack"


def test_the_2019_ids_mean_imagenet1k_v1():
    by_id = torch_registry.by_id()
    for model_id in SEED_2019:
        assert by_id[model_id].weights.name == "IMAGENET1K_V1", model_id
    assert tuple(SEED_2019) == torch_registry.SEED_2019_IDS


def test_feature_extractor_is_left_out_with_a_reason():
    excluded = dict(torch_registry.excluded())
    assert "vgg16.IMAGENET1K_FEATURES" in excluded
    assert "classifier" in excluded["vgg16.IMAGENET1K_FEATURES"]
    assert "vgg16.IMAGENET1K_FEATURES" not in torch_registry.by_id()


def test_reference_preprocessing_and_published_numbers_come_from_the_weights():
    for entry in torch_registry.entries():
        t = entry.weights.transforms()
        p = entry.preprocess("reference")
        assert (p.crop_size, p.resize_size) == (t.crop_size[0], t.resize_size[0]), entry.id
        assert p.interpolation == t.interpolation.value
        assert p.mean == tuple(t.mean) and p.std == tuple(t.std)
        metrics = entry.weights.meta["_metrics"]["ImageNet-1K"]
        assert entry.published["acc1"] == metrics["acc@1"] and entry.published["acc5"] == metrics["acc@5"]


def test_seed2019_and_common_protocols():
    by_id = torch_registry.by_id()
    inc = by_id["inception_v3"].preprocess("seed2019")
    assert (inc.resize_size, inc.crop_size, inc.interpolation) == (256, 299, "bilinear")
    assert by_id["resnet18"].preprocess("seed2019").crop_size == 224
    with pytest.raises(UsageError, match="21 models of 2019"):
        by_id["resnet50.IMAGENET1K_V2"].preprocess("seed2019")
    # common: shorter side round(size / 0.875): 256, 342, 378 for 224, 299, 331
    assert by_id["inception_v3"].preprocess("common").resize_size == 342
    assert by_id["resnet50"].preprocess("common").resize_size == 256
    assert by_id["resnet50.IMAGENET1K_V2"].preprocess("common").resize_size == 256  # reference is 232
    assert by_id["resnet50.IMAGENET1K_V2"].preprocess("common").interpolation == "bilinear"


def _family(entry) -> str:
    return ("quantized_" if entry.quantized else "") + re.sub(
        r"(_?\d.*|_[a-z](\d.*)?)$", "", entry.builder.split(".")[0].replace("quantized_", "")
    )


def _one_per_family_and_size():
    """The cheapest entry (by GFLOPs) of each (family, input size)."""
    chosen = {}
    for entry in torch_registry.entries():
        key = (_family(entry), entry.preprocess("reference").crop_size)
        cost = entry.meta.get("_ops", 0)
        if key not in chosen or cost < chosen[key].meta.get("_ops", 0):
            chosen[key] = entry
    return sorted(chosen.values(), key=lambda e: e.id)


def _tiny_dataset(tmp_path, n=2) -> Dataset:
    return tiny_dataset(tmp_path, n)


def _arch_kwargs(entry) -> dict:
    """What torchvision's builder derives from the weights that changes the network's shape."""
    if entry.builder.startswith("vit_"):
        return {"image_size": entry.weights.meta["min_size"][0]}
    if entry.builder in ("inception_v3", "googlenet"):
        return {"aux_logits": False, "init_weights": False}
    return {}


def _forward(entry, tmp_path):
    torch.manual_seed(0)
    if entry.quantized:
        torch.backends.quantized.engine = entry.backend
        model = models.get_model(entry.builder, weights=None, quantize=True)
    else:
        model = models.get_model(entry.builder, weights=None, **_arch_kwargs(entry))
    preprocess = entry.preprocess("reference")
    out = torch_predict.predict(
        model,
        _tiny_dataset(tmp_path),
        preprocess,
        torch_predict.Numerics("cpu"),
        batch_size=2,
        workers=0,
        k=5,
        save_all_probs=True,
    )
    assert out["all_probs"].shape == (2, 1000)
    assert np.allclose(out["all_probs"].sum(axis=1), 1.0, atol=1e-4)
    assert out["preds"].shape == (2, 5) and (np.diff(out["probs"], axis=1) <= 0).all()


FAMILY_ENTRIES = _one_per_family_and_size()


def test_families_cover_every_entry():
    families = {(_family(e), e.preprocess("reference").crop_size) for e in torch_registry.entries()}
    assert families == {(_family(e), e.preprocess("reference").crop_size) for e in FAMILY_ENTRIES}
    assert len(FAMILY_ENTRIES) >= 20


@pytest.mark.slow
@pytest.mark.parametrize("entry", FAMILY_ENTRIES, ids=lambda e: e.id)
def test_forward_pass_random_weights_one_per_family_and_size(entry, tmp_path):
    _forward(entry, tmp_path)


@pytest.mark.sweep
@pytest.mark.skipif(not sweep_enabled(), reason="opt-in sweep: IMAGENET_BENCH_SWEEP=1")
@pytest.mark.parametrize("entry", torch_registry.entries(), ids=lambda e: e.id)
def test_sweep_every_entry_forward_random_weights(entry, tmp_path):
    _forward(entry, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ["googlenet", "vit_b_16.IMAGENET1K_SWAG_E2E_V1"])
def test_weights_file_gives_the_same_network_as_the_weights_api(model_id, tmp_path):
    """A local state dict goes through torchvision's own builder: GoogLeNet keeps the
    transform_input its weights set, ViT SWAG its 384-pixel input."""
    entry = torch_registry.by_id()[model_id]
    torch.manual_seed(0)
    donor = (
        models.get_model(entry.builder, weights=None, **_arch_kwargs(entry))
        if model_id != "googlenet"
        else models.get_model("googlenet", weights=None, aux_logits=True, init_weights=False)
    )
    path = tmp_path / "weights.pth"
    torch.save(donor.state_dict(), path)
    model, record = torch_build.build_torchvision(entry, path)
    assert record["source"] == "file" and len(record["sha256"]) == 64
    if model_id == "googlenet":
        assert model.transform_input is True and model.aux_logits is False
    else:
        assert model.image_size == 384
    given, loaded = donor.state_dict(), model.state_dict()
    # every tensor loaded as given; only GoogLeNet's auxiliary heads (training only) are left out
    left_out = sorted(set(given) - set(loaded))
    assert all(k.startswith(("aux1.", "aux2.")) for k in left_out) and bool(left_out) == (model_id == "googlenet")
    assert set(loaded) <= set(given)
    for key, tensor in loaded.items():
        assert torch.equal(tensor, given[key]), key


def test_weights_file_that_does_not_fit_is_one_clear_error(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(models.resnet18().state_dict(), path)
    with pytest.raises(UsageError, match="does not fit mobilenet_v2") as info:
        torch_build.build_torchvision(torch_registry.by_id()["mobilenet_v2"], path)
    # one line that names the keys (not only torch's heading)
    message = str(info.value)
    assert "\n" not in message
    assert "Missing key(s): features.0.0.weight, " in message and "Unexpected key(s): conv1.weight, " in message
