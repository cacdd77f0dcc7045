"""imagenet_benchmarking.py, the ranked table script, run as a user runs it.

Expected numbers never come from the code under test: they are the 2019 table
(../shared/reference/seed-2019/seed_table.csv), plain-numpy scoring of the 2019
files written here, scipy's Wilson interval and binomial test, ReaL accuracy
computed here from real.json and val_full.txt, or counts built into small
synthetic prediction folders (N = 200) by construction.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SEED, SHARED, VAL500, VAL_FULL_TXT, run_script, shared

SCRIPT = "imagenet_benchmarking.py"
REAL_JSON = SHARED / "data" / "imagenet-real" / "real.json"
SEED_TABLE = SEED / "seed_table.csv"
SHARED_KERAS_CSV = SHARED / "reference" / "keras_published.csv"
BASE_HEADER = ["Platform", "Model", "Acc@1", "Acc@5", "Rank@1", "Rank@5"]
HEAVY = ("torch", "tensorflow", "keras", "timm", "scipy", "matplotlib")
N = 200

# Where the 2019 table's Rank@5 is wrong (an argsort printed as a rank): the right ranks.
RANK5_FIXED = {("PyTorch", "vgg13"): 26, ("PyTorch", "resnet18"): 27, ("Keras", "mobilenet"): 28}


# --- running the script --------------------------------------------------------------


_LIGHT_WRAPPER = r"""
import os, runpy, sys
script, sys.argv = sys.argv[1], sys.argv[1:]
sys.path.insert(0, os.environ["LIGHT_ROOT"])
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exc:
    code = exc.code
allowed = set(os.environ.get("LIGHT_ALLOWED", "").split(","))
heavy = [m for m in os.environ["LIGHT_HEAVY"].split(",") if m in sys.modules and m not in allowed]
if heavy:
    print("HEAVY IMPORTS: " + ",".join(heavy), file=sys.stderr)
    sys.exit(99)
sys.exit(code if isinstance(code, int) else (0 if code is None else 1))
"""


def run_light(*args, allowed: tuple[str, ...] = (), script: Path = ROOT / SCRIPT,
              cwd: Path | None = None, heavy: tuple[str, ...] = HEAVY) -> subprocess.CompletedProcess:
    """Run the script in-process of a wrapper (runpy) that then fails (exit 99) if a
    ``heavy`` module other than ``allowed`` was imported."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", LIGHT_ROOT=str(ROOT), LIGHT_HEAVY=",".join(heavy),
               LIGHT_ALLOWED=",".join(allowed))
    return subprocess.run([sys.executable, "-c", _LIGHT_WRAPPER, str(script), *map(str, args)],
                          cwd=cwd or ROOT, capture_output=True, text=True, env=env, timeout=600)


def bench(*args) -> subprocess.CompletedProcess:
    return run_script(SCRIPT, *args)


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def by_model(text: str) -> dict[str, dict[str, str]]:
    return {row["Model"]: row for row in csv_rows(text)}


