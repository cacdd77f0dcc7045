"""The committed data files of imagenet_bench/data/, every row checked against its raw source
without the generators of tools/ (their own tests compare the file with a fresh generation,
which a bug shared by the generator and its reader would pass):

- timm_published.csv against timm's results CSVs in ../shared, parsed here with csv;
- torchvision_published.json against the installed torchvision's weights metadata;
- timm_costs.csv: its rows against timm's pretrained configs, the parameters of a seeded
  sample of architectures counted here on the meta device, and every GMACs figure against
  timm's benchmark CSV in ../shared.
"""

from __future__ import annotations

import csv
import json
import math
import random

import pytest

from conftest import ROOT, SHARED, shared

DATA = ROOT / "imagenet_bench" / "data"
TIMM_RESULTS = SHARED / "reference" / "timm-results"
BENCHMARK = TIMM_RESULTS / "benchmark-infer-amp-nchw-pt291-cu130-5090.csv"
# The test-set name of each column pair and timm's results file it comes from (docs/test-sets.md).
TIMM_FILES = {
    "imagenet-val": "results-imagenet.csv",
    "imagenet-real": "results-imagenet-real.csv",
    "imagenetv2-matched-frequency": "results-imagenetv2-matched-frequency.csv",
    "imagenet-sketch": "results-sketch.csv",
    "imagenet-a": "results-imagenet-a.csv",
    "imagenet-r": "results-imagenet-r.csv",
    "imagenet-a-clean": "results-imagenet-a-clean.csv",
    "imagenet-r-clean": "results-imagenet-r-clean.csv",
}


