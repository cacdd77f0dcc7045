"""The table on synthetic prediction folders (N = 200, counts known by construction): counts,
ties and formats, where the labels come from, datasets that must not be ranked together, and
which folders and files are read.
"""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest

from conftest import ROOT, SEED, VAL500, shared
from helpers import (
    REAL_JSON,
    SCRIPT,
    N,
    assert_one_error,
    bench,
    by_model,
    competition_ranks,
    csv_rows,
    expected,
    labels_line,
    ok_csv,
    pct,
    real_accuracy,
    run_light,
    synthetic_labels,
    val500_models,
    write_dataset,
    write_model,
)


def test_counts_and_shared_ranks_only_for_equal_counts(four_models):
    folder, labels, models = four_models
    proc = bench("--dir", folder, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = csv_rows(proc.stdout)
    counts = {name: expected(m, labels) for name, m in models.items()}
    assert counts == {"a": (150, 180), "b": (150, 170), "c": (120, 180), "d": (100, 100)}
    got = {r["Model"]: r for r in rows}
    c1 = [counts[m][0] for m in counts]
    c5 = [counts[m][1] for m in counts]
    for name, r1, r5 in zip(counts, competition_ranks(c1), competition_ranks(c5), strict=True):
        row = got[name]
        assert (row["Acc@1"], row["Acc@5"]) == (pct(counts[name][0], N), pct(counts[name][1], N))
        assert (int(row["Rank@1"]), int(row["Rank@5"])) == (r1, r5)
    assert [(got[m]["Rank@1"], got[m]["Rank@5"]) for m in "abcd"] == [("1", "1"), ("1", "3"), ("3", "1"), ("4", "4")]
    assert [float(r["Acc@1"]) for r in rows] == sorted((float(r["Acc@1"]) for r in rows), reverse=True)
    assert got["c"]["Platform"] == "Keras" and got["a"]["Platform"] == "PyTorch"


def test_ranks_use_exact_counts_not_rounded_percent(tmp_path):
    """50,000 images, standard order: 30,001 and 30,000 correct both print 60.00 but rank 1 and 2."""
    labels = np.repeat(np.arange(1000), 50)
    folder = tmp_path / "full"
    write_model(folder, "x", labels, range(30_001))
    write_model(folder, "y", labels, range(1, 30_001))
    write_model(folder, "z", labels, range(1, 30_002))
    proc = bench("--dir", folder, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = by_model(proc.stdout)
    assert {m: (r["Acc@1"], r["Rank@1"]) for m, r in rows.items()} == {
        "x": ("60.00", "1"),
        "z": ("60.00", "1"),
        "y": ("60.00", "3"),
    }
    assert "standard order" in labels_line(proc)


@pytest.mark.slow
def test_ci_on_synthetic_models(tmp_path):
    stats = pytest.importorskip("scipy.stats")
    labels = synthetic_labels()
    folder = tmp_path / "runs"
    write_dataset(folder, labels)
    models = {
        "a": write_model(folder, "a", labels, range(150), seed=1),
        "b": write_model(folder, "b", labels, list(range(5, 150)) + [150, 151, 152], seed=2),  # 5 vs 3 discordant
        "c": write_model(folder, "c", labels, range(100), seed=3),
        "d": write_model(folder, "d", labels, range(100), seed=4),  # same images as c: p = 1
    }
    proc = bench("--dir", folder, "--ci")
    assert proc.returncode == 0, proc.stderr
    assert "p vs above" in proc.stdout.splitlines()[0]
    rows = ok_csv("--dir", folder, "--ci")
    assert [r["Model"] for r in rows] == ["a", "b", "c", "d"]
    for above, row in itertools.pairwise(rows):
        ca = models[above["Model"]]["top1"] == labels
        cb = models[row["Model"]]["top1"] == labels
        b, c = int(np.sum(ca & ~cb)), int(np.sum(~ca & cb))
        p = 1.0 if b + c == 0 else stats.binomtest(min(b, c), b + c, 0.5).pvalue
        assert float(row["p vs above"]) == pytest.approx(p, rel=5e-3)
        assert row["~"] == ("~" if p >= 0.05 else "")
    assert [r["~"] for r in rows] == ["", "~", "", "~"]
    for row in rows:
        ci = stats.binomtest(int(row["Correct@1"]), N).proportion_ci(method="wilson")
        lo, hi = (float(x) for x in row["Acc@1 95% CI"].split("-"))
        assert abs(lo - 100 * ci.low) < 0.0051 and abs(hi - 100 * ci.high) < 0.0051, row


def test_labels_from_dataset_labels_beside(four_models):
    folder, labels, models = four_models
    proc = bench("--dir", folder, "--format", "csv")
    assert "dataset_labels.npy" in labels_line(proc)
    assert by_model(proc.stdout)["d"]["Acc@1"] == pct(expected(models["d"], labels)[0], N)


def test_labels_file_beats_dataset_labels(tmp_path, four_models):
    folder, labels, models = four_models
    other = labels.copy()
    other[:100] = models["b"]["top1"][:100]  # b right on all of the first 100, a on fewer
    np.save(tmp_path / "other.npy", other)
    proc = bench("--dir", folder, "--labels", tmp_path / "other.npy", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert "--labels" in labels_line(proc)
    rows = by_model(proc.stdout)
    for name, model in models.items():
        c1, c5 = expected(model, other)
        assert (rows[name]["Acc@1"], rows[name]["Acc@5"]) == (pct(c1, N), pct(c5, N)), name
    assert rows["b"]["Rank@1"] == "1"


def test_standard_order_only_for_50000_images(tmp_path):
    folder = tmp_path / "bare"
    write_model(folder, "m", synthetic_labels(), range(10))  # no dataset files, N = 200
    proc = bench("--dir", folder)
    assert_one_error(proc, folder / "m_pytorch_imagenet_top5preds.npy", "--labels")


def test_val_dir_beats_every_other_source(tmp_path):
    shared(VAL500)
    folder, labels, models = val500_models(tmp_path)
    wrong = (labels + 1) % 1000
    np.save(folder / "dataset_labels.npy", wrong)  # lower-priority sources, all wrong
    np.save(tmp_path / "wrong.npy", wrong)
    for how in (("--val-dir", VAL500), (VAL500,)):
        proc = bench(*how, "--dir", folder, "--labels", tmp_path / "wrong.npy", "--format", "csv")
        assert proc.returncode == 0, proc.stderr
        assert "--val-dir" in labels_line(proc)
        rows = by_model(proc.stdout)
        for name in ("m1", "m2"):
            c1, c5 = expected(models[name], labels)
            assert (rows[name]["Acc@1"], rows[name]["Acc@5"]) == (pct(c1, 500), pct(c5, 500))
        assert (rows["m1"]["Acc@1"], rows["m2"]["Acc@1"]) == ("50.00", "60.00")


@pytest.mark.slow
def test_real_labels_with_val_dir_and_with_dataset_files(tmp_path):
    shared(VAL500)
    real = json.loads(shared(REAL_JSON).read_text())
    folder, labels, models = val500_models(tmp_path)
    sets = [real[int(name[15:23]) - 1] for name in models["names"]]
    proc = bench("--val-dir", VAL500, "--dir", folder, "--real-labels", REAL_JSON, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = by_model(proc.stdout)
    for name in ("m1", "m2"):
        correct, counted = real_accuracy(models[name]["top1"], sets)
        assert (rows[name]["ReaL@1"], rows[name]["ReaL N"]) == (pct(correct, counted), str(counted))

    # the same rows, their names read from dataset_files.txt instead
    write_dataset(folder, labels, models["names"])
    for preds in folder.glob("*_top5preds.npy"):  # a folder the scripts made has a manifest per model
        preds.with_name(preds.name.replace("top5preds.npy", "manifest.json")).write_text("{}")
    proc = bench("--dir", folder, "--real-labels", REAL_JSON, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert {m: r["ReaL@1"] for m, r in by_model(proc.stdout).items()} == {m: r["ReaL@1"] for m, r in rows.items()}

    (folder / "dataset_files.txt").write_text("".join(f"{name}\n" for name in models["names"][:-1]))
    assert_one_error(bench("--dir", folder, "--real-labels", REAL_JSON), folder / "dataset_files.txt", "499")
    (folder / "dataset_files.txt").unlink()
    assert_one_error(bench("--dir", folder, "--real-labels", REAL_JSON), "--real-labels")


def test_different_fingerprints_are_two_test_sets(tmp_path):
    """Two identified datasets are never scored against each other's labels: one row per
    model, a column group per test set (named after its folder without a test_set)."""
    labels = synthetic_labels()
    write_dataset(tmp_path / "A", labels)
    write_dataset(tmp_path / "B", labels, salt=1)  # same names and labels, other byte sizes
    write_model(tmp_path / "A", "m", labels, range(10))
    write_model(tmp_path / "B", "n", labels, range(30))
    rows = ok_csv("--dir", tmp_path / "B", "--dir", tmp_path / "A")
    assert [(r["Model"], r["Acc@1"], r["Acc@1 B"]) for r in rows] == [("m", "5.00", ""), ("n", "", "15.00")]


def test_same_fingerprint_in_two_folders_ranks_together(tmp_path):
    labels = synthetic_labels()
    write_dataset(tmp_path / "A", labels)
    write_dataset(tmp_path / "B", labels)
    write_model(tmp_path / "A", "m", labels, range(10))
    write_model(tmp_path / "B", "n", labels, range(20))
    assert [r["Model"] for r in ok_csv("--dir", tmp_path / "A", "--dir", tmp_path / "B")] == ["n", "m"]


def test_different_image_counts_are_not_ranked_together(tmp_path):
    write_model(tmp_path / "A", "m", synthetic_labels(), range(10))
    write_model(tmp_path / "B", "n", synthetic_labels(n=300), range(10))
    np.save(tmp_path / "labels.npy", synthetic_labels())
    proc = bench("--dir", tmp_path / "A", "--dir", tmp_path / "B", "--labels", tmp_path / "labels.npy")
    assert_one_error(
        proc, tmp_path / "A" / "m_pytorch_imagenet_top5preds.npy", tmp_path / "B" / "n_pytorch_imagenet_top5preds.npy"
    )


def test_2019_files_rank_beside_full_val_files_and_other_test_sets(tmp_path):
    shared(SEED)
    labels = synthetic_labels()
    write_dataset(tmp_path / "small", labels)
    write_model(tmp_path / "small", "m", labels, range(10))
    rows = ok_csv("-p", SEED / "pytorch_imagenet", "--dir", tmp_path / "small")
    assert len(rows) == 22 and [r["Model"] for r in rows if r["Acc@1 small"]] == ["m"]
    assert next(r for r in rows if r["Model"] == "m")["Acc@1"] == ""  # no val files: an empty cell, not 0

    full = np.repeat(np.arange(1000), 50)
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 50_001)]
    write_dataset(tmp_path / "full", full, names, full_val=True)
    write_model(tmp_path / "full", "mine", full, range(45_000))
    rows = ok_csv("-p", SEED / "pytorch_imagenet", "--dir", tmp_path / "full")
    assert len(rows) == 22 and rows[0]["Model"] == "mine" and rows[0]["Acc@1"] == "90.00"


def test_default_folders_beside_the_script(tmp_path):
    """With no -k/-p the folders beside the script are read; a missing one is fine."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / SCRIPT, project / SCRIPT)
    labels = synthetic_labels()
    write_dataset(project / "keras_imagenet", labels)
    write_model(project / "keras_imagenet", "k1", labels, range(30), platform="keras")
    assert not (project / "pytorch_imagenet").exists()
    proc = run_light("--format", "csv", script=project / SCRIPT, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [(r["Platform"], r["Model"], r["Acc@1"]) for r in csv_rows(proc.stdout)] == [("Keras", "k1", "15.00")]


def test_every_file_at_the_top_level_only(four_models):
    folder, labels, _ = four_models
    write_model(folder / "nested", "hidden", labels, range(10))
    (folder / "notes_pytorch_imagenet_top5preds.npy.bak").write_text("x")
    assert sorted(r["Model"] for r in ok_csv("--dir", folder)) == ["a", "b", "c", "d"]


@pytest.mark.slow
def test_missing_named_folder_is_an_error(tmp_path, four_models):
    folder, _, _ = four_models
    for flag in ("-k", "-p", "--dir"):
        proc = bench("--dir", folder, flag, tmp_path / "nope")
        assert_one_error(proc, tmp_path / "nope")


def test_no_prediction_files_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = bench("-k", tmp_path / "empty", "-p", tmp_path / "empty")
    assert_one_error(proc, "no prediction files", tmp_path / "empty")


def test_a_model_found_twice_is_the_same_copy_whatever_the_folder_order(tmp_path):
    labels = synthetic_labels()
    for folder, right in (("A", 30), ("B", 60)):
        write_dataset(tmp_path / folder, labels)
        write_model(tmp_path / folder, "m", labels, range(right))
    one = bench("--dir", tmp_path / "A", "--dir", tmp_path / "B", "--format", "csv")
    other = bench("--dir", tmp_path / "B", "--dir", tmp_path / "A", "--format", "csv")
    assert one.returncode == other.returncode == 0
    assert one.stdout == other.stdout and by_model(one.stdout)["m"]["Acc@1"] == "15.00"
    for proc in (one, other):
        assert f"{tmp_path / 'B' / 'm_pytorch_imagenet_top5preds.npy'} ignored" in proc.stderr