def ok_csv(*args) -> list[dict[str, str]]:
    proc = bench(*args, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    return csv_rows(proc.stdout)


def pct(count: int, n: int) -> str:
    return f"{100 * count / n:.2f}"


def competition_ranks(counts: list[int]) -> list[int]:
    return [1 + sum(other > c for other in counts) for c in counts]


def assert_one_error(proc: subprocess.CompletedProcess, *mentions) -> str:
    """Exit 2, nothing on stdout, one 'error:' line naming ``mentions``, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert [line for line in lines if not line.startswith(("error:", "labels:"))] == [], proc.stderr
    for mention in mentions:
        assert str(mention) in errors[0], (mention, errors[0])
    return errors[0]


def labels_line(proc: subprocess.CompletedProcess) -> str:
    found = [line for line in proc.stderr.splitlines() if line.startswith("labels:")]
    assert len(found) == 1, proc.stderr
    return found[0]


# --- synthetic prediction folders ----------------------------------------------------


def write_model(folder: Path, model: str, labels: np.ndarray, correct1, correct5=(), *, platform="pytorch",
                seed=0, manifest: dict | None = None) -> dict[str, np.ndarray]:
    """One model's files, unsorted like the 2019 ones: the top-1 class sits in a random
    column with the highest probability. Rows ``correct1`` have the label as top-1, rows
    ``correct5`` have it in another column; elsewhere it is absent. Returns preds and top1."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels, dtype=np.int64)
    n, k = len(labels), 5
    rows1, rows5 = np.asarray(correct1, dtype=int), np.asarray(correct5, dtype=int)
    assert not set(rows1.tolist()) & set(rows5.tolist())
    rng = np.random.default_rng(seed)
    preds = (labels[:, None] + 1 + 7 * np.arange(k)) % 1000  # k distinct wrong classes
    probs = rng.uniform(0.01, 0.1, (n, k)).astype(np.float32)
    top = rng.integers(0, k, n)
    probs[np.arange(n), top] = 0.6
    preds[rows1, top[rows1]] = labels[rows1]
    preds[rows5, ((top + 1) % k)[rows5]] = labels[rows5]
    stem = folder / f"{model}_{platform}_imagenet_"
    np.save(f"{stem}top5preds.npy", preds.astype(np.int64))
    np.save(f"{stem}top5probs.npy", probs)
    if manifest is not None or (folder / "dataset.json").exists():
        # files in a folder the prediction scripts made always come with a manifest
        Path(f"{stem}manifest.json").write_text(json.dumps(manifest or {}))
    return {"preds": preds, "top1": preds[np.arange(n), top]}


def expected(model: dict[str, np.ndarray], labels: np.ndarray, mask: np.ndarray | None = None) -> tuple[int, int]:
    """(correct@1, correct@5) computed here with plain numpy."""
    preds, top1 = model["preds"], model["top1"]
    if mask is not None:
        preds, top1 = preds[mask], top1[mask]
    return int(np.sum(top1 == labels)), int(np.sum((preds == labels[:, None]).any(axis=1)))


def write_dataset(folder: Path, labels, names: list[str] | None = None, *, salt: int = 0, full_val: bool = False,
                  with_labels: bool = True, with_files: bool = True) -> str:
    """dataset.json (+ dataset_labels.npy, dataset_files.txt) by hand, as output_folder.claim
    writes them; the fingerprint is the sha256 of the ordered 'name\\tsize\\tlabel' lines."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels, dtype=np.int64)
    names = names or [f"img_{i:05d}.JPEG" for i in range(len(labels))]
    sizes = [1000 + i + salt for i in range(len(labels))]
    digest = hashlib.sha256()
    for name, size, label in zip(names, sizes, labels.tolist()):
        digest.update(f"{name}\t{size}\t{label}\n".encode())
    present = sorted(set(labels.tolist()))
    info = {"schema": "imagenet-bench/dataset/1", "protocol": "test-protocol", "fingerprint": digest.hexdigest(),
            "layout": "imagefolder", "root": "/data/val", "n_images": len(labels),
            "n_classes_present": len(present), "classes_present": present, "full_val": full_val,
            "label_source": "folder names (WordNet ids)", "subset": {}}
    (folder / "dataset.json").write_text(json.dumps(info))
    if with_labels:
        np.save(folder / "dataset_labels.npy", labels)
    if with_files:
        (folder / "dataset_files.txt").write_text("".join(f"{name}\n" for name in names))
    return info["fingerprint"]


def synthetic_labels(seed: int = 1, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1000, n)


@pytest.fixture
def four_models(tmp_path):
    """N=200 in one folder with its dataset files; ties: a and b share Acc@1, a and c Acc@5."""
    folder = tmp_path / "runs"
    labels = synthetic_labels()
    write_dataset(folder, labels)
    models = {
        "a": write_model(folder, "a", labels, range(150), range(150, 180), seed=1),
        "b": write_model(folder, "b", labels, range(50, 200), range(10, 30), seed=2),
        "c": write_model(folder, "c", labels, range(120), range(120, 180), platform="keras", seed=3),
        "d": write_model(folder, "d", labels, range(0, 200, 2), seed=4),
    }
    return folder, labels, models


# --- the 2019 table --------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_truth():
    """Per-image correctness of the 34 models of 2019, scored here with plain numpy."""
    shared(SEED_TABLE)
    labels = np.repeat(np.arange(1000), 50)
    truth = {}
    for platform, name in (("keras", "Keras"), ("pytorch", "PyTorch")):
        for preds_path in sorted((SEED / f"{platform}_imagenet").glob("*_top5preds.npy")):
            model = preds_path.name[: -len(f"_{platform}_imagenet_top5preds.npy")]
            preds = np.load(preds_path)
            probs = np.load(preds_path.with_name(preds_path.name.replace("top5preds", "top5probs")))
            top1 = preds[np.arange(len(preds)), np.argmax(probs, axis=1)]
            truth[(name, model)] = {"top1": top1, "preds": preds, "c1": top1 == labels,
                                    "c5": (preds == labels[:, None]).any(axis=1)}
    assert len(truth) == 34
    return truth


@pytest.fixture(scope="module")
def seed_table():
    with open(shared(SEED_TABLE), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 34
    return {(row["platform"].split()[0], row["model"]): row for row in rows}


@pytest.fixture(scope="module")
def seed_csv():
    shared(SEED)
    proc = bench("-k", SEED / "keras_imagenet", "-p", SEED / "pytorch_imagenet", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    return proc


def test_seed_2019_reproduces_the_published_table(seed_csv, seed_table):
    assert seed_csv.stdout.splitlines()[0].startswith(",".join(BASE_HEADER))
    rows = csv_rows(seed_csv.stdout)
    assert len(rows) == 34
    assert [(r["Platform"], r["Model"]) for r in rows] == list(seed_table)  # seed_table is in Acc@1 order
    for row in rows:
        ref = seed_table[(row["Platform"], row["Model"])]
        key = (row["Platform"], row["Model"])
        assert (row["Acc@1"], row["Acc@5"], row["Rank@1"]) == (ref["acc1"], ref["acc5"], ref["rank1"]), key
        assert int(row["Rank@5"]) == RANK5_FIXED.get(key, int(ref["rank5"])), key
    # The three rows the 2019 table got wrong: it printed 28, 26, 27.
    assert [int(seed_table[key]["rank5"]) for key in RANK5_FIXED] == [28, 26, 27]
    assert "standard order" in labels_line(seed_csv)


def test_seed_2019_counts_and_ranks_match_plain_numpy(seed_csv, seed_truth):
    rows = csv_rows(seed_csv.stdout)
    keys = [(r["Platform"], r["Model"]) for r in rows]
    c1 = [int(seed_truth[key]["c1"].sum()) for key in keys]
    c5 = [int(seed_truth[key]["c5"].sum()) for key in keys]
    assert len(set(c1)) == len(set(c5)) == 34  # no ties in 2019
    assert [int(r["Correct@1"]) for r in rows] == c1
    assert [int(r["Correct@5"]) for r in rows] == c5
    assert [int(r["Rank@1"]) for r in rows] == competition_ranks(c1) == list(range(1, 35))
    assert [int(r["Rank@5"]) for r in rows] == competition_ranks(c5)
    assert {int(r["N"]) for r in rows} == {50_000}
    resnet50 = seed_truth[("PyTorch", "resnet50")]
    assert rows[keys.index(("PyTorch", "resnet50"))]["Acc@1"] == pct(int(resnet50["c1"].sum()), 50_000) == "75.06"


def test_seed_2019_text_table_is_aligned(seed_table):
    shared(SEED)
    proc = bench("-k", SEED / "keras_imagenet", "-p", SEED / "pytorch_imagenet")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 + 34
    assert [cell.strip() for cell in lines[0].split("|")] == BASE_HEADER
    assert set(lines[1]) <= {"-", "+"}
    bars = [i for i, ch in enumerate(lines[0]) if ch == "|"]
    for line in lines[2:]:
        assert [i for i, ch in enumerate(line) if ch == "|"] == bars, line
        platform, model, acc1, acc5, rank1, _ = (cell.strip() for cell in line.split("|"))
        assert acc1 == seed_table[(platform, model)]["acc1"] and acc5 == seed_table[(platform, model)]["acc5"]
    assert lines[2].split("|")[1].strip() == "nasnetlarge"


def test_markdown_json_and_csv_file(tmp_path, seed_table):
    shared(SEED)
    dirs = ("-k", SEED / "keras_imagenet", "-p", SEED / "pytorch_imagenet")
    proc = bench(*dirs, "--format", "markdown", "-o", tmp_path / "table.csv")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "| " + " | ".join(BASE_HEADER) + " |"
    assert lines[1].replace("-", "").replace(":", "").replace("|", "") == ""
    assert len(lines) == 2 + 34 and lines[2].startswith("| Keras | nasnetlarge | 80.83 | 95.27 | 1 | 1 |")
    written = (tmp_path / "table.csv").read_text()
    assert written.startswith(",".join(BASE_HEADER))
    assert [(r["Model"], r["Acc@1"]) for r in csv_rows(written)] == [(m, r["acc1"]) for (_, m), r in seed_table.items()]

    proc = bench(*dirs, "--format", "json", "--csv", tmp_path / "alias.csv")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "alias.csv").read_text() == written
    rows = json.loads(proc.stdout)
    assert len(rows) == 34 and list(rows[0])[:6] == BASE_HEADER
    for row in rows:
        ref = seed_table[(row["Platform"], row["Model"])]
        assert f"{row['Acc@1']:.2f}" == ref["acc1"] and f"{row['Acc@5']:.2f}" == ref["acc5"]
        assert row["Rank@1"] == int(ref["rank1"])


def test_seed_selection_flags_on_the_2019_files(tmp_path, seed_truth):
    """-i on the 2019 files: cAcc@1 over the kept images, sorted by it; Acc@1 unchanged."""
    shared(SEED)
    labels = np.repeat(np.arange(1000), 50)
    omit = np.arange(0, 50_000, 3)
    np.save(tmp_path / "omit.npy", omit)
    rows = ok_csv("-k", SEED / "keras_imagenet", "-p", SEED / "pytorch_imagenet", "-i", tmp_path / "omit.npy")
    mask = np.ones(50_000, dtype=bool)
    mask[omit] = False
    kept = int(mask.sum())
    ccounts = []
    for row in rows:
        truth = seed_truth[(row["Platform"], row["Model"])]
        assert row["Acc@1"] == pct(int(truth["c1"].sum()), 50_000)
        c1 = int(np.sum(truth["top1"][mask] == labels[mask]))
        assert row["cAcc@1"] == pct(c1, kept), row["Model"]
        ccounts.append(c1)
    assert ccounts == sorted(ccounts, reverse=True)
    assert [int(r["cRank@1"]) for r in rows] == competition_ranks(ccounts)


def test_ci_wilson_and_mcnemar_on_the_2019_files(seed_truth):
    stats = pytest.importorskip("scipy.stats")
    shared(SEED)
    rows = ok_csv("-k", SEED / "keras_imagenet", "-p", SEED / "pytorch_imagenet", "--ci")
    previous = None
    for row in rows:
        truth = seed_truth[(row["Platform"], row["Model"])]
        for k in ("1", "5"):
            ci = stats.binomtest(int(truth[f"c{k}"].sum()), 50_000).proportion_ci(method="wilson")
            lo, hi = (float(x) for x in row[f"Acc@{k} 95% CI"].split("-"))
            assert abs(lo - 100 * ci.low) < 0.0051 and abs(hi - 100 * ci.high) < 0.0051, row
        if previous is None:
            assert row["p vs above"] == "" and row["~"] == ""
        else:
            b = int(np.sum(previous["c1"] & ~truth["c1"]))
            c = int(np.sum(~previous["c1"] & truth["c1"]))
            p = stats.binomtest(min(b, c), b + c, 0.5).pvalue
            if p < 1e-300:  # a double cannot hold it: printed as a bound, never 0.0
                assert row["p vs above"] == "<1e-300", row
            else:
                assert float(row["p vs above"]) == pytest.approx(p, rel=5e-3, abs=1e-300), row
            assert row["~"] == ("~" if p >= 0.05 else ""), row
        previous = truth
    assert any(row["~"] == "~" for row in rows) and any(row["~"] == "" for row in rows[1:])
    assert "<1e-300" in [row["p vs above"] for row in rows] and "0.0" not in [row["p vs above"] for row in rows]


def real_sets_in_standard_order() -> list[list[int]]:
    """ReaL label sets of the 50,000 val images, in the 2019 row order (class, then file name)."""
    real = json.loads(shared(REAL_JSON).read_text())
    truth = [line.split() for line in shared(VAL_FULL_TXT).read_text().splitlines() if line.strip()]
    order = sorted(range(len(truth)), key=lambda i: (int(truth[i][1]), truth[i][0]))
    return [real[int(truth[i][0][15:23]) - 1] for i in order]


def padded_sets(sets: list[list[int]]) -> np.ndarray:
    """Label sets as one array, padded with -1 (an empty set: a row of -1)."""
    width = max(len(s) for s in sets)
    return np.array([s + [-1] * (width - len(s)) for s in sets], dtype=np.int64)


def real_accuracy(top1: np.ndarray, sets: list[list[int]] | np.ndarray) -> tuple[int, int]:
    padded = sets if isinstance(sets, np.ndarray) else padded_sets(sets)
    valid = padded[:, 0] >= 0
    hit = (padded == top1[:, None]).any(axis=1) & valid
    return int(hit.sum()), int(valid.sum())


def test_real_labels_on_the_2019_files(seed_truth):
    sets = padded_sets(real_sets_in_standard_order())
    dirs = ("-k", SEED / "keras_imagenet", "-p", SEED / "pytorch_imagenet")
    rows = ok_csv(*dirs, "--real-labels", "--val-ground-truth", VAL_FULL_TXT)  # timm's copy
    explicit = ok_csv(*dirs, "--real-labels", REAL_JSON, "--val-ground-truth", VAL_FULL_TXT)
    assert [r["ReaL@1"] for r in explicit] == [r["ReaL@1"] for r in rows]
    for row in rows:
        correct, counted = real_accuracy(seed_truth[(row["Platform"], row["Model"])]["top1"], sets)
        assert (row["ReaL@1"], row["ReaL N"]) == (pct(correct, counted), str(counted)), row["Model"]
    resnet50 = next(r for r in rows if (r["Platform"], r["Model"]) == ("PyTorch", "resnet50"))
    assert (resnet50["ReaL@1"], resnet50["ReaL N"]) == ("81.98", "46837")  # the reference figure


def test_real_labels_need_file_names():
    shared(SEED)
    proc = bench("-p", SEED / "pytorch_imagenet", "--real-labels")
    assert_one_error(proc, "--real-labels", "--val-ground-truth")


def test_published_columns(seed_truth):
    shared(SEED)
    rows = by_model(bench("-p", SEED / "pytorch_imagenet", "--published", "--format", "csv").stdout)
    assert list(rows["resnet50"])[:10] == BASE_HEADER + ["Pub@1", "Pub@5", "Δ@1", "Δ@5"]
    # torchvision's documented IMAGENET1K_V1 figures
    for model, acc1, acc5 in (("resnet50", 76.13, 92.862), ("alexnet", 56.522, 79.066), ("vgg16", 71.592, 90.382)):
        row = rows[model]
        measured = 100 * seed_truth[("PyTorch", model)]["c1"].sum() / 50_000
        assert (row["Pub@1"], row["Pub@5"]) == (f"{acc1:.2f}", f"{acc5:.2f}")
        assert row["Δ@1"] == f"{measured - acc1:+.2f}"
    keras = by_model(bench("-k", SEED / "keras_imagenet", "--published", "--format", "csv").stdout)
    with open(shared(SHARED_KERAS_CSV), newline="") as handle:
        facts = {("mobilenetV2" if r["model"] == "MobileNetV2" else r["model"].lower()): r for r in csv.DictReader(handle)}
    assert len(keras) == 13
    for model, row in keras.items():
        assert row["Pub@1"] == f"{float(facts[model]['top1']):.2f}", model
        assert row["Pub@5"] == f"{float(facts[model]['top5']):.2f}", model


def test_published_from_manifest_first(tmp_path):
    labels = synthetic_labels()
    folder = tmp_path / "runs"
    write_dataset(folder, labels)
    write_model(folder, "resnet50", labels, range(100), manifest={"published": {"acc1": 40.0, "acc5": 55.5, "source": "test"}})
    write_model(folder, "no_such_model", labels, range(90))
    rows = by_model(bench("--dir", folder, "--published", "--format", "csv").stdout)
    assert (rows["resnet50"]["Pub@1"], rows["resnet50"]["Pub@5"], rows["resnet50"]["Δ@1"]) == ("40.00", "55.50", "+10.00")
    assert (rows["no_such_model"]["Pub@1"], rows["no_such_model"]["Δ@1"]) == ("", "")


def test_plot_writes_a_png(tmp_path, four_models):
    folder, labels, _ = four_models
    write_model(folder, "timed", labels, range(60), manifest={"throughput": {"images_per_s": 123.0}})
    proc = run_light("--dir", folder, "--plot", tmp_path / "chart.png", allowed=("matplotlib",))
    assert proc.returncode == 0, proc.stderr
    data = (tmp_path / "chart.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(data[16:20], "big")
    assert width == 2 * 8 * 120  # two panels: a manifest gives throughput
    assert len(proc.stdout.splitlines()) == 2 + 5


# --- import lightness ------------------------------------------------------------------


@pytest.mark.parametrize("extra, allowed", [
    ((), ()),
    (("--published", "--format", "json"), ()),
    (("--real-labels", "--val-ground-truth", VAL_FULL_TXT), ()),
    (("--ci",), ("scipy",)),
    (("--clean-labels", SHARED / "data" / "label-errors" / "imagenet_mturk.json", "--val-ground-truth", VAL_FULL_TXT,
      "--speed", "--sort", "Clean@1", "--no-cache"), ()),
], ids=["plain", "published-json", "real-labels", "ci", "clean-speed-sort"])
def test_never_imports_heavy_modules(extra, allowed):
    shared(SEED)
    proc = run_light("-k", SEED / "keras_imagenet", "-p", SEED / "pytorch_imagenet", *extra, allowed=allowed)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) >= 34


# Modules a plain table (no option) has no use for. At 34 models most of the table's time over a
# bare numpy script is fixed cost, and importing (here: compiling) each of these is part of it.
NOT_FOR_A_PLAIN_TABLE = HEAVY + ("imagenet_bench.report.label_issues", "imagenet_bench.scoring.clean_labels", "imagenet_bench.datasets.layout",
                                 "imagenet_bench.models.published", "PIL", "socket", "numpy.ma")


def test_plain_table_imports_only_what_it_uses(tmp_path):
    shared(SEED)
    proc = run_light("-k", SEED / "keras_imagenet", "-p", SEED / "pytorch_imagenet", "--cache-dir", tmp_path,
                     heavy=NOT_FOR_A_PLAIN_TABLE)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2 + 34
    assert list(tmp_path.glob("*.npz")), "the score cache was not written (its write is part of the test)"


def test_never_imports_heavy_modules_with_val_dir_and_selection(tmp_path):
    shared(VAL500)
    folder, labels, _ = val500_models(tmp_path)
    np.save(tmp_path / "keep.npy", np.arange(100))
    proc = run_light(VAL500, "--dir", folder, "-j", tmp_path / "keep.npy", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert len(csv_rows(proc.stdout)) == 2


# --- --download --------------------------------------------------------------------------


@pytest.fixture
def seed_server():
    shared(SEED)
    handler = partial(type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
                      directory=str(SEED))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def test_download_then_rank(tmp_path, seed_server, seed_table):
    dest = tmp_path / "dl"
    proc = run_light("--download", "seed-2019", "--download-dir", dest, "--download-url", seed_server,
                     "--format", "csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(list(dest.glob("*_imagenet/*.npy"))) == 68
    rows = csv_rows(proc.stdout)
    assert [(r["Platform"], r["Model"], r["Acc@1"], r["Acc@5"]) for r in rows] == [
        (p, m, r["acc1"], r["acc5"]) for (p, m), r in seed_table.items()]


def test_download_offline_is_one_error_line(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = bench("--download", "seed-2019", "--download-dir", tmp_path / "dl",
                 "--download-url", f"http://127.0.0.1:{port}/")
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert f"http://127.0.0.1:{port}/" in errors[0] and "offline?" in errors[0]
    assert str(tmp_path / "dl" / "keras_imagenet") in errors[0]


# --- synthetic folders: counts, ties, formats -------------------------------------------


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
    for name, r1, r5 in zip(counts, competition_ranks(c1), competition_ranks(c5)):
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
        "x": ("60.00", "1"), "z": ("60.00", "1"), "y": ("60.00", "3")}
    assert "standard order" in labels_line(proc)


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
    for above, row in zip(rows, rows[1:]):
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


# --- label sources --------------------------------------------------------------------------


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


def val500_models(tmp_path: Path) -> tuple[Path, np.ndarray, dict]:
    """Prediction files for ../shared/data/imagenet-val-500 in the scripts' row order
    (class, then file name), labels from val_full.txt."""
    truth = dict(line.split() for line in shared(VAL_FULL_TXT).read_text().splitlines() if line.strip())
    files = sorted((int(truth[p.name]), p.name) for p in VAL500.glob("n*/*.JPEG"))
    assert len(files) == 500
    labels = np.array([label for label, _ in files])
    folder = tmp_path / "val500"
    models = {"m1": write_model(folder, "m1", labels, range(0, 500, 2), range(1, 300, 2), seed=1),
              "m2": write_model(folder, "m2", labels, range(300), seed=2, platform="keras")}
    return folder, labels, {"names": [name for _, name in files], **models}


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


# --- datasets that must not be ranked together -----------------------------------------


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
    assert_one_error(proc, tmp_path / "A" / "m_pytorch_imagenet_top5preds.npy",
                     tmp_path / "B" / "n_pytorch_imagenet_top5preds.npy")


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


# --- folders --------------------------------------------------------------------------------


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


def test_missing_named_folder_is_an_error(tmp_path, four_models):
    folder, _, _ = four_models
    for flag in ("-k", "-p", "--dir"):
        proc = bench("--dir", folder, flag, tmp_path / "nope")
        assert_one_error(proc, tmp_path / "nope")


def test_no_prediction_files_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = bench("-k", tmp_path / "empty", "-p", tmp_path / "empty")
    assert_one_error(proc, "no prediction files", tmp_path / "empty")


# --- bad input ------------------------------------------------------------------------------


def _corrupt(folder: Path, how: str) -> Path:
    """Damage model 'a' in ``folder``; return the file the error must name."""
    preds = folder / "a_pytorch_imagenet_top5preds.npy"
    probs = folder / "a_pytorch_imagenet_top5probs.npy"
    if how == "truncated":
        data = preds.read_bytes()
        preds.write_bytes(data[: len(data) // 2])
        return preds
    if how == "corrupt":
        probs.write_bytes(b"\x00garbage" * 100)
        return probs
    if how == "shape":
        np.save(probs, np.load(probs)[:, :3])
        return probs
    if how == "rows":
        np.save(preds, np.load(preds)[:150])
        np.save(probs, np.load(probs)[:150])
        return preds
    if how == "class":
        array = np.load(preds)
        array[7, 2] = 1000
        np.save(preds, array)
        return preds
    if how == "negative":
        array = np.load(preds)
        array[7, 2] = -1
        np.save(preds, array)
        return preds
    if how == "float":
        np.save(preds, np.load(preds).astype(np.float32))
        return preds
    raise AssertionError(how)


BAD = ["truncated", "corrupt", "shape", "rows", "class", "negative", "float"]


@pytest.mark.parametrize("how", BAD)
def test_one_bad_model_alone_is_one_error_line(tmp_path, how):
    labels = synthetic_labels()
    folder = tmp_path / "runs"
    write_dataset(folder, labels)
    write_model(folder, "a", labels, range(50))
    bad = _corrupt(folder, how)
    assert_one_error(bench("--dir", folder), bad)


@pytest.mark.parametrize("how", BAD)
def test_one_bad_model_among_many_is_a_warning(four_models, how):
    folder, labels, models = four_models
    bad = _corrupt(folder, how)
    proc = bench("--dir", folder, "--format", "csv")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(bad) in warnings[0], proc.stderr
    rows = by_model(proc.stdout)
    assert sorted(rows) == ["b", "c", "d"]
    assert rows["c"]["Acc@1"] == pct(expected(models["c"], labels)[0], N)
    assert [rows[m]["Rank@1"] for m in "bcd"] == ["1", "2", "3"]


def test_bad_manifest_among_many_is_a_warning(four_models):
    folder, _, _ = four_models
    (folder / "a_pytorch_imagenet_manifest.json").write_text("{not json")
    proc = bench("--dir", folder, "--format", "csv")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "a_pytorch_imagenet_manifest.json" in proc.stderr
    assert sorted(by_model(proc.stdout)) == ["b", "c", "d"]


def test_unreadable_dataset_json_is_an_error(four_models):
    folder, _, _ = four_models
    (folder / "dataset.json").write_text("{")
    assert_one_error(bench("--dir", folder), folder / "dataset.json")


def test_unwritable_outputs_are_one_error_line(tmp_path, four_models):
    folder, _, _ = four_models
    for flag, name in (("-o", "t.csv"), ("--plot", "t.png")):
        proc = bench("--dir", folder, flag, tmp_path / "no_such_folder" / name)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and str(tmp_path / "no_such_folder" / name) in errors[0], proc.stderr


def test_labels_of_the_wrong_length(tmp_path, four_models):
    folder, labels, _ = four_models
    np.save(tmp_path / "short.npy", labels[:150])
    assert_one_error(bench("--dir", folder, "--labels", tmp_path / "short.npy"), "top5preds.npy", "150")
    np.save(folder / "dataset_labels.npy", labels[:150])
    assert_one_error(bench("--dir", folder), "top5preds.npy", "150")


def test_labels_file_with_class_out_of_range(tmp_path, four_models):
    folder, labels, _ = four_models
    bad = labels.copy()
    bad[3] = 1000
    np.save(tmp_path / "bad.npy", bad)
    assert_one_error(bench("--dir", folder, "--labels", tmp_path / "bad.npy"), tmp_path / "bad.npy")
    assert_one_error(bench("--dir", folder, "--labels", tmp_path / "missing.npy"), tmp_path / "missing.npy")
    np.save(tmp_path / "mask.npy", np.ones(N, dtype=bool))
    assert_one_error(bench("--dir", folder, "--labels", tmp_path / "mask.npy"), tmp_path / "mask.npy")


# --- 2019 selection flags -----------------------------------------------------------------


@pytest.fixture
def crossing(tmp_path):
    """a: right on rows 0..149 (75%), b: right on rows 50..179 (65%)."""
    labels = synthetic_labels()
    folder = tmp_path / "runs"
    write_dataset(folder, labels)
    models = {"a": write_model(folder, "a", labels, range(150), range(150, 170), seed=1),
              "b": write_model(folder, "b", labels, range(50, 180), range(0, 20), seed=2)}
    return folder, labels, models


def _check_selection(rows, models, labels, mask, custom):
    n = int(mask.sum())
    ccounts = []
    for row in rows:
        model = models[row["Model"]]
        c1, c5 = expected(model, labels)
        assert (row["Acc@1"], row["Acc@5"]) == (pct(c1, N), pct(c5, N))
        cc1, cc5 = expected(model, custom, mask)
        assert (row["cAcc@1"], row["cAcc@5"]) == (pct(cc1, n), pct(cc5, n)), row
        ccounts.append((cc1, cc5))
    assert [c for c, _ in ccounts] == sorted((c for c, _ in ccounts), reverse=True)  # sorted by cAcc@1
    assert [int(r["cRank@1"]) for r in rows] == competition_ranks([c for c, _ in ccounts])
    assert [int(r["cRank@5"]) for r in rows] == competition_ranks([c for _, c in ccounts])
    assert [int(r["Rank@1"]) for r in rows] == competition_ranks([expected(models[r["Model"]], labels)[0] for r in rows])


def test_indices_to_omit(tmp_path, crossing):
    folder, labels, models = crossing
    omit = np.arange(50)
    np.save(tmp_path / "omit.npy", omit)
    proc = bench("--dir", folder, "-i", tmp_path / "omit.npy", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[0].split(",")
    assert header[:10] == BASE_HEADER + ["cAcc@1", "cAcc@5", "cRank@1", "cRank@5"]
    rows = csv_rows(proc.stdout)
    assert [r["Model"] for r in rows] == ["b", "a"]  # b leads once rows 0..49 are left out
    mask = np.ones(N, dtype=bool)
    mask[omit] = False
    _check_selection(rows, models, labels, mask, labels[mask])
    long = bench("--dir", folder, "--indices_to_omit", tmp_path / "omit.npy", "--format", "csv")
    assert long.stdout == proc.stdout


def test_indices_to_keep_with_custom_labels(tmp_path, crossing):
    folder, labels, models = crossing
    keep = np.arange(100, 200)
    custom = labels[keep].copy()
    custom[50:] = models["a"]["top1"][keep][50:]  # a is right on the second half too
    np.save(tmp_path / "keep.npy", keep)
    np.save(tmp_path / "custom.npy", custom)
    rows = ok_csv("--dir", folder, "-j", tmp_path / "keep.npy", "-l", tmp_path / "custom.npy")
    mask = np.zeros(N, dtype=bool)
    mask[keep] = True
    _check_selection(rows, models, labels, mask, custom)
    assert rows[0]["Model"] == "a" and rows[0]["cAcc@1"] == "100.00"
    plain = ok_csv("--dir", folder, "--indices_to_keep", tmp_path / "keep.npy")
    _check_selection(plain, models, labels, mask, labels[keep])


def test_custom_labels_alone_relabel_every_image(tmp_path, crossing):
    """-l alone: N custom labels for all images, not indices of images to leave out."""
    folder, labels, models = crossing
    custom = labels.copy()
    custom[150:] = models["a"]["top1"][150:]
    np.save(tmp_path / "custom.npy", custom)
    rows = ok_csv("--dir", folder, "--custom_labels", tmp_path / "custom.npy")
    _check_selection(rows, models, labels, np.ones(N, dtype=bool), custom)
    a = next(r for r in rows if r["Model"] == "a")
    assert (a["Acc@1"], a["cAcc@1"]) == ("75.00", "100.00")


def test_omit_and_keep_together_is_a_usage_error(tmp_path, crossing):
    folder, _, _ = crossing
    np.save(tmp_path / "idx.npy", np.arange(10))
    proc = bench("--dir", folder, "-i", tmp_path / "idx.npy", "-j", tmp_path / "idx.npy")
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert "-i/--indices_to_omit and -j/--indices_to_keep" in proc.stderr


@pytest.mark.parametrize("flag, values", [
    ("-i", [0, 5, N]), ("-i", [-1, 3]), ("-j", [10, N + 5]), ("-j", [-2]),
])
def test_index_files_out_of_range(tmp_path, crossing, flag, values):
    folder, _, _ = crossing
    np.save(tmp_path / "idx.npy", np.array(values))
    assert_one_error(bench("--dir", folder, flag, tmp_path / "idx.npy"), tmp_path / "idx.npy", "out of range")


def test_custom_labels_of_the_wrong_length_or_range(tmp_path, crossing):
    folder, labels, _ = crossing
    np.save(tmp_path / "keep.npy", np.arange(100))
    np.save(tmp_path / "custom.npy", labels[:99])
    assert_one_error(bench("--dir", folder, "-j", tmp_path / "keep.npy", "-l", tmp_path / "custom.npy"),
                     tmp_path / "custom.npy", "99", "100")
    assert_one_error(bench("--dir", folder, "-l", tmp_path / "custom.npy"), tmp_path / "custom.npy", "200")
    bad = labels.copy()
    bad[0] = 1000
    np.save(tmp_path / "bad.npy", bad)
    assert_one_error(bench("--dir", folder, "-l", tmp_path / "bad.npy"), tmp_path / "bad.npy")
    np.save(tmp_path / "mask.npy", np.ones(N, dtype=bool))
    assert_one_error(bench("--dir", folder, "-i", tmp_path / "mask.npy"), tmp_path / "mask.npy")
    assert_one_error(bench("--dir", folder, "-l", tmp_path / "mask.npy"), tmp_path / "mask.npy")


def test_outputs_without_manifest_in_a_project_folder_are_incomplete(tmp_path):
    """A folder with dataset.json was written by the prediction scripts, where every complete
    model has a manifest; arrays without one were being overwritten when a run stopped."""
    folder = tmp_path / "out"
    folder.mkdir()
    n = 20
    labels = np.arange(n) % 7
    np.save(folder / "dataset_labels.npy", labels)
    (folder / "dataset.json").write_text(json.dumps({"fingerprint": "f" * 64, "n_images": n, "full_val": False}))
    for model in ("a", "b"):
        preds = np.tile(labels[:, None], (1, 5))
        np.save(folder / f"{model}_pytorch_imagenet_top5preds.npy", preds)
        np.save(folder / f"{model}_pytorch_imagenet_top5probs.npy", np.full((n, 5), 0.2, dtype=np.float32))
    (folder / "a_pytorch_imagenet_manifest.json").write_text("{}")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_script("imagenet_benchmarking.py", "-k", empty, "-p", folder)
    assert result.returncode == 1
    assert "b_pytorch_imagenet_manifest.json: missing" in result.stderr
    assert " a " in result.stdout and " b " not in result.stdout


# --- files that lie (issue 9, defect 10) ---------------------------------------------------


def _promise(folder: Path, model: str, platform: str = "pytorch") -> None:
    """A manifest recording both arrays' sha256, as the prediction scripts write it."""
    stem = f"{model}_{platform}_imagenet_"
    outputs = {f"{stem}{s}.npy": hashlib.sha256((folder / f"{stem}{s}.npy").read_bytes()).hexdigest()
               for s in ("top5preds", "top5probs")}
    (folder / f"{stem}manifest.json").write_text(json.dumps({"outputs": outputs}))


@pytest.fixture
def promised(four_models):
    folder, labels, models = four_models
    for model, platform in (("a", "pytorch"), ("b", "pytorch"), ("c", "keras"), ("d", "pytorch")):
        _promise(folder, model, platform)
    return folder, labels, models


def test_swapped_prediction_files_are_left_out_by_name(promised):
    folder, labels, models = promised
    a, b = folder / "a_pytorch_imagenet_top5preds.npy", folder / "b_pytorch_imagenet_top5preds.npy"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    assert len(data_a) == len(data_b) and data_a != data_b
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    proc = bench("--dir", folder, "--format", "csv")
    assert proc.returncode == 1, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and str(a) in warnings[0] + warnings[1] and str(b) in warnings[0] + warnings[1]
    assert all("sha256" in w and "manifest" in w for w in warnings)
    rows = by_model(proc.stdout)
    assert sorted(rows) == ["c", "d"]
    assert rows["c"]["Acc@1"] == pct(expected(models["c"], labels)[0], N)


def test_when_every_file_lies_each_is_named_and_one_error_line_ends_it(promised):
    folder, _, _ = promised
    names = [folder / f"{m}_{p}_imagenet_top5probs.npy" for m, p in (("a", "pytorch"), ("b", "pytorch"),
                                                                       ("c", "keras"), ("d", "pytorch"))]
    for path in names:
        array = np.load(path)
        array[0, 0] += 0.01
        np.save(path, array)
    proc = bench("--dir", folder, "--format", "csv")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert all(str(path) in proc.stderr for path in names), proc.stderr


def test_edited_probabilities_are_left_out_by_name(promised):
    folder, _, _ = promised
    probs = folder / "d_pytorch_imagenet_top5probs.npy"
    array = np.load(probs)
    array[0, 0] += 0.01
    np.save(probs, array)
    proc = bench("--dir", folder, "--format", "csv")
    assert proc.returncode == 1 and sorted(by_model(proc.stdout)) == ["a", "b", "c"]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(probs) in warnings[0], proc.stderr


def test_dataset_labels_out_of_range_is_an_error(four_models):
    folder, labels, _ = four_models
    bad = labels.copy()
    bad[5] = 1000
    np.save(folder / "dataset_labels.npy", bad)
    assert_one_error(bench("--dir", folder), folder / "dataset_labels.npy", "0..999")
    bad[5] = -3
    np.save(folder / "dataset_labels.npy", bad)
    assert_one_error(bench("--dir", folder), folder / "dataset_labels.npy", "0..999")


def test_nan_probabilities_are_a_warning_naming_the_file(four_models):
    folder, labels, models = four_models
    probs = folder / "b_pytorch_imagenet_top5probs.npy"
    array = np.load(probs)
    array[[3, 9]] = np.nan
    np.save(probs, array)
    for _ in range(2):  # the second run reads the score cache: the warning must survive it
        proc = bench("--dir", folder, "--format", "csv")
        assert proc.returncode == 0, proc.stderr
        warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1 and str(probs) in warnings[0] and "NaN" in warnings[0], proc.stderr
        assert sorted(by_model(proc.stdout)) == ["a", "b", "c", "d"]


# --- the score cache ----------------------------------------------------------------------


def _cache_files(home: Path) -> list[Path]:
    return sorted((home / "imagenet-bench" / "scores").glob("*.npz"))


def test_score_cache_is_used_and_never_stale(tmp_path, promised, monkeypatch):
    """In-process: a rerun reads no prediction file; a rewrite of the same size is seen
    (mtime_ns changes), and so is one whose mtime is set back (ctime_ns changes)."""
    from imagenet_bench.outputs import predfiles
    from imagenet_bench.scoring import score as scoring
    from imagenet_bench.scoring.measures import TopK

    folder, labels, models = promised
    root = tmp_path / "cache"
    reads = []
    real_load = predfiles.load
    monkeypatch.setattr(predfiles, "load", lambda files: reads.append(files.model) or real_load(files))

    def counts() -> dict[str, int]:
        [test_set] = scoring.group(scoring.find_files([scoring.PredictionFolder(folder, True)]), [])
        failures: list[str] = []
        cards = scoring.score(test_set, [TopK("acc1", labels, 1), TopK("acc5", labels, 5)], root, failures)
        assert not failures
        return {c.files.model: c.answers["acc1"].count for c in cards}

    want = {m: expected(models[m], labels)[0] for m in "abcd"}
    assert counts() == want and sorted(reads) == ["a", "b", "c", "d"]
    reads.clear()
    assert counts() == want and reads == []  # all from the cache

    # model a's files rewritten with other content of the same size (a legitimate rerun: new manifest)
    new_a = write_model(folder, "a", labels, range(20), seed=9)
    _promise(folder, "a")
    assert counts() == {**want, "a": 20} and reads == ["a"]
    reads.clear()

    # the same again, with every timestamp put back: ctime_ns still moves
    preds = folder / "a_pytorch_imagenet_top5preds.npy"
    before = os.stat(preds)
    array = np.load(preds)
    array[:30] = np.asarray(new_a["preds"])[:30]
    top = np.argmax(np.load(folder / "a_pytorch_imagenet_top5probs.npy"), axis=1)
    array[np.arange(30), top[:30]] = labels[:30]  # right on rows 0..29 now
    np.save(preds, array)
    os.utime(preds, ns=(before.st_atime_ns, before.st_mtime_ns))
    _promise(folder, "a")
    assert os.stat(preds).st_size == before.st_size and os.stat(preds).st_mtime_ns == before.st_mtime_ns
    assert counts()["a"] == int(np.sum(array[np.arange(N), top] == labels)) and reads == ["a"]


def test_score_cache_sees_new_labels_and_can_be_off(tmp_path, four_models, score_cache_home):
    folder, labels, models = four_models
    before = set(_cache_files(score_cache_home))
    first = ok_csv("--dir", folder)
    assert len(set(_cache_files(score_cache_home)) - before) == 1
    assert ok_csv("--dir", folder) == first
    relabelled = labels.copy()
    relabelled[:100] = models["d"]["top1"][:100]
    np.save(folder / "dataset_labels.npy", relabelled)
    rows = by_model(bench("--dir", folder, "--format", "csv").stdout)
    assert rows["d"]["Acc@1"] == pct(expected(models["d"], relabelled)[0], N) != by_model_rows(first)["d"]["Acc@1"]

    count = len(_cache_files(score_cache_home))
    assert ok_csv("--dir", folder, "--no-cache") == csv_rows(bench("--dir", folder, "--format", "csv").stdout)
    ok_csv("--dir", folder, "--no-cache", "-l", folder / "dataset_labels.npy")  # new measures, no cache written
    assert len(_cache_files(score_cache_home)) == count

    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")  # the cache can never be written there: the table still comes out
    assert ok_csv("--dir", folder, "--cache-dir", blocked / "sub") == ok_csv("--dir", folder, "--no-cache")


def test_torn_score_cache_reads_as_empty(tmp_path, four_models):
    """The cache is written without fsync (a cache may be lost): a file torn by a power cut
    must never give other marks. Here bytes of the first model's Acc@1 marks are flipped in
    place (same size): zip's CRC refuses the file, the marks come from the prediction files
    (--ci's McNemar tests use every mark, not only the counts) and the cache is rewritten."""
    import zipfile

    folder, _, _ = four_models
    cache = tmp_path / "cache"
    want = ok_csv("--dir", folder, "--ci", "--no-cache")
    assert ok_csv("--dir", folder, "--ci", "--cache-dir", cache) == want
    [path] = cache.glob("*.npz")
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("marks_acc1.npy")
        member = archive.read(info)
    local = path.read_bytes()[info.header_offset:info.header_offset + 30]
    start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
    npy_header = 10 + int.from_bytes(member[8:10], "little")  # .npy version 1: magic, version, length, header
    torn = bytearray(path.read_bytes())
    for i in range(start + npy_header, start + npy_header + 5):  # the first 40 images of the first model
        torn[i] ^= 0xFF
    path.write_bytes(bytes(torn))
    assert ok_csv("--dir", folder, "--ci", "--cache-dir", cache) == want
    assert path.read_bytes() != bytes(torn)  # rewritten from the files
    assert ok_csv("--dir", folder, "--ci", "--cache-dir", cache) == want


def by_model_rows(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["Model"]: row for row in rows}


def test_read_only_download_folder_ranks(tmp_path, four_models):
    folder, _, _ = four_models
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)
    try:
        assert len(ok_csv("--dir", folder, "--cache-dir", tmp_path / "c")) == 4
    finally:
        folder.chmod(0o755)


