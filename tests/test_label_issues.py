"""--label-issues: the models' consensus on the labels, confident learning, the crowd's checks.

Expected figures come from numpy here (top-1 as ``preds[i, argmax(probs[i])]``, the
majority through scipy.stats.mode, the crowd's data mapped through cleanlab's own
ImageFolder-order file list), or from generated files whose changed labels are known.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SEED, SHARED, VAL_FULL_TXT, run_script, shared, sweep_enabled
from helpers import write_dataset

SCRIPT = "imagenet_benchmarking.py"
LABEL_ERRORS = SHARED / "data" / "label-errors"
MTURK_JSON = LABEL_ERRORS / "imagenet_mturk.json"
LEVELS = (50, 60, 70, 80, 90, 100)


def run(*args, cache: Path | None = None) -> subprocess.CompletedProcess:
    return run_script(SCRIPT, *args, *(["--cache-dir", cache] if cache else ["--no-cache"]))


def read_issues(path: Path) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    """({method: [flagged, checked, confirmed]} from the header comment, the rows)."""
    text = path.read_text()
    comments = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    start = comments.index("method,flagged,crowd_checked,crowd_confirmed")
    methods = {}
    for line in comments[start + 1 :]:
        if line.startswith(("consensus", "confident")):
            method, *figures = line.split(",")
            methods[method] = figures
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    return methods, rows


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def numpy_consensus(top1s: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(consensus class, its share of the models, the given label's share) per image, from the
    models' top-1 votes (models x images), as docs/table.md defines them: the most-voted class,
    the given label where it ties for most votes (a tie between two other classes: the lower
    class id, numpy's first maximum)."""
    n_models, n_images = top1s.shape
    counts = np.zeros((n_images, 1000), np.int32)
    for top1 in top1s:  # one vote per model and image
        counts[np.arange(n_images), top1] += 1
    most = counts.max(axis=1)
    given = counts[np.arange(n_images), labels]
    return np.where(given == most, labels, counts.argmax(axis=1)), most / n_models, given / n_models


# --- the 34 models of 2019 against numpy and the crowd ------------------------------------


@pytest.fixture(scope="module")
def seed_votes() -> np.ndarray:
    """34 x 50,000 top-1 classes of the 2019 files."""
    shared(SEED)
    top1 = []
    for platform in ("keras", "pytorch"):
        for preds_path in sorted((SEED / f"{platform}_imagenet").glob("*_top5preds.npy")):
            preds = np.load(preds_path)
            probs = np.load(preds_path.with_name(preds_path.name.replace("top5preds", "top5probs")))
            top1.append(preds[np.arange(len(preds)), np.argmax(probs, axis=1)])
    assert len(top1) == 34
    return np.stack(top1)


@pytest.fixture(scope="module")
def crowd_rows() -> tuple[np.ndarray, np.ndarray]:
    """(checked, confirmed) per row of the standard order, through cleanlab's own file list."""
    entries = json.loads(shared(MTURK_JSON).read_text())
    order = json.loads((LABEL_ERRORS / "imagenet_val_set_index_to_filepath.json").read_text())
    row_of = {int(path.rsplit("_", 1)[1].split(".")[0]): row for row, path in enumerate(order)}
    checked, confirmed = np.zeros(50_000, bool), np.zeros(50_000, bool)
    for entry in entries:
        checked[row_of[entry["id"]]] = True
        confirmed[row_of[entry["id"]]] = entry["mturk"]["given"] < 3
    assert checked.sum() == 5440 and confirmed.sum() == 2916
    return checked, confirmed


