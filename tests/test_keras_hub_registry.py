"""KerasHub as a source: the presets enumerated against the installed package's own registry,
the left-out ones and their reasons, the preset folder's converter, and the table of sources.
Nothing is downloaded: a preset's files come from its hub, so the tests save small classifiers
with random weights as local presets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imagenet_bench.base.errors import UsageError
from imagenet_bench.datasets.preprocessing import common
from imagenet_bench.models import keras_hub_registry, sources

from conftest import ROOT

keras_hub = pytest.importorskip("keras_hub")


def _registry() -> dict:
    """Independent enumeration: the imported package's ImageClassifier preset registry."""
    return dict(keras_hub.models.ImageClassifier.presets)


def test_presets_are_the_installed_registrys_image_classifier_presets():
    registry = _registry()
    presets = keras_hub_registry.classifier_presets()
    assert [p.name for p in presets] != []
    assert {p.name for p in presets} == set(registry)
    assert len(presets) == len(registry)
    for info in presets:
        assert info.handle == registry[info.name]["kaggle_handle"]
        assert info.params == registry[info.name]["metadata"].get("params")
    ids = {e.id for e in keras_hub_registry.entries()} | {i for i, _ in keras_hub_registry.excluded()}
    assert ids == {"keras_hub." + name for name in registry}


def test_mislabelled_presets_are_reported_not_run():
    registry = _registry()
    # A handle ".../<preset>/<version>" that names another preset: the weights of that one.
    expected = {name for name, value in registry.items() if value["kaggle_handle"].split("/")[-2] != name}
    reported = {i.removeprefix("keras_hub.") for i, reason in keras_hub_registry.excluded() if "mislabelled" in reason}
    assert reported == expected
    if keras_hub.__version__.startswith("0.32."):
        assert reported == {
            "efficientnet_el_ra_imagenet",
            "efficientnet_em_ra2_imagenet",
            "efficientnet_es_ra_imagenet",
        }


@pytest.mark.skipif(not keras_hub.__version__.startswith("0.32."), reason="counts of keras-hub 0.32")
def test_keras_hub_0_32_counts_and_reasons():
    excluded = dict(keras_hub_registry.excluded())
    assert len(keras_hub_registry.entries()) == 64
    assert len(excluded) == 23
    assert all(reason for reason in excluded.values())
    assert sum(i.startswith("keras_hub.mit_") for i in excluded) == 12  # segmentation encoders
    assert sum("21k" in i for i in excluded) == 6
    assert "keras_hub.efficientnet_b5_sw_imagenet" in excluded  # ImageNet-12k head
    runnable = {e.id for e in keras_hub_registry.entries()}
    # fine-tuned on ImageNet-1k after a larger set: runs
    assert {
        "keras_hub.efficientnet_b5_sw_ft_imagenet",
        "keras_hub.hgnetv2_b5_ssld_stage1_in22k_in1k",
        "keras_hub.resnet_50_imagenet",
        "keras_hub.vit_base_patch16_224_imagenet",
    } <= runnable


