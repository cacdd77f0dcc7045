"""The Keras registry: entries enumerated from the installed Keras, the committed variant
table, ids, and each entry's preprocessing, checked without downloading anything."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import numpy as np
import pytest

from imagenet_bench.base.errors import UsageError
from imagenet_bench.datasets import images
from imagenet_bench.datasets.preprocessing import Preprocess
from imagenet_bench.models import keras_registry, published

from conftest import ROOT, VAL500, shared

keras = pytest.importorskip("keras")

SEED_2019 = [
    "densenet121",
    "densenet169",
    "densenet201",
    "mobilenet",
    "mobilenetV2",
    "nasnetmobile",
    "resnet50",
    "vgg16",
    "vgg19",
    "xception",
    "inceptionresnetv2",
    "inceptionv3",
    "nasnetlarge",
]


def _keras_constructors() -> set[str]:
    """Independent enumeration: what `import keras` exposes as application constructors."""
    return {
        name for name, value in vars(keras.applications).items() if inspect.isfunction(value) and name[:1].isupper()
    }


def test_every_keras_constructor_is_an_entry():
    names = {name for name, _ in keras_registry.constructors()}
    assert names == _keras_constructors()
    assert keras_registry.excluded() == ()
    applications = {entry.application for entry in keras_registry.entries()}
    assert applications == names
    if keras.__version__.startswith("3.15."):
        assert len(names) == 40
        assert len(keras_registry.entries()) == 40 - 4 + 44


def test_registry_module_imports_neither_keras_nor_tensorflow():
    code = (
        "import sys; from imagenet_bench.models import keras_registry as r; r.entries(); r.by_id()['mobilenetV2']"
        ".preprocess('reference'); bad = [m for m in ('keras', 'tensorflow', 'torch') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_variant_table_has_the_44_published_weight_sets():
    rows = keras_registry.read_variants()
    by_app: dict[str, set] = {}
    for row in rows:
        by_app.setdefault(row["application"], set()).add((row["alpha"], row["input_size"], row["minimalistic"]))
    assert len(rows) == 44
    assert by_app["MobileNet"] == {(a, r, False) for a in (0.25, 0.5, 0.75, 1.0) for r in (128, 160, 192, 224)}
    assert by_app["MobileNetV2"] == (
        {(a, r, False) for a in (0.35, 0.5, 0.75, 1.0) for r in (96, 128, 160, 192, 224)}
        | {(1.3, 224, False), (1.4, 224, False)}
    )
    for app in ("MobileNetV3Large", "MobileNetV3Small"):
        assert by_app[app] == {(0.75, 224, False), (1.0, 224, False), (1.0, 224, True)}
    assert "Sources:" in keras_registry.VARIANTS_CSV.read_text()


def test_ids_follow_the_documented_rule():
    entries = keras_registry.entries()
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids))
    by_id = keras_registry.by_id()
    for entry in entries:
        plain = published.keras_model_id(entry.application)
        if entry.application.startswith("MobileNetV3"):
            expected = (
                plain
                + {(1.0, False): "", (0.75, False): "_0.75", (1.0, True): "_minimalistic"}[
                    (entry.alpha, entry.minimalistic)
                ]
            )
        elif entry.alpha is not None and (entry.alpha, entry.input_size) != (1.0, 224):
            expected = f"{plain}_{entry.alpha}_{entry.input_size}"
        else:
            expected = plain
        assert entry.id == expected
    for model_id in SEED_2019:
        assert model_id in by_id
    assert tuple(SEED_2019) == keras_registry.SEED_2019_IDS
    # The plain id is alpha 1.0 at 224, with no second name.
    assert by_id["mobilenet"].kwargs == {"alpha": 1.0} and by_id["mobilenet"].input_size == 224
    assert by_id["mobilenetV2"].kwargs == {"alpha": 1.0} and by_id["mobilenetV2"].input_size == 224
    for absent in ("mobilenet_1.0_224", "mobilenetV2_1.0_224", "mobilenetv2", "mobilenetv3large_1.0"):
        assert absent not in by_id
    assert by_id["mobilenet_0.25_128"].kwargs == {"alpha": 0.25} and by_id["mobilenet_0.25_128"].input_size == 128
    assert by_id["mobilenetV2_1.4_224"].kwargs == {"alpha": 1.4}
    assert by_id["mobilenetv3large_minimalistic"].kwargs == {"alpha": 1.0, "minimalistic": True}
    assert by_id["mobilenetv3small_0.75"].application == "MobileNetV3Small"
    for model_id in ("resnet101", "efficientnetb0", "convnexttiny", "mobilenetv3large", "efficientnetv2s"):
        assert model_id in by_id
    assert all(re.fullmatch(r"[A-Za-z0-9_.]+", i) for i in ids)


def test_native_input_sizes_are_the_ones_keras_builds_imagenet_tops_at(monkeypatch):
    """Asking for ImageNet weights at any other size makes Keras name the size it wants,
    before it builds or downloads anything."""
    from keras.src.utils import file_utils

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(file_utils, "get_file", no_download)
    for entry in keras_registry.entries():
        if entry.application.startswith("MobileNetV3"):
            assert entry.input_size == 224  # its weights exist at 224 only (WEIGHTS_HASHES names)
            continue
        if entry.alpha is not None and entry.input_size != 224:
            continue  # variants: the table's resolution (checked by the sweep's builds)
        s = entry.input_size + 1
        with pytest.raises(ValueError, match=re.escape(f"({entry.input_size}, {entry.input_size}, 3)")):
            getattr(keras.applications, entry.application)(weights="imagenet", input_shape=(s, s, 3), **entry.kwargs)


def test_reference_preprocessing_per_family():
    by_id = keras_registry.by_id()

    def ref(model_id):
        return by_id[model_id].preprocess("reference")

    # Classic models: shorter side to size * 8 / 7, centre crop, bicubic.
    assert ref("resnet50") == Preprocess(224, 256, "shorter", "bicubic", "keras:caffe", None, None)
    assert ref("vgg16").normalization == "keras:caffe"
    assert ref("xception") == Preprocess(299, 341, "shorter", "bicubic", "keras:tf", None, None)
    assert ref("inceptionv3").resize_size == 341
    assert ref("nasnetlarge") == Preprocess(331, 378, "shorter", "bicubic", "keras:tf", None, None)
    assert ref("densenet121").normalization == "keras:torch"
    assert ref("mobilenet_0.25_128") == Preprocess(128, 146, "shorter", "bicubic", "keras:tf", None, None)
    assert ref("mobilenetV2_0.35_96").crop_size == 96
    # ResNet v2: published at 299, run at 224, and said so.
    for model_id in ("resnet50v2", "resnet101v2", "resnet152v2"):
        assert ref(model_id) == Preprocess(224, 256, "shorter", "bicubic", "keras:tf", None, None)
        assert "299" in by_id[model_id].reference_source() and "224" in by_id[model_id].reference_source()
    # EfficientNet and EfficientNetV2: size/(size+32) centre crop, bicubic; normalised in the model.
    assert ref("efficientnetb0") == Preprocess(224, 224, "crop_fraction", "bicubic", "in_model", None, None)
    assert ref("efficientnetb7").crop_size == 600
    assert ref("efficientnetv2s") == Preprocess(384, 384, "crop_fraction", "bicubic", "in_model", None, None)
    # ConvNeXt: 256 x 256 bicubic, then a 0.875 centre crop.
    assert ref("convnexttiny") == Preprocess(224, 256, "squash", "bicubic", "in_model", None, None)
    assert ref("mobilenetv3small").normalization == "in_model"
    for entry in keras_registry.entries():
        assert entry.reference_source()
        assert entry.preprocess_input == f"keras.applications.{entry.family}.preprocess_input"


def test_common_and_seed2019_protocols():
    by_id = keras_registry.by_id()
    assert by_id["mobilenetV2"].preprocess("common") == Preprocess(
        224, 256, "shorter", "bilinear", "keras:tf", None, None
    )
    assert by_id["mobilenet_0.25_128"].preprocess("common").resize_size == 146
    assert by_id["xception"].preprocess("common").resize_size == 342
    for model_id in SEED_2019:
        p = by_id[model_id].preprocess("seed2019")
        assert (p.resize_mode, p.interpolation, p.resize_size) == ("squash", "nearest", by_id[model_id].input_size)
    assert by_id["nasnetlarge"].preprocess("seed2019").crop_size == 331
    with pytest.raises(UsageError, match="13 Keras models of 2019"):
        by_id["efficientnetb0"].preprocess("seed2019")
    with pytest.raises(UsageError):
        by_id["mobilenet_0.25_128"].preprocess("seed2019")


def _formula(mode: str, x: np.ndarray) -> np.ndarray:
    if mode == "keras:caffe":
        return x[..., ::-1] - np.array([103.939, 116.779, 123.68], dtype=np.float32)
    if mode == "keras:tf":
        return x / 127.5 - 1.0
    if mode == "keras:torch":
        return (x / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    assert mode == "in_model"
    return x


def test_normalization_names_what_each_family_preprocess_input_does():
    import importlib

    from imagenet_bench.predict import keras_predict

    x = np.random.RandomState(0).randint(0, 256, size=(2, 8, 8, 3)).astype(np.uint8)
    for family, (mode, _) in keras_registry.FAMILIES.items():
        function = importlib.import_module(f"keras.applications.{family}").preprocess_input
        out = keras_predict.model_input(x, function)
        np.testing.assert_allclose(out, _formula(mode, x.astype(np.float32)), rtol=1e-5, atol=1e-4, err_msg=family)


def test_preprocess_input_is_applied_once_and_pixels_are_left_alone():
    from imagenet_bench.predict import keras_predict

    x = np.full((1, 4, 4, 3), 255, dtype=np.uint8)
    function = keras.applications.mobilenet_v2.preprocess_input
    first = keras_predict.model_input(x, function)
    second = keras_predict.model_input(x, function)
    assert np.all(x == 255)  # the uint8 pixels are not modified in place
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, 1.0)  # 255 / 127.5 - 1 once (twice would give -0.99)


def test_published_figures_come_from_the_committed_table():
    by_id = keras_registry.by_id()
    assert by_id["resnet50"].published["acc1"] == 74.9
    assert by_id["mobilenetV2"].published["acc1"] == 71.3
    assert by_id["mobilenetv3small"].published["acc1"] == 68.1
    assert by_id["mobilenet_0.25_128"].published is None
    assert by_id["mobilenet_0.25_128"].params == 475544
    assert by_id["resnet50"].params_m == 25.6


def test_every_mobilenetv3_entry_has_the_top1_of_the_installed_keras_docstring():
    """The checkpoint table in keras/src/applications/mobilenet_v3.py, parsed here."""
    from keras.src.applications import mobilenet_v3

    table = {}
    for line in inspect.getsource(mobilenet_v3).splitlines():
        match = re.match(
            r"\|\s*mobilenet_v3_(large|small)_(minimalistic_)?([\d.]+)_224\s*\|.*?\|.*?\|\s*([\d.]+)\s*\|", line
        )
        if match:
            size, minimalistic, alpha, top1 = match.groups()
            model_id = f"mobilenetv3{size}" + (
                "_minimalistic" if minimalistic else "" if alpha == "1.0" else f"_{alpha}"
            )
            table[model_id] = float(top1)
    ours = {e.id: e.published["acc1"] for e in keras_registry.entries() if e.family == "mobilenet_v3"}
    assert len(table) == 6 and ours == table
    assert all(e.published["acc5"] is None for e in keras_registry.entries() if e.family == "mobilenet_v3")


@pytest.mark.slow
def test_seed2019_geometry_gives_load_img_pixels_on_real_images():
    """The 2019 Keras script read images with load_img(path, target_size=(s, s)): squash,
    nearest. The declarative Preprocess must give the very same pixels, greyscale included."""
    val = shared(VAL500)
    paths = sorted(val.glob("*/*.JPEG"))
    assert len(paths) == 500
    greyscale = 0
    for path in paths:
        image = images.load_rgb(path)  # our decoding
        from PIL import Image

        with Image.open(path) as raw:
            greyscale += raw.mode == "L"
        for size in (224, 299, 331):
            ours = Preprocess(size, size, "squash", "nearest", "keras:tf", None, None).pixels(image)
            theirs = np.asarray(keras.utils.load_img(path, target_size=(size, size)))
            assert ours.dtype == theirs.dtype == np.uint8
            np.testing.assert_array_equal(ours, theirs, err_msg=f"{path.name} at {size}")
    assert greyscale == 13
