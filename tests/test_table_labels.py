"""Accuracy on corrected labels (--clean-labels, cleanlab's label errors in ../shared):
counts from the data, columns against numpy, subsets, and --download label-errors.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from conftest import ROOT, SEED, SHARED, VAL_FULL_TXT, shared
from helpers import (
    assert_one_error,
    bench,
    closed_port_url,
    competition_ranks,
    ok_csv,
    pct,
    serving,
    write_dataset,
    write_model,
)

LABEL_ERRORS = SHARED / "data" / "label-errors"
MTURK_JSON = LABEL_ERRORS / "imagenet_mturk.json"


def test_label_error_counts_from_the_data():
    from imagenet_bench.scoring import clean_labels

    entries = json.loads(shared(MTURK_JSON).read_text())
    errors = [e for e in entries if e["mturk"]["given"] < 3]
    assert len(errors) == 2916 and sum(e["mturk"]["guessed"] >= 3 for e in errors) == 1428
    data = clean_labels.load(MTURK_JSON)
    assert len(data.errors) == 2916 and data.relabelled == 1428


def test_clean_labels_on_the_2019_files(seed_truth):
    """Each column against numpy, rows matched through cleanlab's own ImageFolder-order file list
    (independent of the val ground truth the script is given)."""
    entries = json.loads(shared(MTURK_JSON).read_text())
    order = json.loads((LABEL_ERRORS / "imagenet_val_set_index_to_filepath.json").read_text())
    row_of = {int(path.rsplit("_", 1)[1].split(".")[0]): row for row, path in enumerate(order)}
    labels = np.repeat(np.arange(1000), 50)
    keep_drop, keep_fix, fixed = np.ones(50_000, bool), np.ones(50_000, bool), labels.copy()
    for e in entries:
        if e["mturk"]["given"] < 3:
            row = row_of[e["id"]]
            keep_drop[row] = False
            if e["mturk"]["guessed"] >= 3:
                fixed[row] = e["our_guessed_label"]
            else:
                keep_fix[row] = False
    assert keep_drop.sum() == 47_084 and keep_fix.sum() == 48_512

    rows = ok_csv(
        "-k",
        SEED / "keras_imagenet",
        "-p",
        SEED / "pytorch_imagenet",
        "--clean-labels",
        MTURK_JSON,
        "--val-ground-truth",
        shared(VAL_FULL_TXT),
    )
    keys = [(r["Platform"], r["Model"]) for r in rows]
    for column, rank, move, keep, truth_labels in (
        ("Clean@1", "Clean rank", "Clean Δrank", keep_drop, labels),
        ("Fixed@1", "Fixed rank", "Fixed Δrank", keep_fix, fixed),
    ):
        counts = [int(np.sum(seed_truth[k]["top1"][keep] == truth_labels[keep])) for k in keys]
        assert [r[column] for r in rows] == [pct(c, int(keep.sum())) for c in counts]
        assert [int(r[rank]) for r in rows] == competition_ranks(counts)
        assert [int(r[move]) for r in rows] == [
            int(r["Rank@1"]) - c for r, c in zip(rows, competition_ranks(counts), strict=True)
        ]
        assert any(int(r[move]) != 0 for r in rows)  # the paper's point: rankings move


def test_clean_labels_need_val_file_names(tmp_path, four_models):
    folder, _, _ = four_models
    shared(MTURK_JSON)
    assert_one_error(bench("-p", shared(SEED / "pytorch_imagenet"), "--clean-labels", MTURK_JSON), "--clean-labels")
    assert_one_error(bench("--dir", folder, "--clean-labels", MTURK_JSON), "img_00000.JPEG", "val file name")
    assert_one_error(
        bench("--dir", folder, "--clean-labels", tmp_path / "nope.json"),
        tmp_path / "nope.json",
        "--download label-errors",
    )


def test_clean_labels_on_a_val_subset(tmp_path):
    """A subset known by file names (dataset_files.txt): only its own label errors count."""
    entries = json.loads(shared(MTURK_JSON).read_text())
    truth = {}
    for line in shared(VAL_FULL_TXT).read_text().splitlines():
        name, label = line.split()
        truth[name] = int(label)
    errors = {e["id"]: e for e in entries if e["mturk"]["given"] < 3}
    numbers = sorted(errors)[:40] + list(range(1, 161))  # 40 label errors and 160 others (some may be errors)
    names = [f"ILSVRC2012_val_{n:08d}.JPEG" for n in numbers]
    labels = np.array([truth[name] for name in names])
    folder = tmp_path / "subset"
    write_dataset(folder, labels, names)
    model = write_model(folder, "m", labels, range(0, 200, 3))
    row = ok_csv("--dir", folder, "--clean-labels", MTURK_JSON)[0]
    is_error = np.array([n in errors for n in numbers])
    ok = model["top1"] == labels
    assert row["Clean@1"] == pct(int(np.sum(ok & ~is_error)), int(np.sum(~is_error)))


def test_label_errors_download_is_pinned_to_the_shared_copy(tmp_path):
    """--download label-errors: the sha256 on file is the ../shared copy's; fetched from a mirror."""
    data = shared(MTURK_JSON).read_bytes()
    listed = (ROOT / "imagenet_bench" / "data" / "label-errors.sha256").read_text().split()
    assert listed == [hashlib.sha256(data).hexdigest(), "mturk/imagenet_mturk.json"]
    mirror = tmp_path / "mirror"
    (mirror / "mturk").mkdir(parents=True)
    (mirror / "mturk" / "imagenet_mturk.json").write_bytes(data)
    with serving(mirror) as url:
        proc = bench("--download", "label-errors", "--download-url", url, "--download-dir", tmp_path / "dl")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "mturk" / "imagenet_mturk.json").read_bytes() == data


@pytest.mark.slow
def test_label_errors_download_offline_says_where_to_put_the_file(tmp_path):
    proc = bench("--download", "label-errors", "--download-dir", tmp_path / "dl", "--download-url", closed_port_url())
    error = assert_one_error(proc, "offline?", "cleanlab/label-errors", tmp_path / "dl" / "mturk")
    assert "5457895eee26e49187de5c4d6617b9de6f172221" in error