# --- one row per model across test sets -------------------------------------------------------


def _test_set_folder(folder: Path, name: str, n: int, seed: int, accuracy: dict[str, int]) -> dict:
    """A folder of another test set: dataset.json with its test_set, labels, and one model per
    entry of ``accuracy`` (model: images right), each with a manifest."""
    labels = synthetic_labels(seed, n)
    write_dataset(folder, labels, salt=seed)
    info = json.loads((folder / "dataset.json").read_text())
    (folder / "dataset.json").write_text(json.dumps({**info, "test_set": name}))
    return {m: expected(write_model(folder, m, labels, range(right), seed=seed), labels)[0] / n
            for m, right in accuracy.items()}


@pytest.fixture
def test_sets(tmp_path):
    runs = tmp_path / "runs"
    val = _test_set_folder(runs / "val", "imagenet-val", 200, 1, {"a": 150, "b": 120, "c": 100, "d": 60})
    v2 = _test_set_folder(runs / "v2", "imagenetv2-matched-frequency", 150, 2, {"a": 100, "b": 70, "c": 60})
    sketch = _test_set_folder(runs / "sketch", "imagenet-sketch", 100, 3, {"a": 40, "b": 45, "c": 20, "d": 5})
    return runs, {"imagenet-val": val, "imagenetv2-matched-frequency": v2, "imagenet-sketch": sketch}


