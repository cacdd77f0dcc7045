"""--calibration, --selective and --factors (issue 22), checked against independent
computations: ECE against the imagenet-x package's own ``estimated_calibration_error``, the
factor error ratios against its ``get_factor_accuracies`` and ``error_ratio`` fed CSVs of file
name, predicted class and probability written here; AURC and the coverages against numpy
over the sorted confidences (ties by linear interpolation of the errors over a tied group,
checked itself against every order of a small tied set); Brier and MCE against numpy.
A generated model whose confidence is its correctness has ECE 0 and E-AURC 0. ECE, Brier and
AURC on the corrected labels (--clean-labels) against imagenet-x and numpy over the images
cleanlab's JSON, read here, does not mark as label errors; --plot's declared panels counted
from the saved figure's own Axes."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_html_report import browser  # noqa: F401 (the fixture: Chromium through Selenium)

from conftest import SEED, SHARED, run_script, shared
from helpers import REAL_JSON, SCRIPT, VAL_FULL_TXT, assert_one_error, write_dataset

pytestmark = pytest.mark.slow  # each runs the table script
EVIL = "<img src=x onerror=alert(1)>"

PLATFORMS = {"keras": "Keras", "pytorch": "PyTorch"}
CROSS_CHECKED = ("resnet50", "inceptionv3", "mobilenet", "vgg16")  # through imagenet-x's pandas code: a few
MTURK_JSON = SHARED / "data" / "label-errors" / "imagenet_mturk.json"
GRADED_ARGS = ("--calibration", "--selective", "--factors", "--real-labels", REAL_JSON, "--clean-labels", MTURK_JSON)


def _seed_models() -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """(platform name, model) -> (top-1 class, top-1 probability), from the 2019 files (unsorted:
    the top-1 is the most probable column)."""
    found = {}
    for platform, name in PLATFORMS.items():
        for path in sorted(shared(SEED / f"{platform}_imagenet").glob("*_top5probs.npy")):
            model = path.name[: -len(f"_{platform}_imagenet_top5probs.npy")]
            probs = np.load(path)
            preds = np.load(str(path).replace("top5probs", "top5preds"))
            column = probs.argmax(axis=1)
            rows = np.arange(len(probs))
            found[(name, model)] = (preds[rows, column], probs[rows, column].astype(np.float64))
    return found


def _standard_names() -> list[str]:
    """Val file names in the standard order (by class, then name), from val_full.txt by hand."""
    pairs = [line.split() for line in shared(VAL_FULL_TXT).read_text().splitlines() if line.strip()]
    return [Path(name).stem + ".JPEG" for name, label in sorted(pairs, key=lambda p: (int(p[1]), Path(p[0]).stem))]


def _table(*args, env: dict | None = None) -> list[dict]:
    proc = run_script(
        SCRIPT,
        "-k",
        SEED / "keras_imagenet",
        "-p",
        SEED / "pytorch_imagenet",
        "--val-ground-truth",
        VAL_FULL_TXT,
        "--format",
        "json",
        *args,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def seed() -> dict:
    return _seed_models()


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> dict[tuple[str, str], dict]:
    cache = tmp_path_factory.mktemp("cache")
    records = _table(*GRADED_ARGS, "--cache-dir", cache)
    return {(r["Platform"], r["Model"]): r for r in records} | {("cache", ""): {"dir": cache}}


def _rows(table: dict) -> dict:
    return {k: v for k, v in table.items() if k[0] != "cache"}


def expected_aurc(confidence: np.ndarray, right: np.ndarray) -> float:
    """Mean over k = 1..N of the errors among the k most confident / k, where the errors within
    a group of tied confidences grow linearly (np.interp between the groups' ends)."""
    order = np.argsort(-confidence)
    conf, wrong = confidence[order], ~right[order]
    ends = np.r_[np.flatnonzero(conf[1:] != conf[:-1]) + 1, len(conf)]
    k = np.arange(1, len(conf) + 1)
    errors = np.interp(k, np.r_[0, ends], np.r_[0, np.cumsum(wrong)[ends - 1]])
    return float(np.mean(errors / k))


def expected_coverage(confidence: np.ndarray, right: np.ndarray, target: float) -> float | None:
    """The largest share of images with confidence >= t, over every t in the data, whose
    accuracy >= target: per distinct t, the images at or above it by searchsorted on the
    ascending confidences, and their right ones by a cumulative sum in that order."""
    order = np.argsort(confidence)
    ascending, right_sorted = confidence[order], right[order]
    right_from = np.r_[np.cumsum(right_sorted[::-1])[::-1], 0]  # right answers at position i or later
    first = np.searchsorted(ascending, np.unique(confidence), side="left")
    accepted, correct = len(confidence) - first, right_from[first]
    ok = correct >= (target - 1e-12) * accepted
    return float(accepted[ok].max() / len(confidence)) if ok.any() else None


def test_the_tie_rule_is_the_mean_over_every_order_of_the_tied_images():
    confidence = np.array([0.9, 0.9, 0.9, 0.5, 0.5, 0.2])
    right = np.array([True, False, True, False, True, False])
    orders = []
    for first in itertools.permutations(range(3)):
        for second in itertools.permutations(range(3, 5)):
            order = np.r_[first, second, 5]
            wrong = ~right[order]
            orders.append(np.mean(np.cumsum(wrong) / np.arange(1, 7)))
    assert expected_aurc(confidence, right) == pytest.approx(np.mean(orders), abs=1e-12)
    from imagenet_bench.scoring import selective
    from imagenet_bench.scoring.confidences import Confidences

    assert selective.numbers(Confidences.of(confidence, right))[2] == pytest.approx(np.mean(orders), abs=1e-12)


def test_selective_against_numpy_on_small_sets_with_many_ties():
    """Sets of 1-60 images, half with confidences of a few levels (many ties, errors inside
    and at the edges of tied groups), against the numpy definitions above."""
    from imagenet_bench.scoring import selective
    from imagenet_bench.scoring.confidences import Confidences

    rng = np.random.default_rng(0)
    for trial in range(600):
        n, levels = int(rng.integers(1, 60)), int(rng.integers(1, 12))
        confidence = rng.integers(0, levels, n) / levels if trial % 2 else rng.random(n)
        right = rng.random(n) < rng.random()
        got = selective.numbers(Confidences.of(confidence, right))
        assert got[1] == np.count_nonzero(~right)
        assert got[2] == pytest.approx(expected_aurc(confidence, right), abs=1e-12), trial
        for target, value in zip((95, 99), got[3:], strict=True):
            cov = expected_coverage(confidence, right, target / 100)
            assert np.isnan(value) if cov is None else value == pytest.approx(cov, abs=1e-12), (trial, target)


def test_calibration_against_imagenet_x_and_numpy(table, seed):
    from imagenet_x.aggregate import estimated_calibration_error

    labels = np.repeat(np.arange(1000), 50)
    rows = _rows(table)
    assert len(rows) == 34
    for key, (top1, conf) in seed.items():
        right = top1 == labels
        row = rows[key]
        assert row["ECE"] == pytest.approx(100 * estimated_calibration_error(right, conf), abs=1e-9)
        assert row["Brier"] == pytest.approx(np.mean((conf - right) ** 2), abs=1e-12)
        bins = np.searchsorted(np.linspace(0, 1, 16)[1:-1], conf)
        gaps = [abs(right[bins == b].mean() - conf[bins == b].mean()) for b in range(15) if np.any(bins == b)]
        assert row["MCE"] == pytest.approx(100 * max(gaps), abs=1e-9)
        assert row["Mean p@1"] == pytest.approx(100 * conf.mean(), abs=1e-9)
        assert row["p@1-Acc"] == pytest.approx(100 * (conf.mean() - right.mean()), abs=1e-9)


def test_calibration_on_real_labels_against_imagenet_x(table, seed):
    from imagenet_x.aggregate import estimated_calibration_error

    sets = json.loads(shared(REAL_JSON).read_text())
    number = [int(n[len("ILSVRC2012_val_") : -len(".JPEG")]) for n in _standard_names()]
    real = [sets[i - 1] for i in number]
    kept = np.array([bool(s) for s in real])
    rows = _rows(table)
    for key in [("PyTorch", "resnet50"), ("Keras", "inceptionv3")]:
        top1, conf = seed[key]
        right = np.array([c in s for c, s in zip(top1.tolist(), real, strict=True)])
        expected = 100 * estimated_calibration_error(right[kept], conf[kept])
        assert rows[key]["ECE ReaL"] == pytest.approx(expected, abs=1e-9)


def test_calibration_on_corrected_labels_against_imagenet_x_and_numpy(table, seed):
    """--clean-labels: the images the crowd found mislabelled (fewer than 3 of 5 workers chose
    the given label) are left out, the rest judged by their given labels; rows matched through
    the val file names of the standard order, the errors read from cleanlab's JSON here."""
    from imagenet_x.aggregate import estimated_calibration_error

    entries = json.loads(shared(MTURK_JSON).read_text())
    mislabelled = {e["id"] for e in entries if e["mturk"]["given"] < 3}
    number = [int(n[len("ILSVRC2012_val_") : -len(".JPEG")]) for n in _standard_names()]
    kept = np.array([n not in mislabelled for n in number])
    assert kept.sum() == 47_084
    labels = np.repeat(np.arange(1000), 50)
    rows = _rows(table)
    for key in [("PyTorch", "resnet50"), ("Keras", "inceptionv3"), ("PyTorch", "inception_v3"), ("Keras", "vgg16")]:
        top1, conf = seed[key]
        right, conf = (top1 == labels)[kept], conf[kept]
        row = rows[key]
        assert row["ECE Clean"] == pytest.approx(100 * estimated_calibration_error(right, conf), abs=1e-9)
        assert row["ECE Clean"] != pytest.approx(row["ECE"], abs=1e-6)  # another set of images
        assert row["Brier Clean"] == pytest.approx(np.mean((conf - right) ** 2), abs=1e-12)
        assert row["p@1-Acc Clean"] == pytest.approx(100 * (conf.mean() - right.mean()), abs=1e-9)
        assert row["AURC Clean"] == pytest.approx(100 * expected_aurc(conf, right), abs=1e-9)


def test_selective_against_numpy_over_sorted_confidences(table, seed):
    labels = np.repeat(np.arange(1000), 50)
    rows = _rows(table)
    for key, (top1, conf) in seed.items():
        right = top1 == labels
        aurc = expected_aurc(conf, right)
        n, r = len(right), int(right.sum())
        k = np.arange(1, n + 1)
        best = float(np.mean(np.maximum(k - r, 0) / k))
        row = rows[key]
        assert row["AURC"] == pytest.approx(100 * aurc, abs=1e-9)
        assert row["E-AURC"] == pytest.approx(100 * (aurc - best), abs=1e-9)
        for target in (95, 99):
            cov = expected_coverage(conf, right, target / 100)
            assert row[f"Cov@{target}"] == (None if cov is None else pytest.approx(100 * cov, abs=1e-9)), target


def test_factors_against_imagenet_x(table, seed, tmp_path):
    import imagenet_x

    names = _standard_names()
    folder = tmp_path / "predictions"
    folder.mkdir()
    chosen = [key for key in seed if key[1] in CROSS_CHECKED]
    for platform, model in chosen:
        top1, conf = seed[(platform, model)]
        lines = ["file_name,predicted_class,predicted_probability"]
        lines += [f"{n},{c},{p!r}" for n, c, p in zip(names, top1.tolist(), conf.tolist(), strict=True)]
        (folder / f"{platform}-{model}.csv").write_text("\n".join(lines) + "\n")
    ratios = imagenet_x.error_ratio(imagenet_x.get_factor_accuracies(str(folder)))
    rows = _rows(table)
    for platform, model in chosen:
        row = rows[(platform, model)]
        theirs = ratios.loc[f"{platform}-{model}"]
        for factor in imagenet_x.FACTORS:
            assert row[f"X {factor.replace('_', ' ')}"] == pytest.approx(theirs[factor], rel=1e-9), factor
        assert row["X worst"] == theirs.idxmax().replace("_", " ")
        assert row["X N"] == 46110


def test_a_rerun_reads_nothing(table, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    reads = tmp_path / "reads.txt"
    (site / "sitecustomize.py").write_text(
        "import os\n"
        "from imagenet_bench.outputs import predfiles\n"
        "_load = predfiles.load\n"
        "def _logged(files):\n"
        "    with open(os.environ['READS_LOG'], 'a') as log:\n"
        "        log.write(files.model + '\\n')\n"
        "    return _load(files)\n"
        "predfiles.load = _logged\n"
    )
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), str(Path(__file__).resolve().parents[1])]),
        "READS_LOG": str(reads),
    }
    again = _table(*GRADED_ARGS, "--cache-dir", table[("cache", "")]["dir"], env=env)
    assert not reads.exists() or reads.read_text() == ""
    assert {(r["Platform"], r["Model"]): r for r in again} == _rows(table)


