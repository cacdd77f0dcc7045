"""Data layouts, ground-truth formats, canonical order, fingerprints and subsets."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from PIL import Image

from imagenet_bench.base.classes import wnids
from imagenet_bench.base.errors import ImageError, UsageError
from imagenet_bench.datasets import ground_truth, images, layout

from conftest import VAL500, VAL_FULL_TXT, shared
from helpers import flat_copy


def _flat_copy(tmp_path, source):
    return flat_copy(tmp_path / "flat", source)


def _val_full():
    lines = shared(VAL_FULL_TXT).read_text().split("\n")
    return {ln.split()[0]: int(ln.split()[1]) for ln in lines if ln.strip()}


def test_imagefolder_global_labels_and_canonical_order():
    with pytest.warns(UserWarning, match="10 of 1000 classes"):
        ds = layout.scan(shared(VAL500))
    assert len(ds) == 500
    truth = _val_full()
    assert [truth[n] for n in ds.names] == ds.labels.tolist()  # global indices, not 0..9
    order = sorted(ds.names, key=lambda n: (truth[n], n))
    assert ds.names == order
    assert ds.classes_present == sorted({wnids().index(p.parent.name) for p in ds.paths})


@pytest.mark.filterwarnings("ignore:.*classes present")
def test_flat_and_imagefolder_agree_for_every_ground_truth_format(tmp_path):
    folder = layout.scan(shared(VAL500))
    flat = _flat_copy(tmp_path, VAL500)
    truth = _val_full()
    caffe = tmp_path / "val_full.txt"
    caffe.write_text(shared(VAL_FULL_TXT).read_text())
    kaggle = tmp_path / "LOC_val_solution.csv"
    kaggle.write_text(
        "ImageId,PredictionString\n"
        + "".join(f"{n[:-5]},{wnids()[c]} 1 2 3 4 {wnids()[c]} 5 6 7 8\n" for n, c in truth.items())
    )
    # devkit: ILSVRC2012_IDs are a permutation of the sorted order; meta.mat maps them back
    from scipy.io import savemat

    perm = np.random.default_rng(0).permutation(1000)
    devkit = tmp_path / "devkit"
    devkit.mkdir()
    synsets = np.zeros(1000, dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O")])
    for ilsvrc_id, class_index in enumerate(perm, 1):
        synsets[ilsvrc_id - 1] = (ilsvrc_id, wnids()[class_index])
    savemat(devkit / "meta.mat", {"synsets": synsets})
    inverse = {c: i + 1 for i, c in enumerate(perm)}
    (devkit / "ILSVRC2012_validation_ground_truth.txt").write_text(
        "".join(f"{inverse[truth[f'ILSVRC2012_val_{i:08d}.JPEG']]}\n" for i in range(1, 50001))
    )
    for gt in (caffe, kaggle, devkit / "ILSVRC2012_validation_ground_truth.txt"):
        ds = layout.scan(flat, gt)
        assert ds.layout == "flat"
        assert ds.names == folder.names and np.array_equal(ds.labels, folder.labels)
        assert ds.fingerprint == folder.fingerprint


def test_fingerprint_changes_with_bytes_and_labels(tmp_path):
    base = tmp_path / "a" / wnids()[0]
    base.mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(base / "ILSVRC2012_val_00000001.JPEG")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fp1 = layout.scan(tmp_path / "a").fingerprint
        (base / "ILSVRC2012_val_00000001.JPEG").write_bytes(
            (base / "ILSVRC2012_val_00000001.JPEG").read_bytes() + b"\0"
        )
        fp2 = layout.scan(tmp_path / "a").fingerprint
        other = tmp_path / "a" / wnids()[1]
        base.rename(other)
        fp3 = layout.scan(tmp_path / "a").fingerprint
    assert len({fp1, fp2, fp3}) == 3


@pytest.mark.filterwarnings("ignore:.*classes present")
def test_subsets_are_deterministic_and_recorded():
    ds = layout.scan(shared(VAL500))
    per = layout.select(ds, per_class=3)
    assert len(per) == 30 and per.subset == {"per_class": 3}
    assert all(np.count_nonzero(per.labels == c) == 3 for c in ds.classes_present)
    assert per.names == [n for n, ln in zip(ds.names, ds.labels, strict=True) if n in set(per.names)]
    lim = layout.select(ds, per_class=3, limit=7)
    assert lim.names == per.names[:7] and lim.subset == {"per_class": 3, "limit": 7}
    with pytest.raises(UsageError, match="--limit"):
        layout.select(ds, limit=0)


def test_layout_errors_name_the_problem(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        layout.scan(tmp_path / "missing")
    (tmp_path / "bad" / "cats").mkdir(parents=True)
    with pytest.raises(UsageError, match="cats: folder name is not an ImageNet-1k WordNet id"):
        layout.scan(tmp_path / "bad")
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (8, 8)).save(flat / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(UsageError, match="--val-ground-truth"):
        layout.scan(flat)
    gt = tmp_path / "gt.txt"
    gt.write_text("ILSVRC2012_val_00000002.JPEG 5\n")
    with pytest.raises(UsageError, match=re.escape("ILSVRC2012_val_00000001.JPEG: no line for this image")):
        layout.scan(flat, gt)
    (tmp_path / "devkit.txt").write_text("12\n")
    with pytest.raises(UsageError, match=re.escape("meta.mat")):
        ground_truth.read(tmp_path / "devkit.txt")


def test_non_images_ignored_and_every_image_mode_becomes_rgb(tmp_path):
    folder = tmp_path / "val" / wnids()[3]
    folder.mkdir(parents=True)
    (folder / ".DS_Store").write_bytes(b"\0\1")
    (folder / "README").write_text("not an image")
    Image.new("L", (30, 20), 128).save(folder / "ILSVRC2012_val_00000001.JPEG")
    Image.new("CMYK", (30, 20), (0, 255, 0, 0)).save(folder / "ILSVRC2012_val_00000002.JPEG")
    Image.new("P", (30, 20), 7).save(folder / "ILSVRC2012_val_00000003.JPEG", format="PNG")  # PNG under .JPEG
    Image.new("RGBA", (30, 20), (1, 2, 3, 4)).save(folder / "ILSVRC2012_val_00000004.JPEG", format="PNG")
    with pytest.warns(UserWarning):
        ds = layout.scan(tmp_path / "val")
    assert len(ds) == 4 and set(ds.labels.tolist()) == {3}
    for path in ds.paths:
        image = images.load_rgb(path)
        assert image.mode == "RGB" and image.size == (30, 20)
    cmyk = np.asarray(images.load_rgb(ds.paths[1]))
    assert cmyk[0, 0, 0] > 200 and cmyk[0, 0, 1] < 60  # CMYK magenta -> RGB (255, 0, 255)


def test_truncated_image_error_names_the_file(tmp_path):
    path = tmp_path / "ILSVRC2012_val_00000009.JPEG"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(ImageError, match=re.escape("ILSVRC2012_val_00000009.JPEG: cannot decode image")):
        images.load_rgb(path)