def _logit(p):
    p = np.asarray(p, dtype=float)
    return np.log(p / (1 - p))


def _effective_robustness(val: dict, test: dict, baseline) -> dict:
    """Independent of the code under test: scipy's linregress in logit space."""
    from scipy.stats import linregress

    fit = linregress(_logit([val[m] for m in baseline]), _logit([test[m] for m in baseline]))
    return {m: 100 * (test[m] - 1 / (1 + np.exp(-(fit.slope * _logit(val[m]) + fit.intercept)))) for m in test}


def test_one_row_per_model_across_test_sets(test_sets):
    runs, acc = test_sets
    val = acc["imagenet-val"]
    rows = ok_csv("-r", runs)
    assert [r["Model"] for r in rows] == ["a", "b", "c", "d"]  # by val Acc@1
    for name in ("imagenetv2-matched-frequency", "imagenet-sketch"):
        er = _effective_robustness(val, acc[name], sorted(acc[name]))
        for row in rows:
            m = row["Model"]
            if m not in acc[name]:
                assert row[f"Acc@1 {name}"] == row[f"Δ {name}"] == row[f"ER {name}"] == ""
                continue
            assert row[f"Acc@1 {name}"] == f"{100 * acc[name][m]:.2f}"
            assert row[f"Δ {name}"] == f"{100 * (acc[name][m] - val[m]):+.2f}"
            assert float(row[f"ER {name}"]) == pytest.approx(er[m], abs=0.006), (name, m)
    # the folders named in another order, and by --dir: the same table
    by_dir = bench("--dir", runs / "sketch", "--dir", runs / "val", "--dir", runs / "v2", "--format", "csv")
    assert csv_rows(by_dir.stdout) == rows