@pytest.mark.slow
def test_2019_flagged_counts_and_crowd_confirmation(tmp_path, seed_votes, crowd_rows):
    from scipy import stats

    labels = np.repeat(np.arange(1000), 50)
    majority, votes = stats.mode(seed_votes, axis=0)
    given_votes = (seed_votes == labels).sum(axis=0)
    contradicted = (majority != labels) & (votes > given_votes)
    checked, confirmed = crowd_rows

    out = tmp_path / "issues.csv"
    proc = run(
        "-k",
        SEED / "keras_imagenet",
        "-p",
        SEED / "pytorch_imagenet",
        "--label-issues",
        out,
        "--clean-labels",
        MTURK_JSON,
        "--val-ground-truth",
        shared(VAL_FULL_TXT),
    )
    assert proc.returncode == 0, proc.stderr
    methods, rows = read_issues(out)
    assert "top-1 votes of the 34 models" in proc.stderr
    for level in LEVELS:
        flagged = contradicted & (votes * 100 >= level * 34)
        expected = [int(flagged.sum()), int((flagged & checked).sum()), int((flagged & checked & confirmed).sum())]
        assert [int(x) for x in methods[f"consensus >= {level}%"]] == expected, level
        assert f"{expected[0]:,} images flagged; the crowd checked {expected[1]:,}" in proc.stderr
    assert 0 < int(methods["consensus >= 100%"][0]) < int(methods["consensus >= 50%"][0])

    flagged = contradicted & (votes * 2 >= 34)
    assert sorted(int(r["row"]) for r in rows) == np.flatnonzero(flagged).tolist()
    score = [float(r["score"]) for r in rows]
    assert score == sorted(score, reverse=True)
    truth = dict(line.split() for line in shared(VAL_FULL_TXT).read_text().splitlines())
    for r in rows[:50] + rows[-50:]:
        row = int(r["row"])
        assert int(truth[r["file"]]) == int(r["given_id"]) == labels[row]
        assert float(r["consensus_share"]) == pytest.approx(votes[row] / 34, abs=1e-4)
        assert float(r["given_share"]) == pytest.approx(given_votes[row] / 34, abs=1e-4)
        assert (
            int(r["consensus_id"]) == int(np.bincount(seed_votes[:, row], minlength=1000).argmax())
            or votes[row] * 2 == 34
        )  # a tie between two other classes at exactly half


@pytest.mark.slow
def test_feeding_the_csv_back_ranks_on_consensus_labels(tmp_path, seed_votes):
    """--clean-labels FILE.csv: Clean@1 leaves the written rows out, Fixed@1 relabels them."""
    labels = np.repeat(np.arange(1000), 50)
    out = tmp_path / "issues.csv"
    assert (
        run(
            "-k",
            SEED / "keras_imagenet",
            "-p",
            SEED / "pytorch_imagenet",
            "--label-issues",
            out,
            "--val-ground-truth",
            shared(VAL_FULL_TXT),
        ).returncode
        == 0
    )
    consensus, share, _ = numpy_consensus(seed_votes, labels)
    flagged = (consensus != labels) & (share >= 0.5)  # the rows the CSV holds: flagged at 50%
    fixed = np.where(flagged, consensus, labels)
    assert sorted(int(r["row"]) for r in read_issues(out)[1]) == np.flatnonzero(flagged).tolist()
    proc = run(
        "-k",
        SEED / "keras_imagenet",
        "-p",
        SEED / "pytorch_imagenet",
        "--clean-labels",
        out,
        "--val-ground-truth",
        VAL_FULL_TXT,
        "--format",
        "csv",
    )
    assert proc.returncode == 0, proc.stderr
    assert "the labels were corrected by the consensus of the same models" in proc.stderr
    table = list(csv.DictReader(io.StringIO(proc.stdout)))
    order = {
        (p, m): i
        for i, (p, m) in enumerate(
            (p, path.name.split(f"_{p}_imagenet")[0].lower())
            for p in ("keras", "pytorch")
            for path in sorted((SEED / f"{p}_imagenet").glob("*_top5preds.npy"))
        )
    }
    for row in table:
        top1 = seed_votes[order[(row["Platform"].lower(), row["Model"].lower())]]
        clean = np.sum(top1[~flagged] == labels[~flagged]) / np.sum(~flagged)
        assert row["Clean@1"] == f"{100 * clean:.2f}"
        assert row["Fixed@1"] == f"{100 * np.mean(top1 == fixed):.2f}"


