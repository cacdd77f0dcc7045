"""ImageNet-C's mCE column (issue 24) without a model: the committed constants are the
generator's output from the authors' numbers in ../shared, and mCE, relative mCE and the mCE
normalised by a measured AlexNet equal a numpy computation from the files' right counts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from imagenet_bench.datasets import imagenet_c
from imagenet_bench.scoring import corruption_errors
from tools import test_set_maps

from conftest import SHARED, shared
from helpers import bench, ok_csv, synthetic_labels, write_dataset, write_model

ALEXNET_CSV = SHARED / "reference" / "test-sets" / "imagenet-c" / "alexnet_errors.csv"
N = 100  # images a folder: an error in percent is the wrong images' count


def _published() -> dict[str, float]:
    """AlexNet's error per corruption in percent, read from the authors' CSV with numpy."""
    table = np.genfromtxt(shared(ALEXNET_CSV), delimiter=",", names=True, dtype=None, encoding="utf-8")
    return {
        str(name): 100 * float(error) for name, error in zip(table["corruption"], table["alexnet_error"], strict=True)
    }


def _alexnet_clean() -> float:
    torchvision = pytest.importorskip("torchvision")
    return 100 - torchvision.models.AlexNet_Weights.IMAGENET1K_V1.meta["_metrics"]["ImageNet-1K"]["acc@1"]


def test_the_committed_constants_are_the_generators_and_the_authors():
    text = test_set_maps.imagenet_c_constants(shared(ALEXNET_CSV).parent)
    assert corruption_errors.DATA.read_text() == text
    known = corruption_errors.constants()
    assert known.alexnet == pytest.approx(_published()) and list(known.alexnet) == list(_published())
    assert known.alexnet_clean == pytest.approx(_alexnet_clean())
    assert list(known.alexnet) == list(imagenet_c.BENCHMARK) and len(imagenet_c.CORRUPTIONS) == 19


def _folder(root: Path, test_set: str, seed: int, right: dict[str, int]) -> None:
    labels = synthetic_labels(seed, N)
    write_dataset(root, labels, salt=seed)
    info = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**info, "test_set": test_set}))
    for model, n in right.items():
        write_model(root, model, labels, range(n), seed=seed)


def test_mce_and_relative_mce_equal_numpy_on_generated_folders(tmp_path):
    """15 corruptions x severities 1 and 3 (and 2 extra), three models, alexnet among them:
    each folder's right counts drawn at random, the expected numbers computed here from them."""
    rng = np.random.default_rng(24)
    models = ("alexnet", "resnet50", "vgg16")
    runs = tmp_path / "runs"
    clean = {m: int(rng.integers(40, 90)) for m in models}
    _folder(runs / "val", "imagenet-val", 1, clean)
    published = _published()
    corruptions = [*published, "speckle_noise", "saturate"]
    right = {(c, s): {m: int(rng.integers(5, 60)) for m in models} for c in corruptions for s in (1, 3)}
    for seed, ((corruption, severity), counts) in enumerate(right.items(), start=10):
        _folder(runs / corruption / str(severity), f"imagenet-c/{corruption}/{severity}", seed, counts)
    rows = {r["Model"]: r for r in ok_csv("-r", runs)}
    alexnet_clean = _alexnet_clean()
    error = {m: {k: 100.0 - v[m] for k, v in right.items()} for m in models}
    for model in models:
        ce = np.array([sum(error[model][c, s] for s in (1, 3)) / (2 * published[c]) for c in published])
        clean_error = 100.0 - clean[model]
        rise = np.array([sum(error[model][c, s] - clean_error for s in (1, 3)) for c in published])
        relative = rise / np.array([2 * (published[c] - alexnet_clean) for c in published])
        measured = np.array(
            [sum(error[model][c, s] for s in (1, 3)) / sum(error["alexnet"][c, s] for s in (1, 3)) for c in published]
        )
        row = rows[model]
        assert float(row["mCE"]) == pytest.approx(100 * ce.mean(), abs=0.006)  # the CSV's 2 decimals
        assert float(row["rel. mCE"]) == pytest.approx(100 * relative.mean(), abs=0.006)
        assert float(row["mCE (AlexNet run)"]) == pytest.approx(100 * measured.mean(), abs=0.006)
        assert float(row["CE gaussian_noise"]) == pytest.approx(100 * ce[0], abs=0.006)
        assert row["CE speckle_noise"] == ""  # no published AlexNet error: no CE by the published rule
    assert float(rows["alexnet"]["mCE (AlexNet run)"]) == pytest.approx(100.0)
    assert "Acc@1 imagenet-c/fog/3" in ok_csv("-r", runs)[0]  # the folders' own columns remain in CSV
    text = bench("-r", runs).stdout  # but the text table shows the summary, not 90 folders' columns
    header = next(line for line in text.splitlines() if line.startswith("Platform"))
    assert "rel. mCE" in header and "imagenet-c" not in header and "dataset imagenet-c/" not in text
    html = tmp_path / "report.html"
    assert bench("-r", runs, "--html", html).returncode == 0
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', html.read_text(), re.S)[1])
    heat = next(h for h in data["heatmaps"] if h["id"] == "imagenet_c")
    assert heat["labels"] == [c.replace("_", " ") for c in corruptions]
    for row in data["rows"]:  # one cell per model and corruption: the CE, blank for the extras
        assert len(row["heat"]["imagenet_c"]) == len(corruptions)
        assert row["heat"]["imagenet_c"][0] == pytest.approx(float(rows[row["model"]]["CE gaussian_noise"]), abs=0.006)
        assert row["heat"]["imagenet_c"][-1] is None
    assert any(c["y"] == "mce:" for c in data["charts"])


def test_released_and_regenerated_folders_are_never_mixed(tmp_path):
    runs = tmp_path / "runs"
    _folder(runs / "val", "imagenet-val", 1, {"resnet50": 80})
    _folder(runs / "released" / "fog" / "1", "imagenet-c/fog/1", 2, {"resnet50": 30})
    _folder(runs / "regenerated" / "fog" / "1", "imagenet-c-regenerated/fog/1", 3, {"resnet50": 50})
    row = ok_csv("-r", runs)[0]
    fog = _published()["fog"]
    assert float(row["CE fog"]) == pytest.approx(100 * 70 / fog, abs=0.006)
    assert float(row["CE fog regenerated"]) == pytest.approx(100 * 50 / fog, abs=0.006)
    assert row["mCE"] == "" and row["mCE regenerated"] == ""  # 1 of 15 corruptions: no mean