def test_er_baseline_sort_and_json(test_sets):
    runs, acc = test_sets
    val, sketch = acc["imagenet-val"], acc["imagenet-sketch"]
    rows = ok_csv("-r", runs, "--er-baseline", "[abc]", "--sort", "ER imagenet-sketch")
    er = _effective_robustness(val, sketch, ["a", "b", "c"])
    assert [r["Model"] for r in rows] == sorted(sketch, key=lambda m: -er[m])
    assert all(float(r["ER imagenet-sketch"]) == pytest.approx(er[r["Model"]], abs=0.006) for r in rows)
    proc = bench("-r", runs, "--format", "json")
    data = json.loads(proc.stdout)
    assert data[3]["Model"] == "d" and data[3]["Acc@1 imagenetv2-matched-frequency"] is None
    assert_one_error(bench("-r", runs, "--sort", "nope"), "--sort nope")


def test_table_object_for_test_sets(test_sets):
    """The Table the renderers (and the HTML report) receive: test_sets, fits, datasets."""
    from imagenet_bench.scoring import score as scoring
    from imagenet_bench.report import table_run

    runs, acc = test_sets
    built = table_run.build(table_run.TableOptions(folders=scoring.output_folders(runs)))
    t = built.table
    assert t.test_sets == ["imagenet-val", "imagenet-sketch", "imagenetv2-matched-frequency"]
    assert [d["name"] for d in t.datasets] == t.test_sets and [d["n_images"] for d in t.datasets] == [200, 100, 150]
    from scipy.stats import linregress

    fit = linregress(_logit([acc["imagenet-val"][m] for m in "abc"]),
                     _logit([acc["imagenetv2-matched-frequency"][m] for m in "abc"]))
    v2 = t.fits["imagenetv2-matched-frequency"]
    assert v2["slope"] == pytest.approx(fit.slope) and v2["intercept"] == pytest.approx(fit.intercept)
    assert v2["baseline"] == ["pytorch a", "pytorch b", "pytorch c"]
    d = next(r for r in t.rows if r["model"] == "d")
    assert d["acc1:imagenetv2-matched-frequency"] is None and d["er:imagenetv2-matched-frequency"] is None
    assert d["manifests"]["imagenetv2-matched-frequency"] is None and d["source"] == "torchvision"
    assert d["delta:imagenet-sketch"] == pytest.approx(100 * (acc["imagenet-sketch"]["d"] - acc["imagenet-val"]["d"]))