@pytest.mark.sweep
@pytest.mark.skipif(not sweep_enabled(), reason="opt-in sweep: IMAGENET_BENCH_SWEEP=1")
@pytest.mark.filterwarnings("ignore::UserWarning")  # cleanlab: classes with few images
def test_2019_confident_learning_against_cleanlab_here(tmp_path, crowd_rows):
    """The script's confident-learning figures on the 2019 files equal cleanlab run here on a
    mean built here (about a minute: two cleanlab runs on 50,000 x 1000)."""
    from cleanlab.filter import find_label_issues

    labels = np.repeat(np.arange(1000), 50)
    mean = np.zeros((50_000, 1000), np.float64)
    count = 0
    for platform in ("keras", "pytorch"):
        for preds_path in sorted((SEED / f"{platform}_imagenet").glob("*_top5preds.npy")):
            preds = np.load(preds_path)
            probs = np.load(preds_path.with_name(preds_path.name.replace("top5preds", "top5probs"))).astype(np.float64)
            rest = (1 - probs.sum(axis=1)) / 995
            mean += rest[:, None]
            mean[np.arange(50_000)[:, None], preds] += probs - rest[:, None]
            count += 1
    flagged = find_label_issues(labels, (mean / count).astype(np.float32), n_jobs=1)
    checked, confirmed = crowd_rows
    out = tmp_path / "issues.csv"
    proc = run(
        "-k",
        SEED / "keras_imagenet",
        "-p",
        SEED / "pytorch_imagenet",
        "--label-issues",
        out,
        "--confident-learning",
        "--clean-labels",
        MTURK_JSON,
        "--val-ground-truth",
        shared(VAL_FULL_TXT),
    )
    assert proc.returncode == 0, proc.stderr
    methods, _ = read_issues(out)
    got = [int(x) for x in methods["confident learning"]]
    expected = [int(flagged.sum()), int((flagged & checked).sum()), int((flagged & checked & confirmed).sum())]
    assert abs(got[0] - expected[0]) <= 0.002 * expected[0], (got, expected)  # float32 sums in another order
    assert got[2] / got[1] == pytest.approx(expected[2] / expected[1], abs=0.01)


# --- generated files: changed labels are found -------------------------------------------

N_IMAGES, N_MODELS = 400, 9
CHANGED = np.array([3, 17, 40, 41, 99, 150, 222, 300, 301, 399])


def write_sorted_model(folder: Path, model: str, top1: np.ndarray, rng: np.random.Generator, k: int = 5) -> None:
    """Files as this project writes them: sorted by probability, top-1 in column 0."""
    n = len(top1)
    preds = np.empty((n, k), np.int64)
    preds[:, 0] = top1
    for j in range(1, k):  # k distinct classes per row
        preds[:, j] = (top1 + 1 + j * 101 + rng.integers(0, 100, n)) % 1000
    probs = np.sort(rng.dirichlet(np.ones(k + 3), n)[:, :k].astype(np.float32), axis=1)[:, ::-1]
    probs[:, 0] += 0.2
    np.save(folder / f"{model}_pytorch_imagenet_top5preds.npy", preds)
    np.save(folder / f"{model}_pytorch_imagenet_top5probs.npy", np.ascontiguousarray(probs))
    (folder / f"{model}_pytorch_imagenet_manifest.json").write_text("{}")


@pytest.fixture
def changed_labels(tmp_path) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """(folder, true labels, written labels, top1 per model): 20 classes of about 20 images
    (confident learning needs a few per class), a changed label is another of the 20; every
    model is right on the changed images, each 75% right elsewhere, its errors spread over
    all 1000 classes."""
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 20, N_IMAGES) * 50
    written = truth.copy()
    written[CHANGED] = (truth[CHANGED] + 50) % 1000
    folder = tmp_path / "val"
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(N_IMAGES)]
    write_dataset(folder, written, names)
    top1s = []
    for m in range(N_MODELS):
        top1 = np.where(rng.random(N_IMAGES) < 0.75, truth, rng.integers(0, 1000, N_IMAGES))
        top1[CHANGED] = truth[CHANGED]
        write_sorted_model(folder, f"m{m}", top1, rng)
        top1s.append(top1)
    return folder, truth, written, np.stack(top1s)


