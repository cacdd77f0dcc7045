"""One row per model across test sets: accuracy, Δ and effective robustness (against scipy's
linregress in logit space), the Table object, published figures and the plot per test set.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_one_error, bench, csv_rows, expected, ok_csv, synthetic_labels, write_dataset, write_model


def _test_set_folder(folder: Path, name: str, n: int, seed: int, accuracy: dict[str, int]) -> dict:
    """A folder of another test set: dataset.json with its test_set, labels, and one model per
    entry of ``accuracy`` (model: images right), each with a manifest."""
    labels = synthetic_labels(seed, n)
    write_dataset(folder, labels, salt=seed)
    info = json.loads((folder / "dataset.json").read_text())
    (folder / "dataset.json").write_text(json.dumps({**info, "test_set": name}))
    return {
        m: expected(write_model(folder, m, labels, range(right), seed=seed), labels)[0] / n
        for m, right in accuracy.items()
    }


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
    from imagenet_bench.report import table_run
    from imagenet_bench.scoring import score as scoring

    runs, acc = test_sets
    built = table_run.build(table_run.TableOptions(folders=scoring.output_folders(runs)))
    t = built.table
    assert t.test_sets == ["imagenet-val", "imagenet-sketch", "imagenetv2-matched-frequency"]
    assert [d["name"] for d in t.datasets] == t.test_sets and [d["n_images"] for d in t.datasets] == [200, 100, 150]
    from scipy.stats import linregress

    fit = linregress(
        _logit([acc["imagenet-val"][m] for m in "abc"]), _logit([acc["imagenetv2-matched-frequency"][m] for m in "abc"])
    )
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


@pytest.mark.slow
def test_plot_draws_a_panel_per_test_set(tmp_path, test_sets):
    pytest.importorskip("matplotlib")
    runs, _ = test_sets
    proc = bench("-r", runs, "--plot", tmp_path / "t.png")
    assert proc.returncode == 0, proc.stderr
    from PIL import Image

    # a panel is 8 x 4 inches at 120 dpi (4 rows: the least height): the bars, then one per other test set
    with Image.open(tmp_path / "t.png") as image:
        assert image.size == (3 * 960, 480)
    shutil.rmtree(runs / "sketch")
    proc = bench("-r", runs, "--plot", tmp_path / "two.png")
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "two.png") as image:
        assert image.size == (2 * 960, 480)


def test_two_datasets_with_one_test_set_name_are_refused(tmp_path, test_sets):
    """Two different datasets (other fingerprints) both recording test_set imagenet-sketch, or
    both named by a folder called "val": one error line naming both folders and the name,
    whether found by -r or named by --dir twice; nothing on stdout."""
    runs, _ = test_sets
    second = tmp_path / "more" / "sketch-2"
    _test_set_folder(second, "imagenet-sketch", 100, 9, {"e": 50})
    assert (
        json.loads((second / "dataset.json").read_text())["fingerprint"]
        != json.loads((runs / "sketch" / "dataset.json").read_text())["fingerprint"]
    )
    for args in (["-r", tmp_path], ["--dir", runs / "sketch", "--dir", second]):
        error = assert_one_error(bench(*args), runs / "sketch", second, "'imagenet-sketch'")
        assert "two different datasets are both named" in error
    # no test_set recorded: each is named after its folder
    for part, salt in (("x", 0), ("y", 1)):
        labels = synthetic_labels(4, 60)
        write_dataset(tmp_path / part / "val", labels, salt=salt)
        write_model(tmp_path / part / "val", f"m{part}", labels, range(30))
    error = assert_one_error(bench("--dir", tmp_path / "x" / "val", "--dir", tmp_path / "y" / "val"), "'val'")
    assert str(tmp_path / "x" / "val") in error and str(tmp_path / "y" / "val") in error