def test_published_on_another_dataset_says_so(test_sets):
    runs, _ = test_sets
    proc = bench("--dir", runs / "val", "--published")
    assert proc.returncode == 0, proc.stderr
    assert "published figures are for the full 50,000-image val set" in proc.stderr
    assert "50,000-image" not in bench("--dir", runs / "val").stderr
    # Another test set: its own published figures (issue 11), never the val ones
    proc = bench("--dir", runs / "v2", "--published")
    assert "published figures are for the whole imagenetv2-matched-frequency test set" in proc.stderr
    assert "50,000-image" not in proc.stderr


def test_plot_draws_a_panel_per_test_set(tmp_path, test_sets):
    pytest.importorskip("matplotlib")
    runs, _ = test_sets
    proc = bench("-r", runs, "--plot", tmp_path / "t.png")
    assert proc.returncode == 0, proc.stderr
    from PIL import Image

    with Image.open(tmp_path / "t.png") as image:  # three panels side by side: bars + two test sets
        assert image.size[0] > 2.5 * image.size[1] or image.size[0] >= 3 * 8 * 120 * 0.9


# --- accuracy on corrected labels -----------------------------------------------------------

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

    rows = ok_csv("-k", SEED / "keras_imagenet", "-p", SEED / "pytorch_imagenet",
                  "--clean-labels", MTURK_JSON, "--val-ground-truth", shared(VAL_FULL_TXT))
    keys = [(r["Platform"], r["Model"]) for r in rows]
    for column, rank, move, keep, truth_labels in (("Clean@1", "Clean rank", "Clean Δrank", keep_drop, labels),
                                                   ("Fixed@1", "Fixed rank", "Fixed Δrank", keep_fix, fixed)):
        counts = [int(np.sum(seed_truth[k]["top1"][keep] == truth_labels[keep])) for k in keys]
        assert [r[column] for r in rows] == [pct(c, int(keep.sum())) for c in counts]
        assert [int(r[rank]) for r in rows] == competition_ranks(counts)
        assert [int(r[move]) for r in rows] == [int(r["Rank@1"]) - c for r, c in zip(rows, competition_ranks(counts))]
        assert any(int(r[move]) != 0 for r in rows)  # the paper's point: rankings move