def test_changed_labels_are_found_at_full_agreement(tmp_path, changed_labels):
    folder, truth, written, top1s = changed_labels
    assert len(np.unique(top1s[0])) > 100  # predictions vary
    out = tmp_path / "issues.csv"
    proc = run("--dir", folder, "--label-issues", out)
    assert proc.returncode == 0, proc.stderr
    methods, rows = read_issues(out)
    full = [r for r in rows if float(r["consensus_share"]) == 1.0]
    assert sorted(int(r["row"]) for r in full) == CHANGED.tolist()
    for r in full:
        row = int(r["row"])
        assert (int(r["given_id"]), int(r["consensus_id"])) == (written[row], truth[row])
        assert r["file"] == f"ILSVRC2012_val_{row + 1:08d}.JPEG" and float(r["given_share"]) == 0.0
    assert methods["consensus >= 100%"] == [str(len(CHANGED)), "", ""]
    assert f"top-1 votes of the {N_MODELS} models scored on the {N_IMAGES:,} images" in proc.stderr
    assert "no crowd-checked data" in proc.stderr

    # fed back: Clean@1 leaves out the flagged rows, Fixed@1 scores them on the consensus class
    proc = run("--dir", folder, "--clean-labels", out, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    consensus, share, _ = numpy_consensus(top1s, written)
    flagged = (consensus != written) & (share >= 0.5)
    assert sorted(int(r["row"]) for r in rows) == np.flatnonzero(flagged).tolist()
    fixed = np.where(flagged, consensus, written)
    assert np.array_equal(fixed[CHANGED], truth[CHANGED])
    table = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(table) == N_MODELS
    for row in table:
        top1 = top1s[int(row["Model"][1:])]
        assert row["Clean@1"] == f"{100 * np.mean(top1[~flagged] == written[~flagged]):.2f}"
        assert row["Fixed@1"] == f"{100 * np.mean(top1 == fixed):.2f}"


def test_votes_are_counted_when_the_score_cache_is_warm(tmp_path, changed_labels):
    """The cache keeps marks, not votes: --label-issues reads every file even after a cached run."""
    folder = changed_labels[0]
    assert run("--dir", folder, cache=tmp_path / "cache").returncode == 0
    assert list((tmp_path / "cache").iterdir())
    out = tmp_path / "issues.csv"
    proc = run("--dir", folder, "--label-issues", out, cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    assert f"top-1 votes of the {N_MODELS} models" in proc.stderr
    assert read_issues(out)[0]["consensus >= 100%"][0] == str(len(CHANGED))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # cleanlab: classes with few images
def test_confident_learning_on_generated_files_against_cleanlab_here(tmp_path, changed_labels):
    """The mean of top-k probabilities (the rest spread over the other 995 classes), built
    here densely per model, through cleanlab here: the same flagged images."""
    from cleanlab.filter import find_label_issues

    folder, _truth, written, _ = changed_labels
    mean = np.zeros((N_IMAGES, 1000))
    for m in range(N_MODELS):
        preds = np.load(folder / f"m{m}_pytorch_imagenet_top5preds.npy")
        probs = np.load(folder / f"m{m}_pytorch_imagenet_top5probs.npy").astype(np.float64)
        dense = np.repeat(((1 - probs.sum(axis=1)) / 995)[:, None], 1000, axis=1)
        for j in range(5):
            dense[np.arange(N_IMAGES), preds[:, j]] = probs[:, j]
        mean += dense / N_MODELS
    expected = np.flatnonzero(find_label_issues(written, mean.astype(np.float32), n_jobs=1))
    assert set(CHANGED) <= set(expected.tolist())

    out = tmp_path / "issues.csv"
    proc = run("--dir", folder, "--label-issues", out, "--confident-learning")
    assert proc.returncode == 0, proc.stderr
    methods, rows = read_issues(out)
    assert sorted(int(r["row"]) for r in rows if r["cleanlab_flagged"] == "1") == expected.tolist()
    assert methods["confident learning"][0] == str(len(expected))


def _cleanlab_here(folder: Path, models: list[str], labels: np.ndarray) -> np.ndarray:
    """cleanlab's flags on the mean of the models' rows, built here densely: each model's k
    probabilities at their classes, the rest of its mass spread over the other 1000 - k."""
    from cleanlab.filter import find_label_issues

    mean = np.zeros((len(labels), 1000))
    for model in models:
        preds = np.load(folder / f"{model}_pytorch_imagenet_top5preds.npy")
        probs = np.load(folder / f"{model}_pytorch_imagenet_top5probs.npy").astype(np.float64)
        k = preds.shape[1]
        dense = np.repeat(((1 - probs.sum(axis=1)) / (1000 - k))[:, None], 1000, axis=1)
        for j in range(k):
            dense[np.arange(len(labels)), preds[:, j]] = probs[:, j]
        mean += dense / len(models)
    return find_label_issues(labels, mean.astype(np.float32), n_jobs=1)


def _as_test_set(folder: Path, name: str) -> None:
    info = json.loads((folder / "dataset.json").read_text())
    (folder / "dataset.json").write_text(json.dumps({**info, "test_set": name}))


def test_models_of_other_test_sets_do_not_vote(tmp_path, changed_labels):
    """A second test set of as many images, whose 12 models all vote for the written labels:
    counted, they would outvote the 9 models on the changed images. The CSV is the one the
    primary test set's models alone give, and the line says how many were not counted."""
    folder, _truth, written, _ = changed_labels
    _as_test_set(folder, "imagenet-val")
    other = tmp_path / "sketch"
    write_dataset(other, written, [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(N_IMAGES)], salt=1)
    _as_test_set(other, "imagenet-sketch")
    rng = np.random.default_rng(8)
    for m in range(12):
        write_sorted_model(other, f"s{m}", written, rng)

    alone = run("--dir", folder, "--label-issues", tmp_path / "alone.csv")
    assert alone.returncode == 0, alone.stderr
    both = run("--dir", folder, "--dir", other, "--label-issues", tmp_path / "both.csv", "--format", "csv")
    assert both.returncode == 0, both.stderr
    assert "Acc@1 imagenet-sketch" in both.stdout.splitlines()[0]  # the other test set was read and ranked
    line = f"top-1 votes of the {N_MODELS} models scored on the {N_IMAGES:,} images of imagenet-val"
    assert f"{line} (12 models of other test sets not counted)" in both.stderr
    assert line in alone.stderr and "not counted" not in alone.stderr
    assert (tmp_path / "both.csv").read_text() == (tmp_path / "alone.csv").read_text()
    assert read_issues(tmp_path / "both.csv")[0]["consensus >= 100%"][0] == str(len(CHANGED))


def test_a_given_label_that_ties_for_most_votes_is_the_consensus(tmp_path):
    """8 models on 60 images: where 4 vote the given label and 4 another class, the given
    label is the consensus and nothing is flagged, even at 50%; 5 against 3 is flagged, and so
    is a 4-4 tie of two other classes."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 20, 60) * 50
    other, third = (labels + 7) % 1000, (labels + 11) % 1000
    top1s = np.repeat(labels[None, :], 8, axis=0)
    top1s[4:, 0:10] = other[0:10]  # 4 given, 4 other: a tie with the given label
    top1s[3:, 10:20] = other[10:20]  # 3 given, 5 other
    top1s[:4, 20:30], top1s[4:, 20:30] = other[20:30], third[20:30]  # 4 and 4, neither the label
    folder = tmp_path / "val"
    write_dataset(folder, labels, [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(60)])
    for m, top1 in enumerate(top1s):
        write_sorted_model(folder, f"m{m}", top1, rng)
    consensus, share, given_share = numpy_consensus(top1s, labels)
    assert np.array_equal(consensus[:10], labels[:10]) and np.all(share[:10] == given_share[:10])  # the rule, here

    out = tmp_path / "issues.csv"
    proc = run("--dir", folder, "--label-issues", out)
    assert proc.returncode == 0, proc.stderr
    methods, rows = read_issues(out)
    assert sorted(int(r["row"]) for r in rows) == list(range(10, 30))
    assert [methods[f"consensus >= {level}%"][0] for level in LEVELS] == ["20", "10", "0", "0", "0", "0"]
    for r in rows:
        row = int(r["row"])
        shares = (0.625, 0.375) if row < 20 else (0.5, 0.0)
        assert (float(r["consensus_share"]), float(r["given_share"])) == shares, r
        assert int(r["given_id"]) == labels[row] and int(r["consensus_id"]) in {other[row], third[row]}
        assert row >= 20 or int(r["consensus_id"]) == other[row]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # cleanlab: classes with few images
def test_models_with_fewer_than_five_columns_vote_but_are_left_out_of_confident_learning(tmp_path, changed_labels):
    """Two of the models, and a third with top-3 files that is sure of every written label: it
    votes in the consensus, and confident learning runs on the other two (cleanlab here on
    their mean, which counting it would change), the line counting it."""
    folder, _truth, written, top1s = changed_labels
    for m in range(2, N_MODELS):
        for path in folder.glob(f"m{m}_pytorch_imagenet_*"):
            path.unlink()
    write_sorted_model(folder, "short", written, np.random.default_rng(9), k=3)
    for model in ("m0", "m1", "short"):  # top-k probabilities that sum to at most 1, as a softmax's do
        path = folder / f"{model}_pytorch_imagenet_top5probs.npy"
        probs = np.load(path)
        if model == "short":
            probs[:, 0] = 0.99  # sure
        np.save(path, (probs / np.maximum(probs.sum(axis=1, keepdims=True), 1.0)).astype(np.float32))
    expected = _cleanlab_here(folder, ["m0", "m1"], written)
    assert not np.array_equal(expected, _cleanlab_here(folder, ["m0", "m1", "short"], written))  # counting it shows
    out = tmp_path / "issues.csv"
    proc = run("--dir", folder, "--label-issues", out, "--confident-learning")
    assert proc.returncode == 0, proc.stderr
    assert "top-1 votes of the 3 models" in proc.stderr
    assert "probabilities of 2 models; 1 with fewer than 5 columns left out" in proc.stderr
    methods, rows = read_issues(out)
    assert sorted(int(r["row"]) for r in rows if r["cleanlab_flagged"] == "1") == np.flatnonzero(expected).tolist()
    assert methods["confident learning"][0] == str(int(expected.sum()))
    consensus, share, _ = numpy_consensus(np.stack([top1s[0], top1s[1], written]), written)
    by_votes = (consensus != written) & (share >= 0.5)  # the short model's vote for the written label counts
    assert (
        sorted(int(r["row"]) for r in rows if r["consensus_id"] != r["given_id"]) == np.flatnonzero(by_votes).tolist()
    )


def _write_top5(folder: Path, model: str, preds: np.ndarray, probs: np.ndarray) -> None:
    np.save(folder / f"{model}_pytorch_imagenet_top5preds.npy", preds.astype(np.int64))
    np.save(folder / f"{model}_pytorch_imagenet_top5probs.npy", probs.astype(np.float32))
    (folder / f"{model}_pytorch_imagenet_manifest.json").write_text("{}")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # cleanlab: classes with few images
def test_fixed_at_1_leaves_out_the_rows_only_confident_learning_flagged(tmp_path):
    """Fed back, a CSV with confident learning's rows: Clean@1 leaves out every row; Fixed@1
    relabels a row to its consensus class and leaves out those whose consensus is the given
    label. 9 models on 400 images of 20 classes: 10 images voted another class by all; on 10
    more, 5 models put the label first (0.35) and another class second (0.34), 4 are sure of
    that other class (0.95), so the votes keep the label and the mean probability does not.
    Expected from numpy's votes and cleanlab run here."""
    rng = np.random.default_rng(11)
    n = 400
    labels = rng.integers(0, 20, n) * 50
    relabelled, split = np.arange(10, 20), np.arange(30, 40)
    other = (labels + 50) % 1000  # another of the 20 classes
    folder = tmp_path / "val"
    write_dataset(folder, labels, [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(n)])
    top1s = []
    for m in range(9):
        preds = (labels[:, None] + 1 + 101 * np.arange(5)) % 1000  # columns 1-4: classes outside the 20
        preds[:, 0] = np.where(rng.random(n) < 0.8, labels, other)  # each model 80% right elsewhere
        probs = np.tile([0.5, 0.1, 0.1, 0.1, 0.1], (n, 1))
        preds[relabelled, 0] = other[relabelled]
        if m < 5:
            preds[split, 0], preds[split, 1] = labels[split], other[split]
            probs[split] = [0.35, 0.34, 0.1, 0.1, 0.1]
        else:
            preds[split, 0] = other[split]
            probs[split] = [0.95, 0.01, 0.01, 0.01, 0.01]
        _write_top5(folder, f"m{m}", preds, probs)
        top1s.append(preds[:, 0])
    top1s = np.stack(top1s)
    consensus, share, _ = numpy_consensus(top1s, labels)
    by_votes = (consensus != labels) & (share >= 0.5)
    by_cleanlab = _cleanlab_here(folder, [f"m{m}" for m in range(9)], labels)
    written_rows = by_votes | by_cleanlab
    kept_label = written_rows & (consensus == labels)  # flagged by confident learning only, given label kept
    assert set(relabelled) <= set(np.flatnonzero(by_votes)) and not by_votes[split].any()
    assert np.flatnonzero(kept_label).tolist() == split.tolist(), "confident learning should flag the split images"

    out = tmp_path / "issues.csv"
    proc = run("--dir", folder, "--label-issues", out, "--confident-learning")
    assert proc.returncode == 0, proc.stderr
    assert sorted(int(r["row"]) for r in read_issues(out)[1]) == np.flatnonzero(written_rows).tolist()
    proc = run("--dir", folder, "--clean-labels", out, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    fixed = np.where(written_rows, consensus, labels)
    table = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(table) == 9
    for row in table:
        top1 = top1s[int(row["Model"][1:])]
        assert row["Clean@1"] == f"{100 * np.mean(top1[~written_rows] == labels[~written_rows]):.2f}"
        assert row["Fixed@1"] == f"{100 * np.mean(top1[~kept_label] == fixed[~kept_label]):.2f}"
    # scoring the kept rows on their given label instead would show in Fixed@1
    assert any(f"{100 * np.mean(top1s[int(row['Model'][1:])] == fixed):.2f}" != row["Fixed@1"] for row in table)


# --- imports, errors -----------------------------------------------------------------------

_IMPORTS = r"""
import runpy, sys
sys.argv = sys.argv[1:]
sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0])
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
print(",".join(m for m in ("cleanlab", "torch", "tensorflow", "sklearn") if m in sys.modules))
"""


@pytest.mark.slow
@pytest.mark.parametrize("extra, loaded", [((), ""), (("--confident-learning",), "cleanlab,sklearn")])
def test_cleanlab_only_when_asked_and_never_torch_or_tensorflow(tmp_path, changed_labels, extra, loaded):
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _IMPORTS,
            str(ROOT / SCRIPT),
            "--dir",
            str(changed_labels[0]),
            "--no-cache",
            "--label-issues",
            str(tmp_path / "i.csv"),
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == loaded


@pytest.mark.slow
def test_bad_input_is_one_error_line(tmp_path, changed_labels):
    folder = changed_labels[0]
    proc = run("--dir", folder, "--confident-learning")  # argparse's own error line, as for -i with -j
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert "error: --confident-learning needs --label-issues" in proc.stderr

    proc = run("--dir", folder, "--label-issues", tmp_path / "no" / "such" / "folder.csv")
    assert proc.returncode == 2 and len(error_lines(proc)) == 1, proc.stderr
    assert "folder.csv" in error_lines(proc)[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "no").exists()

    bad = tmp_path / "bad.csv"
    bad.write_text("rank,row,file,given_id,consensus_id\n1,0,img_1.JPEG,5,7\n")
    proc = run("--dir", folder, "--clean-labels", bad)
    assert proc.returncode == 2 and len(error_lines(proc)) == 1, proc.stderr
    assert str(bad) in error_lines(proc)[0] and "val file name" in error_lines(proc)[0]

    bad.write_text("# only a comment\n")
    proc = run("--dir", folder, "--clean-labels", bad)
    assert proc.returncode == 2 and str(bad) in error_lines(proc)[0], proc.stderr


@pytest.mark.parametrize("flag", ["-i", "-j", "-l"])
def test_image_selection_and_custom_labels_are_refused_with_label_issues(tmp_path, changed_labels, flag):
    """-i/-j/-l pick images and labels for the cAcc columns; --label-issues reports every image with
    its given label, so the two together are refused rather than one silently ignored."""
    np.save(tmp_path / "idx.npy", np.arange(3))
    proc = run("--dir", changed_labels[0], "--label-issues", tmp_path / "i.csv", flag, tmp_path / "idx.npy")
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert "error: --label-issues looks at every image" in proc.stderr and "-i/-j/-l" in proc.stderr
    assert not (tmp_path / "i.csv").exists()