def _committed_csv(name: str) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a committed CSV, its ``#`` lines left out."""
    with open(DATA / name, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(line for line in handle if not line.startswith("#"))
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _raw_csv(path) -> list[dict[str, str]]:
    with open(shared(path), encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# --- timm_published.csv --------------------------------------------------------------------


def test_every_timm_published_row_is_timms_results_for_that_model_and_size():
    """One row per (model, img_size) found in any of timm's eight results files; each test
    set's two columns are that file's top1/top5 for the key, as written there, and blank
    exactly where that file does not list the key."""
    header, rows = _committed_csv("timm_published.csv")
    assert header == ["model", "img_size", "crop_pct", "interpolation"] + [
        f"{test_set}_acc{k}" for test_set in TIMM_FILES for k in (1, 5)
    ]
    committed = {(row["model"], int(row["img_size"])): row for row in rows}
    assert len(committed) == len(rows)  # no key twice

    raw = {}  # test set -> {(model, img_size): row}
    for test_set, file in TIMM_FILES.items():
        table = {(row["model"], int(row["img_size"])): row for row in _raw_csv(TIMM_RESULTS / file)}
        assert len(table) > 1000, file
        raw[test_set] = table
    keys = set().union(*raw.values())
    assert set(committed) == keys
    assert len(keys) == 1557  # timm results at commit aa4b585: 1,556 per file, 1,557 keys in all

    blanks = 0
    for key, row in committed.items():
        present = [table[key] for table in raw.values() if key in table]
        # the model's preprocessing at that size: the same in every file that lists it
        assert {(r["crop_pct"], r["interpolation"]) for r in present} == {(row["crop_pct"], row["interpolation"])}
        for test_set, table in raw.items():
            got = (row[f"{test_set}_acc1"], row[f"{test_set}_acc5"])
            if key in table:
                assert got == (table[key]["top1"], table[key]["top5"]), (key, test_set)
                assert 0 < float(got[1]) <= 100 and float(got[0]) <= float(got[1]), (key, test_set)
            else:
                assert got == ("", ""), (key, test_set)
                blanks += 1
    assert blanks > 0  # resnet50.tv_in1k and others are missing from some files


# --- torchvision_published.json ------------------------------------------------------------


def _torchvision_expected() -> list[dict]:
    """From torchvision's weights metadata: every weight set of the classification and
    quantization builders with a finite ImageNet-1K acc@1 and acc@5; the id is the builder
    for its first such weight set and builder.NAME for any other."""
    import torchvision
    from torchvision.models import quantization

    expected = []
    for module in (torchvision.models, quantization):
        for builder in torchvision.models.list_models(module=module):
            first = True
            for weights in torchvision.models.get_model_weights(builder):
                meta = weights.meta
                metrics = meta.get("_metrics", {}).get("ImageNet-1K", {})
                acc = [metrics.get(k) for k in ("acc@1", "acc@5")]
                if not all(isinstance(a, float) and math.isfinite(a) for a in acc):
                    continue
                entry = {
                    "id": builder if first else f"{builder}.{weights.name}",
                    "builder": builder,
                    "weights": f"{type(weights).__name__}.{weights.name}",
                    "acc1": acc[0],
                    "acc5": acc[1],
                    "num_params": meta["num_params"],
                    "gflops": meta["_ops"],
                    "file_size_mb": meta["_file_size"],
                }
                for key in ("backend", "recipe"):
                    if meta.get(key):
                        entry[key] = meta[key]
                expected.append(entry)
                first = False
    return expected


def test_every_torchvision_entry_is_its_weights_metadata():
    import torchvision

    committed = json.loads((DATA / "torchvision_published.json").read_text(encoding="utf-8"))
    assert committed["torchvision_version"] == torchvision.__version__.split("+")[0]
    expected = {entry["id"]: entry for entry in _torchvision_expected()}
    entries = {entry["id"]: entry for entry in committed["entries"]}
    assert len(entries) == len(committed["entries"])  # ids unique
    assert sorted(entries) == sorted(expected)
    for model_id, entry in entries.items():
        assert entry == expected[model_id], model_id
    quantized = sum(entry["builder"].startswith("quantized_") for entry in expected.values())
    assert committed["counts"] == {"classification": len(expected) - quantized, "quantized": quantized}
    if torchvision.__version__.startswith("0.29."):
        assert committed["counts"] == {"classification": 114, "quantized": 14}
    # the first weight set is the builder's own id; NaN-accuracy weights (vgg16's features) are out
    assert entries["resnet50"]["weights"] == "ResNet50_Weights.IMAGENET1K_V1"
    assert "vgg16.IMAGENET1K_FEATURES" not in entries


# --- timm_costs.csv ------------------------------------------------------------------------


def _timm_in1k_names() -> list[str]:
    import timm
    from timm.models import get_pretrained_cfg

    return [name for name in timm.list_pretrained() if get_pretrained_cfg(name).num_classes == 1000]


def test_timm_costs_rows_are_each_architecture_at_each_reference_size():
    """One row per architecture and reference input size of an ImageNet-1k weight set
    (timm's validate.py size: test_input_size where the config has one, else input_size)."""
    from timm.models import get_pretrained_cfg

    header, rows = _committed_csv("timm_costs.csv")
    assert header == ["architecture", "num_params", "img_size", "gmacs"]
    expected = set()
    for name in _timm_in1k_names():
        cfg = get_pretrained_cfg(name)
        expected.add((name.split(".")[0], (cfg.test_input_size or cfg.input_size)[1]))
    keys = [(row["architecture"], int(row["img_size"])) for row in rows]
    assert len(keys) == len(set(keys)) and set(keys) == expected
    params = {}
    for row in rows:  # one count per architecture, whatever the size
        assert params.setdefault(row["architecture"], row["num_params"]) == row["num_params"], row


@pytest.mark.slow
def test_timm_costs_parameters_of_a_seeded_sample_counted_on_the_meta_device():
    """120 architectures drawn with a fixed seed (about 10 s): each one's count is the sum of
    p.numel() over a 1000-class weight set built here on the meta device."""
    import timm
    import torch

    _, rows = _committed_csv("timm_costs.csv")
    params = {row["architecture"]: int(row["num_params"]) for row in rows}
    name_of = {}
    for name in _timm_in1k_names():
        name_of.setdefault(name.split(".")[0], name)
    sample = random.Random(26).sample(sorted(params), 120)
    for architecture in sample:
        with torch.device("meta"):
            model = timm.create_model(name_of[architecture], pretrained=False)
        assert model.num_classes == 1000
        assert params[architecture] == sum(p.numel() for p in model.parameters()), architecture


def test_timm_costs_gmacs_are_timms_benchmark_at_that_size_for_the_same_network():
    """Every gmacs figure is infer_gmacs of timm's benchmark CSV at (architecture, img_size)
    where its param_count (millions, two decimals) is the row's count; blank where the
    benchmark has no such row or ran another network (fused, another head)."""
    _, rows = _committed_csv("timm_costs.csv")
    benchmark = {(row["model"], int(row["infer_img_size"])): row for row in _raw_csv(BENCHMARK)}
    filled = 0
    for row in rows:
        found = benchmark.get((row["architecture"], int(row["img_size"])))
        same = found is not None and round(int(row["num_params"]) / 1e6, 2) == float(found["param_count"])
        assert row["gmacs"] == (found["infer_gmacs"] if same else ""), row
        filled += bool(row["gmacs"])
    assert filled > 900  # 922 of the 1,035 rows: 1,182 of the 1,321 entries (contributing.md)
    by_key = {(row["architecture"], int(row["img_size"])): row for row in rows}
    assert by_key[("resnet50", 224)]["gmacs"] == "4.11" and by_key[("resnet50", 288)]["gmacs"] == "6.8"
    assert by_key[("repvgg_a0", 224)]["gmacs"] == ""  # benchmarked fused: 8.31 M, not 9.11 M
