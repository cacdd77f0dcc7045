"""imagenet_keras_get_predictions.py --source keras_hub, end to end, from a local preset.

A preset's config and weights come from its hub, so the test saves a small ResNet classifier
with random weights as a preset folder (tests/keras_hub_presets.py: its head is calibrated so
that predictions differ between images, checked first) and runs it through the script, one
image at a time and batched, against the same preset loaded and run by KerasHub's own API
with its own preprocessing (the preset's ImageConverter) on the 500 real val images' first 40.

The opt-in sweep (IMAGENET_BENCH_SWEEP=1) does the same, on 8 images, for a small classifier of
every KerasHub family with ImageNet presets (tests/keras_hub_presets.py's SMALL); a family with
none fails it, so a later KerasHub that adds one fails until it is configured.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import NO_NETWORK as OFFLINE
from conftest import VAL500, run_script, shared, sweep_enabled
from helpers import keras_outputs as _load
from keras_hub_presets import save_preset

keras_hub = pytest.importorskip("keras_hub")

SCRIPT = "imagenet_keras_get_predictions.py"
MODEL = "keras_hub.resnet_18_imagenet"
N = 40
NO_NETWORK = {**OFFLINE, "KAGGLEHUB_CACHE": "/nonexistent"}  # downloads fail fast, nothing cached


def _files(folder, model=MODEL):
    """(top-5 classes, their probabilities, manifest), read as the Keras script's tests read them."""
    return _load(folder, model)


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """(preset folder, the val images in the script's row order, KerasHub's own top-5 and probabilities)."""
    from imagenet_bench.datasets import images, layout

    dataset = layout.select(layout.scan(shared(VAL500), None), N, None)
    decoded = [np.asarray(images.load_rgb(path)) for path in dataset.paths]
    folder = save_preset(tmp_path_factory.mktemp("hub") / "resnet_tiny", image_size=48, calibration=decoded[::3])
    # KerasHub's own API: the preset's classifier with its own preprocessor (the ImageConverter), one image
    # at a time as KerasHub's examples run it, softmax outputs.
    classifier = keras_hub.models.ImageClassifier.from_preset(str(folder), activation="softmax")
    probs = np.stack([classifier.predict(image[None], verbose=0)[0] for image in decoded])
    top5 = np.argsort(-probs, axis=1, kind="stable")[:, :5]
    assert len(set(top5[:, 0])) >= 5, "random weights: predictions must vary for the test to mean anything"
    return folder, dataset, top5, np.take_along_axis(probs, top5, axis=1)


def _run(preset_folder, out, *args):
    return run_script(
        SCRIPT,
        shared(VAL500),
        "--source",
        "keras_hub",
        "-m",
        MODEL,
        "--limit",
        str(N),
        "--weights-file",
        f"{MODEL}={preset_folder}",
        "-o",
        out,
        *args,
        env=NO_NETWORK,
    )


@pytest.mark.slow
def test_one_at_a_time_and_batched_equal_keras_hubs_own_run(preset, tmp_path):
    folder, dataset, top5, top5_probs = preset
    for batch in ("1", "8"):
        out = tmp_path / f"b{batch}"
        result = _run(folder, out, "-b", batch)
        assert result.returncode == 0, result.stderr[-3000:]
        preds, probs, manifest = _files(out)
        assert preds.shape == (len(dataset.paths), 5)
        assert manifest["batch_size"] == int(batch)
        np.testing.assert_array_equal(preds[:, 0], top5[:, 0])
        np.testing.assert_allclose(probs, top5_probs, rtol=0, atol=1e-6)
        if batch == "1":  # the same pixels through the same graph, one image at a time: the same top-5
            np.testing.assert_array_equal(preds, top5)