def test_clean_labels_need_val_file_names(tmp_path, four_models):
    folder, _, _ = four_models
    shared(MTURK_JSON)
    assert_one_error(bench("-p", shared(SEED / "pytorch_imagenet"), "--clean-labels", MTURK_JSON), "--clean-labels")
    assert_one_error(bench("--dir", folder, "--clean-labels", MTURK_JSON), "img_00000.JPEG", "val file name")
    assert_one_error(bench("--dir", folder, "--clean-labels", tmp_path / "nope.json"), tmp_path / "nope.json",
                     "--download label-errors")


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
    handler = partial(type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
                      directory=str(mirror))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        proc = bench("--download", "label-errors", "--download-url", f"http://127.0.0.1:{server.server_port}/",
                     "--download-dir", tmp_path / "dl")
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "mturk" / "imagenet_mturk.json").read_bytes() == data


# --- accuracy beside cost ---------------------------------------------------------------------


def test_speed_columns_and_frontier_per_device(tmp_path):
    labels = synthetic_labels()
    folder = tmp_path / "runs"
    write_dataset(folder, labels)
    spec = {  # model: (images right, device, images/s, params)
        "a": (150, "NVIDIA A100", 100.0, 25_000_000), "b": (120, "NVIDIA A100", 300.0, 5_000_000),
        "c": (100, "NVIDIA A100", 200.0, None), "d": (90, "cpu", 20.0, 3_000_000),
    }
    for model, (right, device, speed, params) in spec.items():
        manifest = {"device": {"name": "cuda", "model": device}, "batch_size": 64,
                    "throughput": {"images_per_s": speed}, "request": {"source": "timm"}}
        if params:
            manifest["params"] = params
        write_model(folder, model, labels, range(right), manifest=manifest)
    rows = by_model_rows(ok_csv("--dir", folder, "--speed"))
    assert by_model_rows(ok_csv("--dir", folder, "--speed")) == rows  # the rerun takes manifests from the cache
    # c is beaten by b (more accurate and faster on the same device); d is alone on the CPU
    assert {m: r["Frontier"] for m, r in rows.items()} == {"a": "*", "b": "*", "c": "", "d": "*"}
    assert (rows["a"]["Device"], rows["a"]["images/s"], rows["a"]["Batch"], rows["a"]["Params (M)"]) == \
        ("NVIDIA A100", "100.0", "64", "25.0")
    assert rows["c"]["Params (M)"] == "" and rows["c"]["GFLOPs"] == ""


