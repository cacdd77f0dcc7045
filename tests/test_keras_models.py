"""Building Keras registry entries: a forward pass with random weights (the cheapest member
of each family in CI, every entry in the opt-in sweep), local weights files, and the
EfficientNet network that weights="imagenet" builds."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from imagenet_bench.datasets import images
from imagenet_bench.models import keras_registry

from conftest import VAL500, shared, sweep_enabled

keras = pytest.importorskip("keras")
from imagenet_bench.models import keras_applications  # noqa: E402
from imagenet_bench.predict import keras_predict  # noqa: E402  (import TensorFlow)

# The cheapest member of each family (keras.applications module), at its native size.
CI_FAMILY_MEMBERS = {
    "convnext": "convnexttiny",
    "densenet": "densenet121",
    "efficientnet": "efficientnetb0",
    "efficientnet_v2": "efficientnetv2b0",
    "inception_resnet_v2": "inceptionresnetv2",
    "inception_v3": "inceptionv3",
    "mobilenet": "mobilenet_0.25_128",
    "mobilenet_v2": "mobilenetV2_0.35_96",
    "mobilenet_v3": "mobilenetv3small_minimalistic",
    "nasnet": "nasnetmobile",
    "resnet": "resnet50",
    "resnet_v2": "resnet50v2",
    "vgg16": "vgg16",
    "vgg19": "vgg19",
    "xception": "xception",
}


def _two_images(entry: keras_registry.KerasEntry) -> np.ndarray:
    """Two real val images (one greyscale) through the entry's reference preprocessing,
    or random pixels when the shared data is missing outside CI."""
    preprocess = entry.preprocess("reference")
    if VAL500.exists() or os.environ.get("CI") == "true":
        folder = shared(VAL500) / "n01440764"
        paths = sorted(folder.glob("*.JPEG"))[:2]
        return np.stack([images.load_pixels(p, preprocess) for p in paths])
    return np.random.RandomState(0).randint(0, 256, (2, entry.input_size, entry.input_size, 3)).astype(np.uint8)


def _forward(model_id: str) -> tuple[object, np.ndarray]:
    entry = keras_registry.by_id()[model_id]
    model, _record = keras_applications.build(entry, weights=None)
    keras_predict.set_jit_compile(model, False)
    assert model.input_shape == (None, entry.input_size, entry.input_size, 3)
    pixels = _two_images(entry)
    assert pixels.shape == (2, entry.input_size, entry.input_size, 3)
    probs = keras_predict.class_probabilities(
        model, keras_predict.model_input(pixels, keras_applications.preprocess_input_function(entry))
    )
    assert probs.shape == (2, 1000)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-3)
    return model, probs


def test_ci_covers_every_family_with_its_cheapest_member():
    assert set(CI_FAMILY_MEMBERS) == set(keras_registry.FAMILIES)
    by_id = keras_registry.by_id()
    for family, model_id in CI_FAMILY_MEMBERS.items():
        assert by_id[model_id].family == family


@pytest.mark.slow
@pytest.mark.parametrize("model_id", sorted(CI_FAMILY_MEMBERS.values()))
def test_family_member_builds_and_predicts(model_id):
    _forward(model_id)
    keras.backend.clear_session()


@pytest.mark.sweep
@pytest.mark.skipif(not sweep_enabled(), reason="opt-in sweep: set IMAGENET_BENCH_SWEEP=1")
@pytest.mark.parametrize("model_id", [e.id for e in keras_registry.entries()])
def test_sweep_every_entry_builds_and_predicts(model_id):
    entry = keras_registry.by_id()[model_id]
    model, _ = _forward(model_id)
    if entry.params is not None:
        assert model.count_params() == entry.params
    else:
        assert abs(model.count_params() / 1e6 - entry.params_m) <= 0.051 * max(1.0, entry.params_m / 10), (
            model.count_params(),
            entry.params_m,
        )
    del model
    keras.backend.clear_session()


def _save_legacy_h5(model, path) -> None:
    """Write weights in the legacy HDF5 layout of Keras's own downloads (efficientnetb0.h5...)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)


