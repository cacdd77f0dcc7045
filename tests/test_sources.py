"""Adding a source is one registry module and one line of ``sources.SOURCES`` (issue 10).

Two test sources (``dummy_torch_source.py``, ``dummy_keras_source.py``: registry modules as
docs/contributing.md describes them) get their lines through a ``sitecustomize``
module in the scripts' environment, so the scripts run with SOURCES one line longer and nothing
else changed: ``--source``, ``--list-models`` with the left-out list, the run, resume and the
manifest's library versions all follow from the table. The models classify each crop's mean
colour; their top-1 is checked against the same rule computed here with torchvision's own
transforms (Resize + CenterCrop on PIL) and numpy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import VAL500, run_script, shared

TESTS = Path(__file__).resolve().parent
N = 16
LINES = {
    "pytorch": 'Source("dummy_torch", "pytorch", "dummy_torch_source", ("torch",))',
    "keras": 'Source("dummy_keras", "keras", "dummy_keras_source", ("keras", "tensorflow"))',
}
DISTRIBUTIONS = {"pytorch": {"torch"}, "keras": {"keras", "tensorflow"}}
SCRIPTS = {"pytorch": "imagenet_pytorch_get_predictions.py", "keras": "imagenet_keras_get_predictions.py"}


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """PYTHONPATH with a sitecustomize that adds the two lines to SOURCES (the Keras script's
    model processes inherit it, as they inherit PYTHONPATH)."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "sitecustomize.py").write_text(
        "from imagenet_bench.models import sources\n"
        "from imagenet_bench.models.sources import Source\n"
        f"sources.SOURCES += ({LINES['pytorch']}, {LINES['keras']})\n"
    )
    path = os.pathsep.join([str(folder), str(TESTS), str(TESTS.parent)])
    return {"PYTHONPATH": path}


def _expected_top1() -> list[int]:
    from PIL import Image
    from torchvision import transforms

    from imagenet_bench.datasets import layout

    import dummy_sources

    dataset = layout.select(layout.scan(shared(VAL500), None), N, None)
    geometry = transforms.Compose([transforms.Resize(dummy_sources.RESIZE), transforms.CenterCrop(dummy_sources.CROP)])
    means = []
    for path in dataset.paths:
        with Image.open(path) as image:
            crop = np.asarray(geometry(image.convert("RGB")), dtype=np.float64)
        means.append(crop.reshape(-1, 3).mean(axis=0) / 255.0)
    return dummy_sources.expected_top1(np.array(means)).tolist()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*classes present")
@pytest.mark.parametrize("platform", ["pytorch", "keras"])
def test_a_source_added_by_one_module_and_one_table_line_lists_and_runs(platform, env, tmp_path):
    source = f"dummy_{'torch' if platform == 'pytorch' else 'keras'}"
    listing = run_script(SCRIPTS[platform], "--list-models", "--source", source, env=env)
    assert listing.returncode == 0, listing.stderr[-2000:]
    lines = listing.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:]] == [
        f"{source}.nearest_colour_1",
        f"{source}.nearest_colour_2",
        f"{source}.left_out",
    ]
    assert "left out: a test of the left-out list" in lines[-1]

    out = tmp_path / "out"
    model = f"{source}.nearest_colour_1"
    run = run_script(
        SCRIPTS[platform], shared(VAL500), "--source", source, "-m", model, "--limit", N, "-o", out, env=env
    )
    assert run.returncode == 0, run.stderr[-3000:]
    preds = np.load(out / f"{model}_{platform}_imagenet_top5preds.npy")
    expected = _expected_top1()
    assert len(set(expected)) > 4  # the rule tells these images apart
    assert preds[:, 0].tolist() == expected
    manifest = json.loads((out / f"{model}_{platform}_imagenet_manifest.json").read_text())
    assert manifest["request"]["source"] == source and manifest["params"] == 0
    assert set(manifest["library_versions"]) == DISTRIBUTIONS[platform]  # from the table line
    written = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    again = run_script(
        SCRIPTS[platform], shared(VAL500), "--source", source, "-m", model, "--limit", N, "-o", out, env=env
    )
    assert again.returncode == 0, again.stderr[-2000:]
    # resumed: the model skipped by name, the summary's exact counts, every file as it was
    assert f"{model}: complete outputs exist in {out}, skipped" in again.stderr
    assert "0 done, 1 skipped (already complete), 0 failed" in again.stderr
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == written


def test_the_scripts_refuse_the_test_sources_without_their_lines():
    run = run_script(SCRIPTS["pytorch"], "--list-models", "--source", "dummy_torch")
    assert run.returncode == 2 and "--source" in run.stderr


def test_outputs_recorded_under_a_renamed_source_still_resume_and_show_under_todays_name():
    from imagenet_bench.models import keras_registry
    from imagenet_bench.outputs import predfiles
    from imagenet_bench.predict import runner

    request = {**keras_registry.by_id()["mobilenetV2"].request(), "topk": 5}
    assert request["source"] == "keras"
    before = {"request": {**request, "source": "keras.applications"}}  # as manifests of earlier releases say
    assert runner.request_changes(before, request) == []
    assert runner.request_changes({"request": {**request, "source": "keras_hub"}}, request) == [
        'source "keras_hub" there, "keras" asked'
    ]
    assert predfiles.current_source("keras.applications") == "keras" and predfiles.current_source("timm") == "timm"


def test_a_files_source_follows_from_the_table_and_published_figures_name_only_its_sources():
    from imagenet_bench.models import published, sources

    assert sources.of_model("pytorch", "resnet50").name == "torchvision"
    assert sources.of_model("pytorch", "timm.resnet50.a1_in1k").name == "timm"
    assert sources.of_model("keras", "keras_hub.resnet_50_imagenet").name == "keras_hub"
    assert sources.of_model("keras", "mobilenetV2").name == "keras"
    assert set(published.FIGURES) <= {source.name for source in sources.SOURCES}


def test_an_id_in_two_sources_is_refused(monkeypatch):
    import sys
    import types

    from imagenet_bench.base.errors import UsageError
    from imagenet_bench.models import sources

    module = types.ModuleType("twin_registry")
    module.entries = lambda: (types.SimpleNamespace(id="mobilenetV2", source="twin"),)
    monkeypatch.setitem(sys.modules, "twin_registry", module)
    monkeypatch.setattr(sources, "SOURCES", sources.SOURCES + (sources.Source("twin", "keras", "twin_registry", ()),))
    with pytest.raises(UsageError, match="'mobilenetV2' is in two sources \\(keras, twin\\)"):
        sources.entries(sources.chosen("keras", "all"))