def test_speed_costs_from_the_registries_data_where_manifests_lack_them(seed_dirs):
    """torchvision documents resnet50 (IMAGENET1K_V1) at 25.6 M parameters and 4.09 GFLOPs;
    keras.io lists Xception at 22.9 M parameters and no GFLOPs. The 2019 files have no
    manifest: no speed, no device, so no frontier mark."""
    keras, pytorch = seed_dirs
    rows = {(r["Platform"], r["Model"]): r for r in ok_csv("-k", keras, "-p", pytorch, "--speed")}
    assert (rows["PyTorch", "resnet50"]["Params (M)"], rows["PyTorch", "resnet50"]["GFLOPs"]) == ("25.6", "4.09")
    assert (rows["Keras", "xception"]["Params (M)"], rows["Keras", "xception"]["GFLOPs"]) == ("22.9", "")
    assert all(r["images/s"] == r["Device"] == r["Frontier"] == "" for r in rows.values())


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


def test_label_errors_download_offline_says_where_to_put_the_file(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = bench("--download", "label-errors", "--download-dir", tmp_path / "dl",
                 "--download-url", f"http://127.0.0.1:{port}/")
    error = assert_one_error(proc, "offline?", "cleanlab/label-errors", tmp_path / "dl" / "mturk")
    assert "5457895eee26e49187de5c4d6617b9de6f172221" in error