def test_registry_imports_neither_keras_tensorflow_nor_torch():
    code = (
        "import sys; from imagenet_bench.models import keras_hub_registry as r, sources; r.entries(); r.excluded(); "
        "sources.entries(sources.chosen('keras', 'all')); "
        "bad = [m for m in ('keras', 'keras_hub', 'tensorflow', 'torch') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _write_preset(folder, num_classes=1000, image_size=(40, 40), **converter):
    """A preset folder's JSON as save_to_preset writes it (only what the registry reads)."""
    folder.mkdir()
    config = {
        "image_size": list(image_size),
        "scale": 1 / 255.0,
        "offset": None,
        "interpolation": "bilinear",
        "antialias": False,
        "crop_to_aspect_ratio": True,
        "pad_to_aspect_ratio": False,
        **converter,
    }
    (folder / "task.json").write_text(
        json.dumps({"class_name": "ResNetImageClassifier", "config": {"num_classes": num_classes}})
    )
    (folder / "preprocessor.json").write_text(
        json.dumps(
            {
                "config": {
                    "image_converter": {
                        "class_name": "ResNetImageConverter",
                        "config": {"name": "x", "dtype": "float32", **config},
                    }
                }
            }
        )
    )
    return folder


def test_protocols_over_a_preset_folder(tmp_path):
    entry = keras_hub_registry.by_id()["keras_hub.resnet_18_imagenet"]
    with pytest.raises(UsageError, match="preset folder"):
        entry.reference_preprocess()  # not read yet
    ready = entry.with_files(_write_preset(tmp_path / "p", scale=[0.5, 0.25, 0.125], offset=[-1, -2, -3]))
    reference = sources.preprocess_for(ready, "reference")
    assert reference.crop_size == 40 and dict(reference.converter)["interpolation"] == "bilinear"
    assert reference.to_dict()["converter"]["crop_to_aspect_ratio"] is True
    assert reference.geometry != common(40).geometry
    assert sources.preprocess_for(ready, "common").geometry == common(40).geometry
    with pytest.raises(UsageError, match="seed2019"):
        sources.preprocess_for(ready, "seed2019")


def test_a_preset_without_a_1000_class_head_is_refused(tmp_path):
    entry = keras_hub_registry.by_id()["keras_hub.resnet_18_imagenet"]
    with pytest.raises(UsageError, match="21843 classes"):
        entry.with_files(_write_preset(tmp_path / "p", num_classes=21843))
    with pytest.raises(UsageError, match="not a folder"):
        entry.with_files(tmp_path / "missing")


def test_the_table_drives_the_choices_and_the_preprocessing_decision():
    assert sources.names("keras") == ("keras", "keras_hub", "all")
    assert sources.names("pytorch") == ("torchvision", "timm", "all")
    assert [s.name for s in sources.chosen("keras", "all")] == ["keras", "keras_hub"]
    with pytest.raises(UsageError, match="--source"):
        sources.chosen("keras", "timm")
    keras_entries = sources.entries(sources.chosen("keras", "keras"))
    mobilenet = keras_entries["mobilenetV2"]
    # common: the shared rule at the native size with the model's own normalisation
    assert sources.preprocess_for(mobilenet, "common") == common(224, "keras:tf", None, None)
    assert sources.preprocess_for(mobilenet, "seed2019").resize_mode == "squash"
    with pytest.raises(UsageError, match="13 Keras models of 2019"):
        sources.preprocess_for(keras_entries["resnet101"], "seed2019")


def test_a_fourth_source_is_one_module_and_one_table_line(monkeypatch):
    """A dummy source: a registry module (entries, excluded) and one line in SOURCES; the
    choices, the merged entries, the left-out list and the protocols follow."""
    import types
    from dataclasses import dataclass

    from imagenet_bench.datasets.preprocessing import Preprocess

    @dataclass(frozen=True)
    class DummyEntry:
        id: str
        source = "dummy"
        published = None

        def num_params(self):
            return 10

        def reference_preprocess(self):
            return Preprocess(64, 72, "shorter", "bicubic", "keras:tf", None, None)

        def seed2019_preprocess(self):
            return None

    module = types.ModuleType("imagenet_bench.models.dummy_registry")
    module.entries = lambda: (DummyEntry("dummy.a"), DummyEntry("dummy.b"))
    module.excluded = lambda: (("dummy.c", "no weights"),)
    monkeypatch.setitem(sys.modules, "imagenet_bench.models.dummy_registry", module)
    monkeypatch.setattr(
        sources, "SOURCES", sources.SOURCES + (sources.Source("dummy", "keras", ".dummy_registry", ()),)
    )
    assert sources.names("keras") == ("keras", "keras_hub", "dummy", "all")
    chosen = sources.chosen("keras", "dummy")
    assert list(sources.entries(chosen)) == ["dummy.a", "dummy.b"]
    assert sources.excluded(chosen) == [("dummy.c", "no weights")]
    entry = sources.entries(chosen)["dummy.a"]
    assert sources.preprocess_for(entry, "common") == common(64, "keras:tf", None, None)
    with pytest.raises(UsageError, match="seed2019"):
        sources.preprocess_for(entry, "seed2019")
    assert "dummy.a" in sources.entries(sources.chosen("keras", "all"))
