"""Test sets beyond val (issue 11): the table of test sets, recognition of a folder, class
subsets and the restriction before the softmax, and timm's published figures per test set.

Expected numbers come from outside the code under test: the issue (two val500 classes
are in ImageNet-A's list, one in ImageNet-R's), timm's results CSVs in ../shared (read
here with the csv module), and numpy/scipy computations written out in the tests.
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax

from conftest import SHARED, VAL500, shared
from imagenet_bench import class_subset, published, test_sets, timm_published
from imagenet_bench.class_subset import ClassSubset
from imagenet_bench.classes import wnids
from imagenet_bench.errors import UsageError

TIMM_RESULTS = SHARED / "reference" / "timm-results"


# --- class lists -------------------------------------------------------------------------


def test_class_lists_hold_200_classes_and_the_val500_classes_the_issue_names():
    a, r = test_sets.class_list("imagenet_a"), test_sets.class_list("imagenet_r")
    assert len(a) == len(r) == 200 and list(a) == sorted(set(a)) and list(r) == sorted(set(r))
    present = sorted(wnids().index(p.name) for p in shared(VAL500).iterdir() if p.is_dir())
    assert len([c for c in present if c in a]) == 2 and len([c for c in present if c in r]) == 1
    assert test_sets.default_subset("imagenet-a").indices == a
    assert test_sets.default_subset("imagenet-val") is None
    assert test_sets.default_subset("imagenetv2-matched-frequency") is None


def test_choose_subset_default_none_and_file(tmp_path):
    (tmp_path / "s.txt").write_text("n01440764\n# a comment\n\n7\n")
    assert test_sets.choose_subset("imagenet-r", None).source == "imagenet-r"
    assert test_sets.choose_subset("imagenet-r", "none") is None
    assert test_sets.choose_subset("imagenet-val", str(tmp_path / "s.txt")).indices == (0, 7)


# --- recognition ---------------------------------------------------------------------------


def test_numeric_folders_are_imagenetv2_with_the_variant_from_the_folder_name(tmp_path):
    for folder, expected in (("imagenetv2-matched-frequency-format-val", "imagenetv2-matched-frequency"),
                             ("imagenetv2-threshold0.7-format-val", "imagenetv2-threshold0.7"),
                             ("imagenetv2-top-images-format-val", "imagenetv2-top-images"),
                             ("my-copy", "imagenetv2")):
        assert test_sets.recognise(tmp_path / folder, "index", range(1000), None) == expected
    assert test_sets.recognise(tmp_path / "x", "index", [3], "imagenetv2-top-images") == "imagenetv2-top-images"


def test_wnid_folders_by_their_classes_or_name(tmp_path):
    a, r = test_sets.class_list("imagenet_a"), test_sets.class_list("imagenet_r")
    assert test_sets.recognise(tmp_path / "x", "wnid", a, None) == "imagenet-a"
    assert test_sets.recognise(tmp_path / "x", "wnid", r, None) == "imagenet-r"
    assert test_sets.recognise(tmp_path / "sketch", "wnid", range(1000), None) == "imagenet-sketch"
    assert test_sets.recognise(tmp_path / "val", "wnid", range(1000), None) == "imagenet-val"
    assert test_sets.recognise(tmp_path / "val", "wnid", [0, 1, 2], None) == "imagenet-val"
    assert test_sets.recognise(tmp_path / "val", "flat", range(1000), None) == "imagenet-val"


def test_a_folder_inside_both_200_class_lists_needs_test_set(tmp_path):
    both = sorted(set(test_sets.class_list("imagenet_a")) & set(test_sets.class_list("imagenet_r")))
    with pytest.raises(UsageError, match="imagenet-a and imagenet-r.*pass --test-set"):
        test_sets.recognise(tmp_path / "x", "wnid", both[:3], None)
    assert test_sets.recognise(tmp_path / "x", "wnid", both[:3], "imagenet-r") == "imagenet-r"


def test_a_folder_inside_one_list_is_val_with_a_warning(tmp_path):
    only_a = sorted(set(test_sets.class_list("imagenet_a")) - set(test_sets.class_list("imagenet_r")))
    with pytest.warns(UserWarning, match="pass --test-set imagenet-a"):
        assert test_sets.recognise(tmp_path / "x", "wnid", only_a[:2], None) == "imagenet-val"


def test_requested_test_set_must_fit_the_folder(tmp_path):
    with pytest.raises(UsageError, match="expected one of imagenet-val, imagenetv2-matched-frequency"):
        test_sets.recognise(tmp_path, "wnid", [0], "imagenet-b")
    with pytest.raises(UsageError, match="named by class index"):
        test_sets.recognise(tmp_path, "wnid", [0], "imagenetv2-matched-frequency")
    with pytest.raises(UsageError, match="named by WordNet id"):
        test_sets.recognise(tmp_path, "index", [0], "imagenet-sketch")
    with pytest.raises(UsageError, match=r"not among the 200 of --test-set imagenet-a \(first n01440764, class 0\)"):
        test_sets.recognise(tmp_path, "wnid", [0, 6], "imagenet-a")


# --- class subsets ----------------------------------------------------------------------------


def test_subset_file_takes_ids_and_indices(tmp_path):
    path = tmp_path / "subset.txt"
    path.write_text("n01443537\n0   # tench\n\n999\n")
    subset = class_subset.read(path)
    assert subset.indices == (0, 1, 999) and subset.wnids == ["n01440764", "n01443537", wnids()[999]]
    # The hash: sha256 of the sorted WordNet ids, one a line (computed here by hand).
    import hashlib

    expected = hashlib.sha256(f"n01440764\nn01443537\n{wnids()[999]}\n".encode()).hexdigest()
    assert subset.sha256 == expected
    assert subset.describe() == {"n_classes": 3, "sha256": expected, "source": "file subset.txt",
                                 "indices": [0, 1, 999]}


@pytest.mark.parametrize("text, message", [
    ("n01440764\nn99999999\n", "line 2: --class-subset 'n99999999' is neither"),
    ("1000\n", "line 1: --class-subset '1000' is neither"),
    ("-1\n", "line 1: --class-subset '-1' is neither"),
    ("0\nn01440764\n", "line 2: --class-subset lists class 0 .n01440764. twice .first on line 1."),
    ("# nothing\n\n", "lists no class"),
])
def test_bad_subset_files_are_named_errors(tmp_path, text, message):
    path = tmp_path / "subset.txt"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        class_subset.read(path)


def test_missing_subset_file_is_an_error(tmp_path):
    with pytest.raises(UsageError, match="missing.txt: --class-subset cannot be read"):
        class_subset.read(tmp_path / "missing.txt")


def test_restriction_equals_the_softmax_of_restricted_logits():
    """p[S]/sum(p[S]) from the 1000 softmax outputs is the softmax of the logits over S
    (what the PyTorch script computes), and the softmax of log p over S (the Keras
    derivation), up to float error; the top-k are global indices within S."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (64, 1000))
    subset = ClassSubset(tuple(sorted(rng.choice(1000, 200, replace=False).tolist())), "test")
    s = list(subset.indices)
    probs = softmax(logits, axis=1).astype(np.float32)
    restricted = class_subset.restrict_probs(probs, subset)
    np.testing.assert_allclose(restricted, softmax(logits[:, s], axis=1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(restricted, softmax(np.log(probs[:, s].astype(np.float64)), axis=1), rtol=1e-5)
    preds, top = class_subset.topk_in_subset(restricted, subset, 5)
    masked = np.where(np.isin(np.arange(1000), s), logits, -np.inf)
    np.testing.assert_array_equal(preds, np.argsort(-masked, axis=1)[:, :5])
    assert set(preds.ravel()) <= set(s)
    # The restriction changes top-1 for most rows here: the test is not vacuous.
    assert (preds[:, 0] != logits.argmax(axis=1)).sum() > 32
    full = class_subset.expand(restricted, subset)
    assert full.shape == (64, 1000) and np.all(full[:, np.setdiff1d(np.arange(1000), s)] == 0)
    np.testing.assert_allclose(full.sum(axis=1), 1, rtol=1e-5)


def test_k_larger_than_the_subset_names_both():
    with pytest.raises(UsageError, match="-k/--topk 10 is larger than the class subset's 3 classes"):
        class_subset.check_topk(10, ClassSubset((1, 2, 3), "file s.txt"))
    class_subset.check_topk(3, ClassSubset((1, 2, 3), "file s.txt"))
    class_subset.check_topk(1000, None)


# --- timm's published figures per test set ---------------------------------------------------


def _timm_rows(name: str) -> dict[tuple[str, int], dict[str, str]]:
    with open(shared(TIMM_RESULTS / f"results-{name}.csv"), newline="") as handle:
        return {(row["model"], int(row["img_size"])): row for row in csv.DictReader(handle)}


def test_timm_data_file_is_what_the_generator_makes_from_timm_results():
    """The committed file equals a fresh generation from ../shared's copy of timm's results."""
    results = shared(TIMM_RESULTS)
    text = timm_published.generate(results, timm_published.source_commit(results))
    assert timm_published.TIMM_CSV.read_text(encoding="utf-8") == text


@pytest.mark.parametrize("test_set, file", [
    ("imagenet-val", "imagenet"), ("imagenet-real", "imagenet-real"),
    ("imagenetv2-matched-frequency", "imagenetv2-matched-frequency"), ("imagenet-sketch", "sketch"),
    ("imagenet-a", "imagenet-a"), ("imagenet-r", "imagenet-r"),
])
def test_timm_lookup_is_matched_on_model_and_image_size(test_set, file):
    rows = _timm_rows(file)
    for size in (224, 288):  # resnet50.a1_in1k is listed at its train and its test size
        row = rows[("resnet50.a1_in1k", size)]
        found = published.lookup("pytorch", "timm.resnet50.a1_in1k", test_set, size)
        assert (found.acc1, found.acc5) == (float(row["top1"]), float(row["top5"]))
        assert f"results-{file}.csv at {size} px" in found.source
    assert published.lookup("pytorch", "timm.resnet50.a1_in1k", test_set) is None  # two sizes: ambiguous
    assert published.lookup("pytorch", "timm.resnet50.a1_in1k", test_set, 999) is None


def test_published_figures_only_where_the_source_published_that_test_set():
    assert published.lookup("pytorch", "resnet50") is not None
    assert published.lookup("pytorch", "resnet50", "imagenet-a") is None  # torchvision publishes val only
    assert published.lookup("keras", "mobilenetV2", "imagenet-sketch") is None
    # timm's A table lacks resnet50.tv_in1k (its val table has it): blank, never the val figure.
    assert ("resnet50.tv_in1k", 224) in _timm_rows("imagenet")
    assert ("resnet50.tv_in1k", 224) not in _timm_rows("imagenet-a")
    assert published.lookup("pytorch", "timm.resnet50.tv_in1k", "imagenet-val") is not None
    assert published.lookup("pytorch", "timm.resnet50.tv_in1k", "imagenet-a") is None


# --- the table's published columns per test set ----------------------------------------------


def test_table_shows_each_sources_figure_per_test_set(tmp_path):
    """A timm model's row shows timm's figure for each test set at the size its manifest
    records; a torchvision model's shows its val figure on val and blank elsewhere."""
    import json

    from test_benchmarking import ok_csv, synthetic_labels, write_dataset, write_model

    timm_manifest = {"request": {"source": "timm"}, "preprocessing": {"crop_size": 288}}
    tv_manifest = {"published": {"acc1": 76.13, "acc5": 92.862, "source": "torchvision"},
                   "preprocessing": {"crop_size": 224}}
    for seed, name in enumerate(("imagenet-val", "imagenetv2-matched-frequency", "imagenet-a"), 1):
        folder = tmp_path / "runs" / name
        labels = synthetic_labels(seed, 100)
        write_dataset(folder, labels, salt=seed)
        info = json.loads((folder / "dataset.json").read_text())
        (folder / "dataset.json").write_text(json.dumps({**info, "test_set": name}))
        write_model(folder, "timm.resnet50.a1_in1k", labels, range(50), manifest=timm_manifest, seed=seed)
        write_model(folder, "resnet50", labels, range(40), manifest=tv_manifest, seed=seed)
    rows = {r["Model"]: r for r in ok_csv("-r", tmp_path / "runs", "--published")}
    facts = {name: _timm_rows(name)[("resnet50.a1_in1k", 288)] for name in ("imagenet", "imagenetv2-matched-frequency",
                                                                           "imagenet-a")}
    timm_row, tv_row = rows["timm.resnet50.a1_in1k"], rows["resnet50"]
    assert timm_row["Pub@1"] == f"{float(facts['imagenet']['top1']):.2f}"
    assert timm_row["Pub@1 imagenet-a"] == f"{float(facts['imagenet-a']['top1']):.2f}"
    assert (timm_row["Pub@1 imagenetv2-matched-frequency"]
            == f"{float(facts['imagenetv2-matched-frequency']['top1']):.2f}")
    assert tv_row["Pub@1"] == "76.13"
    assert tv_row["Pub@1 imagenet-a"] == tv_row["Pub@1 imagenetv2-matched-frequency"] == ""
