"""Unit tests of the datasets layer: the test-set declarations (datasets.test_sets) and the scan
of a generated folder in each layout (datasets.layout).

Expected values are written here: the declared names, ImageNet class indices of a few WordNet
ids (tench 0, goldfish 1, English springer 217, chain saw 491), memberships computed by hand,
fingerprints from the ordered 'name\\tsize\\tlabel' lines, and pixels compared with an image
framed here with PIL.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageOps

from imagenet_bench.base.errors import UsageError
from imagenet_bench.datasets import layout, test_sets
from imagenet_bench.datasets.preprocessing import Preprocess
from imagenet_bench.datasets.test_set import BorderCrop, OwnClasses
from imagenet_bench.datasets.test_set import TestSet as Declared  # not 'Test*': pytest would collect it

BUILT_IN = [
    "imagenet-val",
    "imagenetv2-matched-frequency",
    "imagenetv2-threshold0.7",
    "imagenetv2-top-images",
    "imagenetv2",
    "imagenet-sketch",
    "imagenet-a",
    "imagenet-r",
]
TOY = OwnClasses(
    folders=("cats", "dogs", "boats"),
    accepts=((281, 282, 283), (151,), (282, 484, 814)),
    ignored=frozenset({"unscored"}),
    source="written in the test",
)


@pytest.fixture
def toy_own(monkeypatch):
    """An own-class test set registered for one test, and gone from TEST_SETS after it."""
    name = "toy-own-unit"
    monkeypatch.setitem(test_sets.TEST_SETS, name, None)  # undone last: deletes the name again
    monkeypatch.delitem(test_sets.TEST_SETS, name)
    return test_sets.register(
        Declared(
            name,
            12,
            "toy/",
            "tests",
            folders="own",
            own_classes=lambda: TOY,
            restrict_to=TOY.union,
            image_step=BorderCrop(2),
        )
    )


def write_image(path, size=(40, 30), value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path)
    return path


def fingerprint(dataset) -> str:
    lines = "".join(
        f"{p.name}\t{p.stat().st_size}\t{int(label)}\n" for p, label in zip(dataset.paths, dataset.labels, strict=True)
    )
    return hashlib.sha256(lines.encode()).hexdigest()


# --- test_sets: the declarations ----------------------------------------------------------------


def test_the_built_in_test_sets_are_declared_in_order():
    assert list(test_sets.TEST_SETS)[: len(BUILT_IN)] == BUILT_IN
    assert all(test_sets.TEST_SETS[name].name == name for name in BUILT_IN)
    assert [n for n in BUILT_IN if test_sets.TEST_SETS[n].folders == "index"] == BUILT_IN[1:5]
    assert [n for n in BUILT_IN if test_sets.TEST_SETS[n].restricted] == ["imagenet-a", "imagenet-r"]
    assert test_sets.TEST_SETS["imagenet-val"].classes() == tuple(range(1000))


def test_register_refuses_a_name_twice_and_a_bad_folder_naming():
    before = dict(test_sets.TEST_SETS)
    with pytest.raises(ValueError, match="declared twice"):
        test_sets.register(Declared("imagenet-val", 1, "x", "y"))
    with pytest.raises(ValueError, match="own_classes"):
        test_sets.register(Declared("no-classes-unit", 1, "x", "y", folders="own"))
    with pytest.raises(ValueError, match="folders"):
        test_sets.register(Declared("bad-naming-unit", 1, "x", "y", folders="numbers"))
    assert before == test_sets.TEST_SETS


def test_own_classes_membership_and_union():
    member = TOY.membership()
    want = np.zeros((3, 1000), dtype=bool)
    want[0, [281, 282, 283]] = want[1, 151] = want[2, [282, 484, 814]] = True
    assert member.shape == (3, 1000) and np.array_equal(member, want)
    assert TOY.union() == (151, 281, 282, 283, 484, 814)


@pytest.mark.parametrize(
    "folders, accepts",
    [(("a", "b"), ((1,),)), (("a", "a"), ((1,), (2,))), (("a",), ((),)), (("a",), ((1000,),)), (("a",), ((-1,),))],
)
def test_own_classes_refuse_a_bad_map(folders, accepts):
    with pytest.raises(ValueError):
        OwnClasses(folders, accepts)


def test_prepare_puts_the_border_on_a_preprocess():
    plain = Preprocess(64, 72)
    framed_set = Declared("framed-unit", 1, "x", "y", image_step=BorderCrop(2))
    prepared = framed_set.prepare(plain)
    assert prepared == replace(plain, border=2) and prepared.border == 2 and plain.border == 0
    assert prepared.geometry == plain.geometry + (("border", 2),)
    assert prepared.to_dict()["border"] == 2 and "border" not in plain.to_dict()
    assert test_sets.TEST_SETS["imagenet-val"].prepare(plain) is plain
    with pytest.raises(UsageError, match="framed-unit"):
        framed_set.prepare(object())


@pytest.mark.parametrize(
    "preprocess",
    [
        Preprocess(64, 72, border=2),
        Preprocess(48, 64, "squash", "bicubic"),
        Preprocess(56, 56, "crop_fraction", normalization="keras:tf", mean=None, std=None),
    ],
)
def test_a_preprocess_comes_back_from_its_json_record(preprocess):
    """The Keras model process's job carries the parent's preprocessing (image step included) as JSON."""
    back = Preprocess.from_record(json.loads(json.dumps(preprocess.to_record())))
    assert back == preprocess and back.geometry == preprocess.geometry and back.to_dict() == preprocess.to_dict()


class NoResize:
    """An image step of another kind than a border (ImageNet-9's 224 x 224 images are only cropped)."""

    def apply(self, preprocess, test_set):
        return replace(preprocess, resize_size=preprocess.crop_size)


def test_a_test_set_takes_any_image_step():
    prepared = Declared("unresized-unit", 1, "x", "y", image_step=NoResize()).prepare(Preprocess(224, 256))
    image = Image.fromarray(np.random.default_rng(3).integers(0, 256, (224, 224, 3), dtype=np.uint8))
    assert np.array_equal(prepared.pixels(image), np.asarray(image))  # not resized: the pixels as they were
    assert not np.array_equal(Preprocess(224, 256).pixels(image), np.asarray(image))


@pytest.mark.parametrize(
    "preprocess", [Preprocess(64, 72), Preprocess(48, 64, "squash", "bicubic"), Preprocess(56, 56, "crop_fraction")]
)
def test_a_framed_image_gives_the_pixels_of_the_unframed_one(preprocess):
    rng = np.random.default_rng(5)
    inner = Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
    framed = ImageOps.expand(inner, border=2, fill=(255, 0, 0))
    assert framed.size == (124, 94)
    prepared = Declared("framed-unit", 1, "x", "y", image_step=BorderCrop(2)).prepare(preprocess)
    assert np.array_equal(prepared.pixels(framed), preprocess.pixels(inner))
    assert not np.array_equal(preprocess.pixels(framed), preprocess.pixels(inner))  # the frame does show


def test_by_folder_names_recognises_a_registered_own_class_set(toy_own, tmp_path):
    assert test_sets.by_folder_names(tmp_path, ["cats", "dogs"], None) is toy_own
    assert test_sets.by_folder_names(tmp_path, ["boats", "unscored"], None) is toy_own
    with pytest.raises(UsageError, match="nearly toy-own-unit's, but none of its 3 scored class folders is here"):
        test_sets.by_folder_names(tmp_path, ["unscored"], None)  # nothing scored: the folder is not as released
    assert test_sets.by_folder_names(tmp_path, ["cats", "planes"], None) is None
    assert test_sets.by_folder_names(tmp_path, ["cats"], toy_own.name) is toy_own
    with pytest.raises(UsageError, match="not --test-set imagenet-a"):
        test_sets.by_folder_names(tmp_path, ["cats"], "imagenet-a")
    with pytest.raises(UsageError, match="'planes' is not one of them"):
        test_sets.by_folder_names(tmp_path, ["planes"], toy_own.name)


def test_the_toy_set_is_gone_after_its_test():
    assert "toy-own-unit" not in test_sets.TEST_SETS


# --- layout: scanning a generated folder ------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*labels stay global class indices")
def test_scan_imagefolder_orders_by_class_then_name(tmp_path):
    root = tmp_path / "val"
    for wnid, name, value in (
        ("n03000684", "b.JPEG", 1),
        ("n01440764", "z.JPEG", 2),
        ("n01440764", "a.jpg", 3),
        ("n02102040", "m.png", 4),
        ("n01443537", "c.JPEG", 5),
    ):
        write_image(root / wnid / name, (30 + value, 20), value)
    (root / "n01440764" / "notes.txt").write_text("not an image")
    (root / "n01440764" / ".hidden.JPEG").write_bytes(b"")
    dataset = layout.scan(root)
    assert (dataset.layout, dataset.test_set, len(dataset)) == ("imagefolder", "imagenet-val", 5)
    assert dataset.names == ["a.jpg", "z.JPEG", "c.JPEG", "m.png", "b.JPEG"]
    assert dataset.labels.tolist() == [0, 0, 1, 217, 491]
    assert dataset.fingerprint == dataset.images_fingerprint == fingerprint(dataset)
    assert dataset.classes_present == [0, 1, 217, 491] and not dataset.is_full_val


@pytest.mark.filterwarnings("ignore:.*labels stay global class indices")
def test_scan_imagenetv2_folders_are_class_indices_not_sorted_names(tmp_path):
    root = tmp_path / "imagenetv2-matched-frequency-format-val"
    for folder, name in (("10", "x.jpeg"), ("2", "y.jpeg"), ("0", "b.jpeg"), ("0", "a.jpeg")):
        write_image(root / folder / name)
    dataset = layout.scan(root)
    assert (dataset.layout, dataset.test_set) == ("indexfolder", "imagenetv2-matched-frequency")
    assert list(zip(dataset.labels.tolist(), dataset.names, strict=True)) == [
        (0, "a.jpeg"),
        (0, "b.jpeg"),
        (2, "y.jpeg"),
        (10, "x.jpeg"),
    ]
    assert dataset.fingerprint != fingerprint(dataset)  # beyond the val set, the test set is part of it


@pytest.mark.filterwarnings("ignore:.*labels stay global class indices")
def test_scan_flat_folder_labelled_by_a_ground_truth_file(tmp_path):
    root = tmp_path / "flat"
    truth = {1: 65, 2: 970, 3: 65, 4: 0}
    for number in truth:
        write_image(root / f"ILSVRC2012_val_{number:08d}.JPEG", value=number)
    gt = tmp_path / "val_full.txt"
    gt.write_text("".join(f"ILSVRC2012_val_{n:08d}.JPEG {label}\n" for n, label in truth.items()))
    dataset = layout.scan(root, gt)
    assert dataset.layout == "flat" and dataset.test_set == "imagenet-val"
    assert dataset.names == [f"ILSVRC2012_val_{n:08d}.JPEG" for n in (4, 1, 3, 2)]
    assert dataset.labels.tolist() == [0, 65, 65, 970] and dataset.fingerprint == fingerprint(dataset)
    with pytest.raises(UsageError, match="--val-ground-truth"):
        layout.scan(root)


@pytest.mark.filterwarnings("ignore:.*labels stay global class indices")
def test_scan_own_class_folders_labels_by_position_and_counts_the_left_out(toy_own, tmp_path):
    root = tmp_path / "toy"
    for folder, name in (
        ("dogs", "d1.png"),
        ("boats", "b1.png"),
        ("cats", "c2.png"),
        ("cats", "c1.png"),
        ("unscored", "u1.png"),
        ("unscored", "u2.png"),
    ):
        write_image(root / folder / name)
    dataset = layout.scan(root)
    assert (dataset.layout, dataset.test_set) == ("ownfolder", toy_own.name)
    assert list(zip(dataset.labels.tolist(), dataset.names, strict=True)) == [
        (0, "c1.png"),
        (0, "c2.png"),
        (1, "d1.png"),
        (2, "b1.png"),
    ]
    assert dataset.left_out == {"folders": 1, "images": 2}
    described = dataset.describe()
    assert described["own_classes"]["folders"] == ["cats", "dogs", "boats"]
    assert described["own_classes"]["accepts"] == [[281, 282, 283], [151], [282, 484, 814]]
