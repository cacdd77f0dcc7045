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