@pytest.mark.slow
def test_manifest_records_the_preset_and_its_converter_and_a_rerun_resumes(preset, tmp_path):
    folder, _, _, _ = preset
    out = tmp_path / "out"
    assert _run(folder, out).returncode == 0
    _, _, manifest = _files(out)
    prep = manifest["preprocessing"]
    assert prep["run_by"].startswith("keras_hub ImageConverter")
    assert prep["converter"]["image_size"] == [48, 48] and prep["converter"]["antialias"] is False
    assert prep["converter"]["crop_to_aspect_ratio"] is True and prep["antialias"] is False
    assert manifest["request"]["source"] == "keras_hub" and manifest["request"]["preset"] == "resnet_18_imagenet"
    assert manifest["weights"]["source"] == "file" and manifest["weights"]["path"] == str(folder.resolve())
    assert manifest["weights"]["keras_hub"] == keras_hub.__version__
    before = (out / f"{MODEL}_keras_imagenet_top5preds.npy").stat().st_mtime_ns
    again = _run(folder, out)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (out / f"{MODEL}_keras_imagenet_top5preds.npy").stat().st_mtime_ns == before


@pytest.mark.slow
def _common_pixels(image: np.ndarray, size: int) -> np.ndarray:
    """The common protocol's crop, written here with PIL: shorter side to round(size / 0.875)
    (bilinear; the longer side truncated, as torchvision's Resize), centre crop ``size``."""
    from PIL import Image

    pil, side = Image.fromarray(image), round(size / 0.875)
    width, height = pil.size
    shape = (side, int(side * height / width)) if width <= height else (int(side * width / height), side)
    pil = pil.resize(shape, Image.Resampling.BILINEAR)
    left, top = round((shape[0] - size) / 2), round((shape[1] - size) / 2)
    return np.asarray(pil.crop((left, top, left + size, top + size)))


@pytest.mark.slow
def test_common_protocol_runs_the_shared_pixels_with_the_converters_scale(preset, tmp_path):
    from imagenet_bench.datasets import images

    folder, dataset, _, _ = preset
    out = tmp_path / "common"
    result = _run(folder, out, "--protocol", "common", "-b", "8")
    assert result.returncode == 0, result.stderr[-3000:]
    preds, probs, manifest = _files(out)
    assert manifest["preprocessing"]["resize_mode"] == "shorter"
    assert manifest["preprocessing"]["resize_size"] == round(48 / 0.875)
    # KerasHub's own classifier on those pixels: its converter resizes 48 x 48 to itself and scales
    classifier = keras_hub.models.ImageClassifier.from_preset(str(folder), activation="softmax")
    crops = np.stack([_common_pixels(np.asarray(images.load_rgb(path)), 48) for path in dataset.paths])
    theirs = classifier.predict(crops, verbose=0)
    top5 = np.argsort(-theirs, axis=1, kind="stable")[:, :5]
    assert len(set(top5[:, 0])) >= 5  # the calibrated head tells these images apart
    np.testing.assert_array_equal(preds[:, 0], top5[:, 0])
    np.testing.assert_allclose(probs, np.take_along_axis(theirs, top5, axis=1), rtol=0, atol=1e-5)


def test_list_models_keras_hub_offline_with_the_left_out_ones():
    from imagenet_bench.models import keras_hub_registry

    result = run_script(SCRIPT, "--list-models", "--source", "keras_hub", env=NO_NETWORK)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()[1:]
    listed = [line for line in lines if "left out" not in line]
    left_out = [line for line in lines if "left out" in line]
    assert (
        len(listed)
        == len(keras_hub_registry.entries())
        == len(dict(keras_hub.models.ImageClassifier.presets)) - len(left_out)
    )
    assert any(line.startswith("keras_hub.resnet_50_imagenet ") and " 224 " in line for line in listed)
    assert any(line.startswith("keras_hub.efficientnet_el_ra_imagenet ") and "mislabelled" in line for line in left_out)
    both = run_script(SCRIPT, "--list-models", "--source", "all", env=NO_NETWORK).stdout.splitlines()
    assert len([line for line in both[1:] if "left out" not in line]) == 80 + len(listed)


