"""ObjectNet and ImageNet-9 without a model (issue 23): their class maps are what the generator
makes from the authors' files in ../shared, their folders are recognised by name, a folder that
nearly is one of them is one error line, and ImageNet-9's two rules and BG-Gap reach the outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagenet_bench.base.errors import UsageError
from imagenet_bench.datasets import imagenet_9, layout, objectnet, test_sets
from imagenet_bench.datasets.preprocessing import Preprocess
from imagenet_bench.datasets.test_set import read_map
from tools import test_set_maps

from conftest import SHARED, shared
from helpers import ok_csv, synthetic_labels, write_dataset, write_model

MAPS = SHARED / "reference" / "test-sets"
IN9 = ("00_dog", "01_bird", "02_wheeled vehicle", "03_reptile", "04_carnivore", "05_insect")
IN9 += ("06_musical instrument", "07_primate", "08_fish")


def test_the_committed_maps_are_what_the_generator_makes_from_shared():
    assert objectnet.MAP.read_text() == test_set_maps.objectnet_map(shared(MAPS / "objectnet"))
    assert imagenet_9.MAP.read_text() == test_set_maps.imagenet_9_map(shared(MAPS / "imagenet-9"))


def test_the_maps_hold_the_authors_counts():
    """SOURCE.md's figures: 113 scored ObjectNet classes over 125 ImageNet classes, 200 folders left
    out; ImageNet-9's nine superclasses over 370 classes (630 map to none), as in_to_in9.json says."""
    own = objectnet.own_classes()
    assert (len(own.folders), len(own.union()), len(own.ignored)) == (113, 125, 200)
    nine = imagenet_9.own_classes()
    superclass = json.loads(shared(MAPS / "imagenet-9" / "in_to_in9.json").read_text())
    assert nine.folders == IN9
    assert {c: s for s, accepted in enumerate(nine.accepts) for c in accepted} == {
        int(c): s for c, s in superclass.items() if s >= 0
    }


def _folders(root: Path, names: list[str]) -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
        Image.new("RGB", (8, 8), (10, 20, 30)).save(root / name / "a.png")
    return root


def test_folders_are_recognised_and_the_variation_taken_from_the_folder_name(tmp_path):
    own = objectnet.own_classes()
    found = layout.scan(_folders(tmp_path / "images", [own.folders[0], own.folders[5], sorted(own.ignored)[0]]))
    assert (found.test_set, found.left_out, len(found)) == ("objectnet", {"folders": 1, "images": 1}, 2)
    for variation, expected in (("mixed_rand", "imagenet-9-mixed_rand"), ("somewhere", "imagenet-9")):
        root = _folders(tmp_path / variation / "val", list(IN9))
        assert layout.scan(root).test_set == expected
        assert layout.scan(root, test_set="imagenet-9").test_set == expected
    assert layout.scan(tmp_path / "somewhere" / "val", test_set="imagenet-9-only_fg").test_set == "imagenet-9-only_fg"


@pytest.mark.parametrize(
    "names, says",
    [
        (["air_freshener", "squeegee"], "none of its 113 scored class folders is here"),
        (["alarm_clock", "backpack", "not_objectnet"], "'not_objectnet' is not one of its class folders"),
        (list(IN9[:5]) + list(IN9[6:]), "'05_insect' is missing (1 of its 9 class folders)"),
        ([*IN9, "09_extra"], "'09_extra' is not one of its class folders"),
    ],
)
def test_a_folder_that_nearly_is_one_is_one_error(tmp_path, names, says):
    with pytest.raises(UsageError, match=re.escape(says)) as raised:
        layout.scan(_folders(tmp_path / "mixed_same", names))
    assert len(str(raised.value).splitlines()) == 1 and str(tmp_path) in str(raised.value)


def test_a_class_map_that_does_not_load_is_one_error_naming_it(tmp_path):
    for text in ("{not json", '{"classes": {"a": [1, "x"]}}', '{"classes": {"a": [1000]}}', "[]"):
        (tmp_path / "map.json").write_text(text)
        with pytest.raises(UsageError, match=r"map\.json: class map does not load .*; regenerate it: python -m"):
            read_map(tmp_path / "map.json")
    with pytest.raises(UsageError, match=r"missing\.json: class map does not load"):
        read_map(tmp_path / "missing.json")


def test_imagenet_9_records_its_rule_and_offers_the_authors():
    """Each model's resize and crop by default (recorded as rule "model"); --authors-rule feeds the
    224 x 224 image as it is: its pixels are the file's, where the model's rule rescales them."""
    resnet = Preprocess(crop_size=224, resize_size=256)
    declared = test_sets.TEST_SETS["imagenet-9-original"]
    model, authors = declared.prepare(resnet), declared.prepare(resnet, authors=True)
    assert model.to_dict()["rule"] == "model" and authors.to_dict()["rule"] == "authors: no resize"
    assert "rule" not in test_sets.TEST_SETS["imagenet-val"].prepare(resnet).to_dict()
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8))
    assert np.array_equal(authors.pixels(image), np.asarray(image))
    assert not np.array_equal(model.pixels(image), np.asarray(image))
    for other in ("imagenet-val", "objectnet"):
        with pytest.raises(UsageError, match=r"--authors-rule: test set .* has one preprocessing rule"):
            test_sets.TEST_SETS[other].prepare(resnet, authors=True)


def _variation(folder: Path, name: str, seed: int, right: dict[str, int]) -> dict[str, float]:
    labels = synthetic_labels(seed, 100)
    write_dataset(folder, labels, salt=seed)
    info = json.loads((folder / "dataset.json").read_text())
    (folder / "dataset.json").write_text(json.dumps({**info, "test_set": name}))
    for model, n in right.items():
        write_model(folder, model, labels, range(n), seed=seed)
    return {model: n for model, n in right.items()}


def test_bg_gap_and_the_published_figures_are_columns(tmp_path):
    """BG-Gap is Mixed-Same's Acc@1 minus Mixed-Rand's (here 100-image folders: points = images);
    --published gives the README's ResNet-50 figures beside each variation, blank for others."""
    runs = tmp_path / "runs"
    _variation(runs / "val", "imagenet-val", 1, {"resnet50": 80, "vgg16": 70})
    same = _variation(runs / "same", "imagenet-9-mixed_same", 2, {"resnet50": 60, "vgg16": 55})
    rand = _variation(runs / "rand", "imagenet-9-mixed_rand", 3, {"resnet50": 52, "vgg16": 31})
    rows = {r["Model"]: r for r in ok_csv("-r", runs, "--published")}
    for model in ("resnet50", "vgg16"):
        assert float(rows[model]["BG-Gap"]) == pytest.approx(same[model] - rand[model])
    pub = "Pub@1 imagenet-9-mixed_"
    assert (float(rows["resnet50"][f"{pub}rand"]), float(rows["resnet50"][f"{pub}same"])) == (78.9, 86.2)
    assert rows["vgg16"][f"{pub}same"] == ""  # the README has VGG16-BN, not VGG16
    assert "BG-Gap" not in ok_csv("--dir", runs / "val", "--dir", runs / "same")[0]  # Mixed-Rand absent