@pytest.mark.slow
def test_efficientnet_weights_file_gives_the_network_of_weights_imagenet(tmp_path, monkeypatch):
    """EfficientNet B0-B7 add a Rescaling layer only with weights="imagenet"; a weights file
    must give that same network. The download is simulated: Keras's get_file returns a
    local file, so weights="imagenet" runs Keras's real code path offline. Keras's own
    downloads are legacy .h5 files; Keras 3 writes .weights.h5: both are checked."""
    from keras.src.utils import file_utils

    entry = keras_registry.by_id()["efficientnetb0"]
    plain = keras.applications.EfficientNetB0(weights=None, input_shape=(224, 224, 3))
    # As in the real weights: ImageNet mean and variance (of x / 255) in the Normalization layer.
    norm = next(layer for layer in plain.layers if isinstance(layer, keras.layers.Normalization))
    norm.set_weights([np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225]) ** 2, np.array(0)])
    new_style, legacy = tmp_path / "b0.weights.h5", tmp_path / "efficientnetb0.h5"
    plain.save_weights(new_style)
    _save_legacy_h5(plain, legacy)
    x = keras_predict.model_input(
        np.random.RandomState(0).randint(0, 256, (2, 224, 224, 3)).astype(np.uint8),
        keras_applications.preprocess_input_function(entry),
    )

    def outputs(model):
        """Probabilities, and the pooled features (random weights give near-uniform probabilities)."""
        features = keras.Model(model.inputs, model.get_layer("avg_pool").output).predict_on_batch(x)
        return keras_predict.class_probabilities(model, x), np.asarray(features)

    calls = []

    def fake_get_file(fname=None, origin=None, *args, **kwargs):
        calls.append((fname, origin))
        return str(new_style)

    monkeypatch.setattr(file_utils, "get_file", fake_get_file)
    reference, record = keras_applications.build(entry)  # weights="imagenet"
    monkeypatch.undo()
    assert calls and calls[0][0] == "efficientnetb0.h5" and calls[0][1].endswith("/efficientnetb0.h5")
    assert record["source"] == "keras download" and record["url"].endswith("efficientnetb0.h5")
    expected, expected_features = outputs(reference)

    model, record = keras_applications.build(entry, weights_file=legacy)
    assert record["source"] == "file" and record["extra_rescaling_added"] and record["sha256"]
    probs, features = outputs(model)
    np.testing.assert_array_equal(probs, expected)
    np.testing.assert_array_equal(features, expected_features)
    # Without the extra layer (weights=None, then load_weights) the network differs.
    _, plain_features = outputs(plain)
    assert np.max(np.abs(plain_features - expected_features)) > 0.05 * np.max(np.abs(expected_features))
    keras.backend.clear_session()


@pytest.mark.slow
def test_a_weights_file_of_another_network_is_refused(tmp_path):
    from imagenet_bench.base.errors import UsageError

    small = keras.applications.MobileNet(weights=None, alpha=0.25, input_shape=(128, 128, 3))
    path = tmp_path / "mobilenet_0.25.weights.h5"
    small.save_weights(path)
    with pytest.raises(UsageError, match=re.escape("does not fit mobilenet_0.5_128")):
        keras_applications.build(keras_registry.by_id()["mobilenet_0.5_128"], weights_file=path)
    keras.backend.clear_session()


@pytest.mark.slow
def test_every_variant_asks_keras_for_the_weights_file_of_its_table_row(monkeypatch):
    """The variant table says which published file each (alpha, resolution) uses; Keras's
    own constructor, built with weights="imagenet", must ask for exactly that file. The
    download is stubbed to fail, so nothing is fetched, and the error names the URL."""
    from keras.src.utils import file_utils

    def offline(fname=None, origin=None, *args, **kwargs):
        raise OSError("offline (test)")

    monkeypatch.setattr(file_utils, "get_file", offline)
    variants = [e for e in keras_registry.entries() if e.weights_file is not None]
    assert len(variants) == 44
    for entry in variants:
        with pytest.raises(RuntimeError, match="cannot download") as failure:
            keras_applications.build(entry)
        url = str(failure.value).split("cannot download ")[1].split(" ")[0]
        assert url.endswith("/" + entry.weights_file), (entry.id, url)
        keras.backend.clear_session()