@pytest.mark.slow
def test_a_missing_preset_folder_and_a_failed_download_say_what_to_do(tmp_path):
    (tmp_path / "preset.h5").write_bytes(b"not a preset folder")
    for given, says in ((tmp_path / "nowhere", "does not exist"), (tmp_path / "preset.h5", "not a folder")):
        result = _run(given, tmp_path / "out")
        line = result.stderr.strip().splitlines()[-1]
        assert result.returncode == 2 and line.startswith("error:") and str(given) in line and says in line, line
        assert not list((tmp_path / "out").glob(f"{MODEL}_*"))
    result = run_script(
        SCRIPT,
        shared(VAL500),
        "--source",
        "keras_hub",
        "-m",
        MODEL,
        "--limit",
        "2",
        "-o",
        tmp_path / "out2",
        env=NO_NETWORK,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert "kaggle://keras/resnetv1/keras/resnet_18_imagenet" in line and f"--weights-file {MODEL}=DIR" in line


@pytest.mark.slow
def test_a_preset_that_cannot_be_downloaded_fails_alone_among_several(preset, tmp_path):
    """An overnight run over many presets: one download that fails costs that model only (the
    others run and are written); exit status 2 (it needs the user: place the folder)."""
    folder, _, _, _ = preset
    other = "keras_hub.resnet_50_imagenet"
    out = tmp_path / "out"
    result = run_script(
        SCRIPT,
        shared(VAL500),
        "--source",
        "keras_hub",
        "-m",
        MODEL,
        other,
        "--limit",
        "4",
        "--weights-file",
        f"{MODEL}={folder}",
        "-o",
        out,
        env=NO_NETWORK,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert (out / f"{MODEL}_keras_imagenet_top5preds.npy").exists()
    assert not list(out.glob(f"{other}_*"))
    failed = [line for line in result.stderr.splitlines() if line.startswith(f"error: {other} failed:")]
    assert len(failed) == 1 and "kaggle://keras/resnetv1/keras/resnet_50_imagenet" in failed[0], result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(f"1 done, 0 skipped (already complete), 1 failed: {other}")


@pytest.mark.slow
def test_torch_is_never_imported_with_keras_hub_loaded(preset, tmp_path):
    folder, _, _, _ = preset
    env = {"PYTHONPROFILEIMPORTTIME": "1"}
    result = run_script(
        SCRIPT,
        shared(VAL500),
        "--source",
        "keras_hub",
        "-m",
        MODEL,
        "--limit",
        "4",
        "--weights-file",
        f"{MODEL}={folder}",
        "-o",
        tmp_path / "out2",
        env={**NO_NETWORK, **env},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "keras_hub" in imported and "tensorflow" in imported
    assert not {"torch", "torchvision", "timm"} & imported


@pytest.mark.slow
def test_a_classifier_that_ignores_activation_still_gives_probabilities(tmp_path):
    """MobileNetImageClassifier takes no ``activation``: from_preset(activation="softmax") gives logits.
    The entry's model gives probabilities all the same (the sweep's mobilenet case, in every run)."""
    from imagenet_bench.models import keras_hub_registry

    folder = save_preset(tmp_path / "mobilenet", "mobilenet")
    x = np.random.default_rng(0).uniform(-2, 2, (4, 48, 48, 3)).astype("float32")
    plain = keras_hub.models.ImageClassifier.from_preset(str(folder), preprocessor=None, activation="softmax")
    logits = plain.predict(x, verbose=0).astype(np.float64)
    assert (logits < 0).any()  # KerasHub's own: logits, whatever the activation asked for
    entry = keras_hub_registry.by_id()["keras_hub.mobilenet_v3_small_050_imagenet"].with_weights(folder)
    model, _ = entry.build(str(folder))
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(
        model.predict(x, verbose=0), expected / expected.sum(axis=1, keepdims=True), rtol=0, atol=1e-6
    )


def _families() -> list[str]:
    """Every family with ImageNet presets in the installed KerasHub (keras_hub_registry's entries)."""
    from imagenet_bench.models import keras_hub_registry

    return sorted({entry.family for entry in keras_hub_registry.entries()})


def _sweep_cases() -> list[str]:
    """Each small configuration, and each family that has none (a new family in a later KerasHub):
    the sweep fails on those until one is written."""
    from keras_hub_presets import SMALL

    covered = {small.family for small in SMALL.values()}
    return sorted(SMALL) + [family for family in _families() if family not in covered]


def test_every_family_with_imagenet_presets_has_a_small_configuration():
    """Cheap, in every run: the sweep below covers every family of the installed KerasHub, and each
    configuration stands for a preset it registers (a later KerasHub that adds or renames one fails here)."""
    from imagenet_bench.models import keras_hub_registry

    from keras_hub_presets import SMALL

    names = {entry.preset: entry.family for entry in keras_hub_registry.entries()}
    covered, families = {small.family for small in SMALL.values()}, set(_families())
    assert not families - covered, f"no small configuration for {sorted(families - covered)}"
    assert not covered - families, f"configurations of families KerasHub no longer lists: {covered - families}"
    for small in SMALL.values():
        assert small.preset is None or names.get(small.preset) == small.family, small


@pytest.mark.slow
@pytest.mark.sweep
@pytest.mark.skipif(not sweep_enabled(), reason="opt-in sweep: IMAGENET_BENCH_SWEEP=1")
@pytest.mark.parametrize("name", _sweep_cases())
def test_every_family_runs_through_the_script(name, tmp_path):
    """Per KerasHub family with ImageNet presets (and per kind of block within ResNet and
    EfficientNet): a small random-weight classifier built through the family's own classes, saved
    as a local preset, run by the script as the preset it stands for (the family's first unless
    named), with KerasHub's own top-1 on 8 images and the softmax of its logits (nothing downloaded).

    KerasHub's run here asks for no activation (the saved presets have none: logits) and the test
    takes the softmax itself: MobileNetImageClassifier ignores ``activation="softmax"``, so the
    script must not rely on it."""
    from imagenet_bench.datasets import images, layout
    from imagenet_bench.models import keras_hub_registry

    from keras_hub_presets import SMALL

    if name not in SMALL:
        pytest.fail(
            f"KerasHub family {name} has ImageNet presets but no small configuration: "
            "write one in tests/keras_hub_presets.py (SMALL)"
        )
    small = SMALL[name]
    family = [entry for entry in keras_hub_registry.entries() if entry.family == small.family]
    assert family, f"{name}: KerasHub no longer lists ImageNet presets of the family {small.family}"
    model = next(e.id for e in family if small.preset in (None, e.preset))
    dataset = layout.select(layout.scan(shared(VAL500), None), 8, None)
    decoded = [np.asarray(images.load_rgb(path)) for path in dataset.paths]
    folder = save_preset(tmp_path / name, name, calibration=decoded)
    classifier = keras_hub.models.ImageClassifier.from_preset(str(folder))
    assert type(classifier).__name__ == small.classifier
    logits = np.stack([classifier.predict(image[None], verbose=0)[0] for image in decoded]).astype(np.float64)
    assert (logits < 0).any(), "KerasHub's own run gives logits here"
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    expected = probs.argmax(axis=1)
    assert len(set(expected.tolist())) >= 3, f"random weights: predictions must vary ({expected.tolist()})"
    out = tmp_path / "out"
    result = run_script(
        SCRIPT,
        shared(VAL500),
        "--source",
        "keras_hub",
        "-m",
        model,
        "--limit",
        "8",
        "--weights-file",
        f"{model}={folder}",
        "-o",
        out,
        env=NO_NETWORK,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    preds, top5_probs, _ = _files(out, model)
    assert preds[:, 0].tolist() == expected.tolist()
    np.testing.assert_allclose(top5_probs[:, 0], probs.max(axis=1), rtol=0, atol=1e-5)


@pytest.mark.slow
def test_a_keras_hub_model_is_built_in_float32_whatever_the_global_policy(tmp_path):
    """The entry asks from_preset for float32, rather than taking Keras's global dtype policy."""
    import keras

    from imagenet_bench.models import keras_hub_registry
    from imagenet_bench.predict import keras_predict

    folder = save_preset(tmp_path / "mobilenet", "mobilenet")
    entry = keras_hub_registry.by_id()["keras_hub.mobilenet_v3_small_050_imagenet"].with_weights(folder)
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("bfloat16")
    try:
        as_default = keras_hub.models.ImageClassifier.from_preset(str(folder), preprocessor=None)
        assert "bfloat16" in keras_predict.dtype_of(as_default)  # what no dtype gives
        model, _ = entry.build(str(folder))
    finally:
        keras.config.set_dtype_policy(before)
    assert keras_predict.dtype_of(model) == "float32"