def _generated(tmp_path: Path, n: int = 400) -> Path:
    """Models whose top-1 probability is 1 where right and 0 where wrong ("oracle"), and one
    that is right everywhere ("perfect"), in an output folder with val file names."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 1000, n)
    folder = tmp_path / "generated"
    write_dataset(folder, labels, [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(n)])
    for model, right in (("oracle", rng.random(n) < 0.7), ("perfect", np.ones(n, bool))):
        preds = np.where(right, labels, (labels + 1) % 1000)[:, None].astype(np.int64)
        np.save(folder / f"{model}_pytorch_imagenet_top5preds.npy", preds)
        np.save(folder / f"{model}_pytorch_imagenet_top5probs.npy", right.astype(np.float32)[:, None])
        (folder / f"{model}_pytorch_imagenet_manifest.json").write_text("{}")
    return folder


def test_confidence_equal_to_correctness_is_perfectly_calibrated_and_ranked(tmp_path):
    folder = _generated(tmp_path)
    proc = run_script(SCRIPT, "--dir", folder, "--calibration", "--selective", "--ci", "--no-cache", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["Model"]: r for r in json.loads(proc.stdout)}
    for model in ("oracle", "perfect"):
        assert rows[model]["ECE"] == 0 and rows[model]["MCE"] == 0 and rows[model]["Brier"] == 0
        assert rows[model]["E-AURC"] == pytest.approx(0, abs=1e-12)
        assert rows[model]["Cov@99"] == pytest.approx(rows[model]["Acc@1"], abs=1e-9)  # all right answers, first
        assert rows[model]["ECE 95% CI"] == "0.00-0.00"
    assert rows["perfect"]["AURC"] == 0
    assert rows["oracle"]["AURC"] > 0  # with errors no order reaches 0: only E-AURC is 0
    assert "seed 20230501" in proc.stderr


def test_ci_intervals_are_seeded_and_hold_the_estimate(tmp_path):
    folder = tmp_path / "m"
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 1000, 2000)
    write_dataset(folder, labels)
    for model in ("a", "b"):
        right = rng.random(2000) < 0.75
        preds = np.stack([np.where(right, labels, (labels + 1) % 1000), (labels + 2) % 1000], axis=1)
        probs = np.stack([rng.uniform(0.3, 1.0, 2000), rng.uniform(0.0, 0.3, 2000)], axis=1).astype(np.float32)
        np.save(folder / f"{model}_pytorch_imagenet_top5preds.npy", preds.astype(np.int64))
        np.save(folder / f"{model}_pytorch_imagenet_top5probs.npy", probs)
        (folder / f"{model}_pytorch_imagenet_manifest.json").write_text("{}")
    runs = []
    for _ in range(2):
        proc = run_script(
            SCRIPT, "--dir", folder, "--calibration", "--selective", "--ci", "--no-cache", "--format", "json"
        )
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads(proc.stdout))
    assert runs[0] == runs[1]
    for row in runs[0]:
        for value, interval in ((row["ECE"], row["ECE 95% CI"]), (row["AURC"], row["AURC 95% CI"])):
            lo, hi = map(float, interval.split("-"))
            assert lo <= value <= hi and lo < hi


def test_the_annotations_read_the_same_by_either_path(tmp_path):
    """The fast path (numpy over the bytes, the package's key order) and the JSON one (any
    order: taken when a line is not in it) give the same classes and factors; the package's
    file itself takes the fast path, and a bad val number is one error."""
    from imagenet_bench.base.errors import UsageError
    from imagenet_bench.scoring import factors

    source = factors.default_folder()
    lines = (source / factors.TOP_FACTORS).read_text(encoding="utf-8").splitlines()
    assert factors._fixed_layout("\n".join(lines).encode()) is not None  # the package's order
    reordered = [json.dumps(dict(reversed(json.loads(line).items()))) for line in lines]
    folder = tmp_path / "reordered"
    folder.mkdir()
    (folder / factors.TOP_FACTORS).write_text("\n".join(reordered) + "\n")
    (folder / factors.PROTOTYPES).write_text((source / factors.PROTOTYPES).read_text())
    assert factors._fixed_layout(reordered[0].encode()) is None
    fast, slow = factors.load(source), factors.load(folder)
    assert np.array_equal(fast.classes, slow.classes) and np.array_equal(fast.factor, slow.factor)
    assert np.count_nonzero(fast.factor >= 0) == 46110
    (folder / factors.TOP_FACTORS).write_text(reordered[0].replace("ILSVRC2012_val_", "ILSVRC2012_val_9") + "\n")
    with pytest.raises(UsageError, match="val number"):
        factors.load(folder)


def test_several_test_sets_get_their_own_columns_and_factors_stay_on_val(tmp_path):
    root = tmp_path / "runs"
    rng = np.random.default_rng(3)
    for name, n in (("val", 300), ("v2", 200)):
        labels = rng.integers(0, 1000, n)
        names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(n)] if name == "val" else None
        write_dataset(root / name, labels, names, salt=n)
        info = json.loads((root / name / "dataset.json").read_text())
        info["test_set"] = "imagenet-val" if name == "val" else "imagenet-v2"
        (root / name / "dataset.json").write_text(json.dumps(info))
        right = rng.random(n) < 0.6
        np.save(root / name / "m_pytorch_imagenet_top5preds.npy", np.where(right, labels, (labels + 1) % 1000)[:, None])
        np.save(root / name / "m_pytorch_imagenet_top5probs.npy", rng.uniform(0.2, 1, (n, 1)).astype(np.float32))
        (root / name / "m_pytorch_imagenet_manifest.json").write_text("{}")
    proc = run_script(SCRIPT, "-r", root, "--calibration", "--selective", "--no-cache", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)
    assert row["ECE"] is not None and row["ECE imagenet-v2"] is not None and row["AURC imagenet-v2"] is not None


def test_factors_need_val_file_names(tmp_path):
    folder = tmp_path / "named"
    labels = np.random.default_rng(2).integers(0, 1000, 50)
    write_dataset(folder, labels)  # names img_00000.JPEG...: not val images
    np.save(folder / "m_pytorch_imagenet_top5preds.npy", labels[:, None])
    np.save(folder / "m_pytorch_imagenet_top5probs.npy", np.ones((50, 1), np.float32))
    (folder / "m_pytorch_imagenet_manifest.json").write_text("{}")
    proc = run_script(SCRIPT, "--dir", folder, "--factors", "--no-cache")
    assert_one_error(proc, "--factors", "img_00000.JPEG")
    (folder / "dataset_files.txt").unlink()
    proc = run_script(SCRIPT, "--dir", folder, "--factors", "--no-cache")
    assert_one_error(proc, "--factors", "file name")


def test_reliability_diagram_and_factor_heat_map_in_a_browser(browser, tmp_path):  # noqa: F811
    truth = dict(line.split() for line in shared(VAL_FULL_TXT).read_text().splitlines() if line.strip())
    n = 600
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(n)]
    labels = np.array([int(truth[name]) for name in names])
    folder = tmp_path / "val600"
    write_dataset(folder, labels, names)
    rng = np.random.default_rng(4)
    for model in ("plain", EVIL, "third"):
        right = rng.random(n) < 0.7
        preds = np.where(right, labels, (labels + 1) % 1000)[:, None].astype(np.int64)
        np.save(folder / f"{model}_pytorch_imagenet_top5preds.npy", preds)
        np.save(folder / f"{model}_pytorch_imagenet_top5probs.npy", rng.uniform(0.05, 1, (n, 1)).astype(np.float32))
        (folder / f"{model}_pytorch_imagenet_manifest.json").write_text("{}")
    page = tmp_path / "report.html"
    proc = run_script(SCRIPT, "--dir", folder, "--calibration", "--factors", "--no-cache", "--html", page)
    assert proc.returncode == 0, proc.stderr
    browser.get(page.as_uri())
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('.heatmap tr.heat-row')).map(r => "
        "[r.cells[0].textContent, r.querySelectorAll('td.heat-cell').length]);"
    )
    assert sorted(cells) == sorted([[f"{m} (PyTorch)", 16] for m in ("plain", EVIL, "third")])
    assert browser.execute_script("return document.querySelectorAll('img').length + window.__alerts;") == 0
    # a factor's header sorts the models by it, highest first
    header = browser.find_elements("css selector", ".heatmap thead th button")[1]  # background
    header.click()
    values = browser.execute_script(
        "return Array.from(document.querySelectorAll('.heatmap tr.heat-row')).map(r => r.cells[2].textContent);"
    )
    assert values == sorted(values, key=lambda v: -float(v or "-inf"))
    # the row's expansion holds its reliability diagram: a bar per non-empty bin
    captions = browser.execute_script(
        "return Array.from(document.querySelectorAll('figcaption')).map(f => f.textContent);"
    )
    assert "ECE against Acc@1" in captions
    row = browser.find_elements("css selector", "#models tr.model-row")[0]
    model = row.find_elements("css selector", "td")[1].text
    row.click()
    bars = browser.execute_script("return document.querySelectorAll('tr.details svg.reliability rect.bin').length;")
    probs = np.load(folder / f"{model}_pytorch_imagenet_top5probs.npy")[:, 0].astype(np.float64)
    assert bars == len(np.unique(np.searchsorted(np.linspace(0, 1, 16)[1:-1], probs)))


def test_plot_draws_the_ece_chart_and_a_reliability_panel_per_chosen_model(tmp_path):
    """--plot --calibration: the declared ECE-against-Acc@1 chart with a point per model, and a
    reliability diagram for each of the 12 best models (13 here), a bar per non-empty bin;
    counted from the saved figure's own Axes, logged by a savefig wrapped in the child."""
    n, rng = 300, np.random.default_rng(8)
    labels = rng.integers(0, 1000, n)
    folder = tmp_path / "m"
    write_dataset(folder, labels)
    probs_of = {}
    for i in range(13):
        right = np.arange(n) < 100 + 10 * i  # model i: 100 + 10 i right, so every Acc@1 differs
        preds = np.where(right, labels, (labels + 1) % 1000)[:, None].astype(np.int64)
        probs = rng.uniform(0.05, 1, (n, 1)).astype(np.float32)
        np.save(folder / f"m{i:02d}_pytorch_imagenet_top5preds.npy", preds)
        np.save(folder / f"m{i:02d}_pytorch_imagenet_top5probs.npy", probs)
        (folder / f"m{i:02d}_pytorch_imagenet_manifest.json").write_text("{}")
        probs_of[f"m{i:02d}"] = probs[:, 0].astype(np.float64)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import json, os\n"
        "import matplotlib.figure\n"
        "_save = matplotlib.figure.Figure.savefig\n"
        "def _logged(self, *args, **kwargs):\n"
        "    axes = [a for a in self.get_axes() if a.get_visible()]\n"
        "    found = [{'title': a.get_title(), 'bars': len(a.patches),\n"
        "              'points': sum(len(c.get_offsets()) for c in a.collections)} for a in axes]\n"
        "    with open(os.environ['AXES_LOG'], 'w') as log:\n"
        "        json.dump(found, log)\n"
        "    return _save(self, *args, **kwargs)\n"
        "matplotlib.figure.Figure.savefig = _logged\n"
    )
    log = tmp_path / "axes.json"
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(Path(__file__).resolve().parents[1])]), "AXES_LOG": str(log)}
    chart = tmp_path / "chart.png"
    proc = run_script(SCRIPT, "--dir", folder, "--calibration", "--no-cache", "--plot", chart, env=env)
    assert proc.returncode == 0, proc.stderr
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    axes = json.loads(log.read_text())
    by_title = {a["title"]: a for a in axes}
    assert by_title["ECE against Acc@1"]["points"] == 13
    reliability = [a for a in axes if a["title"].endswith("%") and "ECE" in a["title"]]
    best = [f"m{i:02d}" for i in range(12, 0, -1)]  # the 12 most accurate, best first
    assert [a["title"].split(" ")[0] for a in reliability] == best
    for panel, model in zip(reliability, best, strict=True):
        bins = np.searchsorted(np.linspace(0, 1, 16)[1:-1], probs_of[model])
        assert panel["bars"] == len(np.unique(bins))
    assert len(axes) == 1 + 1 + 12  # the Acc@1 bars, the chart, the panels
