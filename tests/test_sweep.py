"""One command over many test sets (issue 24, item 1): a folder of test sets (a regenerated
ImageNet-C beside a val folder, made here from the real val images) gives, per test set, the
files a run of that folder alone gives, byte for byte, with the real weights; --model-shard jobs
do every (model, test set) pair once and together give the same files; a killed sweep resumes to
them; torchrun and the Keras script sweep too; the table's -r finds every folder, and its mCE
equals numpy's from the files. A folder that is one test set runs as before."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imagenet_bench.base.errors import UsageError
from imagenet_bench.datasets import sweep as found
from imagenet_bench.predict import sweep

from conftest import (
    ROOT,
    SHARED,
    TORCH_WEIGHTS,
    VAL500,
    VAL_FULL_TXT,
    WEIGHTS,
    bad_run,
    pausing,
    run_script,
    shared,
    sweep_enabled,
    torchrun,
    wait_until_paused,
    weights_flags,
)
from helpers import bench, ok_csv

SCRIPT = "imagenet_pytorch_get_predictions.py"
KERAS = "imagenet_keras_get_predictions.py"
ALEXNET_CSV = SHARED / "reference" / "test-sets" / "imagenet-c" / "alexnet_errors.csv"
SMALL = ("val", "imagenet-c/gaussian_noise/1", "imagenet-c/gaussian_noise/3")  # the small sweep's test sets
pytestmark = pytest.mark.filterwarnings("ignore:.*classes")


def _val(folder: Path, classes: int, per_class: int) -> Path:
    """Links to the first images of the first ``classes`` classes of the 500 real val images."""
    for wnid_dir in sorted(p for p in shared(VAL500).iterdir() if p.is_dir())[:classes]:
        (folder / wnid_dir.name).mkdir(parents=True)
        for image in sorted(wnid_dir.iterdir())[:per_class]:
            (folder / wnid_dir.name / image.name).symlink_to(image)
    return folder


def _tree(root: Path, classes: int, per_class: int, corruptions: tuple[str, ...], val: str = "val") -> Path:
    """root/val and root/imagenet-c (regenerated from it by ``python -m imagenet_bench.corrupt``)."""
    val_dir = _val(root / val, classes, per_class)
    command = [sys.executable, "-m", "imagenet_bench.corrupt", val_dir, root / "imagenet-c", "--corruptions"]
    result = subprocess.run(
        [*map(str, command), *corruptions, "--severities", "1,3"], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def _args(*models: str) -> list[str]:
    weights = {m: TORCH_WEIGHTS[m] for m in models}
    return ["-m", *models, *weights_flags(weights), "-j", "0", "-b", "8"]


def _outputs(folder: Path) -> dict[str, bytes]:
    """Every file of an output folder but the manifests (they hold timings), by name."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.endswith("_manifest.json")}


def _all_outputs(out: Path, where: tuple[str, ...]) -> dict[str, dict[str, bytes]]:
    return {w: _outputs(out / w) for w in where}


def _wrote(stderr: str) -> list[str]:
    """The pairs a run wrote, as its lines say: ``MODEL on WHERE``."""
    return re.findall(r"^(\S+ on \S+): wrote ", stderr, re.M)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """val (2 classes x 3 images) and gaussian noise at severities 1 and 3 of it."""
    return _tree(tmp_path_factory.mktemp("sweep") / "sets", 2, 3, ("gaussian_noise",))


@pytest.fixture(scope="module")
def swept(small, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("swept") / "runs"
    result = run_script(SCRIPT, small, *_args("mobilenet_v2", "quantized_mobilenet_v2"), "-o", out)
    assert result.returncode == 0, result.stderr
    return out, result


# Finding the test sets, and sharing the pairs (no model)


def _images(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"not decoded here")


def test_a_test_set_is_no_sweep_and_a_tree_of_them_is_found_in_path_order(tmp_path):
    _images(tmp_path / "val" / "n01440764", "a.JPEG")
    assert found.members(tmp_path / "val") is None  # class folders of images: one test set, as before
    _images(tmp_path / "flat" / "flat", "ILSVRC2012_val_00000001.JPEG")
    assert found.members(tmp_path / "flat" / "flat") is None
    # a folder of images in a folder is a class folder: the one test set of today (a flat folder
    # takes its own --val-ground-truth, so it is run alone, never in a sweep)
    assert found.members(tmp_path / "flat") is None
    for corruption in ("fog", "contrast"):
        for severity in ("1", "5"):
            _images(tmp_path / "c" / corruption / severity / "n01440764", "a.JPEG")
    _images(tmp_path / "v2" / "0", "b.jpeg")  # ImageNetV2's numeric class folders
    (tmp_path / "empty").mkdir()
    (tmp_path / "flat").rename(tmp_path / ".flat")  # hidden: left out
    _images(tmp_path / ".hidden" / "n01440764", "c.JPEG")
    got = found.members(tmp_path)
    assert got is not None
    # c/fog/ holds numeric folders too, but of class folders, not images: not ImageNetV2
    assert [m.where for m in got] == ["c/contrast/1", "c/contrast/5", "c/fog/1", "c/fog/5", "v2", "val"]
    assert got[0].folder == tmp_path / "c" / "contrast" / "1"


def test_a_link_round_a_circle_is_walked_once(tmp_path):
    _images(tmp_path / "sets" / "a" / "n01440764", "a.JPEG")
    (tmp_path / "sets" / "loop").symlink_to(tmp_path / "sets")
    got = found.members(tmp_path / "sets")
    assert got is not None and [m.where for m in got] == ["a"]


def test_a_folder_of_no_test_set_is_one_error_naming_it(tmp_path):
    (tmp_path / "nothing" / "deeper" / "n01440764").mkdir(parents=True)
    with pytest.raises(UsageError, match=re.escape(str(tmp_path / "nothing")) + ": neither a test set"):
        found.members(tmp_path / "nothing")


def test_every_pair_is_one_shards_and_one_test_set_shards_the_models_as_before():
    models = [f"m{i}" for i in range(7)]
    for count in (1, 2, 3, 5, 8):
        taken: list[tuple[int, str]] = []
        for index in range(count):
            shares = sweep.share(4, models, (index, count))
            taken += [(t, m) for t, chosen in enumerate(shares) for m in chosen]
            assert sweep.share(1, models, (index, count)) == [models[index::count]]
        assert sorted(taken) == sorted((t, m) for t in range(4) for m in models)  # each pair exactly once
    assert sweep.share(3, models, None) == [models] * 3


def test_the_outputs_mirror_the_tree_of_test_sets(tmp_path):
    _images(tmp_path / "sets" / "imagenet-c" / "fog" / "3" / "n01440764", "a.JPEG")
    _images(tmp_path / "sets" / "val" / "n01440764", "a.JPEG")
    got = sweep.targets(tmp_path / "sets", tmp_path / "out")
    assert [(t.val_dir, t.output_dir, t.where) for t in got] == [
        (
            tmp_path / "sets" / "imagenet-c" / "fog" / "3",
            tmp_path / "out" / "imagenet-c" / "fog" / "3",
            "imagenet-c/fog/3",
        ),
        (tmp_path / "sets" / "val", tmp_path / "out" / "val", "val"),
    ]
    assert sweep.targets(tmp_path / "sets" / "val", tmp_path / "out") == [
        sweep.Target(tmp_path / "sets" / "val", tmp_path / "out", "")
    ]  # one test set: -o itself, as before
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "imagenet-c").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="is a link"):
        sweep.targets(tmp_path / "sets", tmp_path / "out")


def test_a_pair_is_named_by_its_model_and_its_folder_escaped(tmp_path):
    from imagenet_bench.outputs import predfiles
    from imagenet_bench.predict import runner

    files = predfiles.model_files(tmp_path, "m", "pytorch")
    assert runner.Job("m", files, {}).key == "m"  # one test set: the lines are as before
    assert runner.Job("m", files, {}, where="fog/3").key == "m on fog/3"
    assert runner.Job("m", files, {}, where="a\nb\x1b[2J").key == "m on a\\nb\\x1b[2J"  # no forged line, no escape code


# The scripts


@pytest.mark.slow
def test_an_empty_sweep_is_one_error_line_and_writes_nothing(tmp_path):
    (tmp_path / "sets" / "a" / "b").mkdir(parents=True)
    line, out = bad_run(SCRIPT, tmp_path / "out", tmp_path / "sets", "-m", "mobilenet_v2")
    assert str(tmp_path / "sets") in line and "neither a test set" in line
    assert not out.exists()


@pytest.mark.slow
def test_each_test_set_of_a_sweep_is_byte_for_byte_the_folder_run_alone(small, swept, tmp_path):
    out, result = swept
    got = _all_outputs(out, SMALL)
    preds = [np.load(out / w / "mobilenet_v2_pytorch_imagenet_top5preds.npy") for w in SMALL]
    assert len(np.unique(np.concatenate(preds)[:, 0])) > 2  # real weights: the predictions vary
    assert not np.array_equal(preds[0], preds[2])  # and the corruption changes some
    assert sorted(_wrote(result.stderr)) == sorted(f"{m} on {w}" for w in SMALL for m in TORCH_WEIGHTS)
    assert "[0/6 done]" in result.stderr  # the estimate is over models x test sets
    # a pass is over one test set: its two models share one decode
    manifest = json.loads((out / SMALL[1] / "mobilenet_v2_pytorch_imagenet_manifest.json").read_text())
    assert manifest["pass"]["images_decoded"] == 6 and len(manifest["pass"]["models"]) == 2
    info = json.loads((out / SMALL[1] / "dataset.json").read_text())
    assert info["test_set"] == "imagenet-c-regenerated/gaussian_noise/1"
    for where in SMALL:
        alone = tmp_path / where.replace("/", "_")
        single = run_script(SCRIPT, small / where, *_args("mobilenet_v2", "quantized_mobilenet_v2"), "-o", alone)
        assert single.returncode == 0, single.stderr
        assert got[where] == _outputs(alone), where
        assert len(got[where]) == 7  # 2 models x (preds, probs) + the 3 dataset files
    labels = np.load(out / "val" / "dataset_labels.npy")
    truth = dict(line.split() for line in shared(VAL_FULL_TXT).read_text().splitlines())
    names = (out / "val" / "dataset_files.txt").read_text().split()
    assert labels.tolist() == [int(truth[n]) for n in names]  # labelled as the devkit says
    assert not list(out.rglob(".imagenet-bench*lock"))  # the locks go with the run
    table = bench("-r", out)  # the table finds every test set of the sweep
    assert table.returncode == 0, table.stderr
    named = re.findall(r"^labels: (\S+): ", table.stderr, re.M)
    assert sorted(named) == sorted(["val", *(f"imagenet-c-regenerated/gaussian_noise/{s}" for s in (1, 3))])


@pytest.mark.slow
def test_shards_do_each_pair_once_and_together_give_the_sweeps_files(small, swept, tmp_path):
    out, _ = swept
    pairs: list[str] = []
    for index in range(3):
        shard = run_script(
            SCRIPT,
            small,
            *_args("mobilenet_v2", "quantized_mobilenet_v2"),
            "--model-shard",
            f"{index}/3",
            "-o",
            tmp_path,
        )
        assert shard.returncode == 0, shard.stderr
        pairs += _wrote(shard.stderr)
    assert sorted(pairs) == sorted(f"{m} on {w}" for w in SMALL for m in TORCH_WEIGHTS)  # each once
    assert _all_outputs(tmp_path, SMALL) == _all_outputs(out, SMALL)
    again = run_script(
        SCRIPT, small, *_args("mobilenet_v2", "quantized_mobilenet_v2"), "--model-shard", "1/3", "-o", tmp_path
    )
    assert again.returncode == 0 and _wrote(again.stderr) == [] and "0 done, 2 skipped" in again.stderr


@pytest.mark.slow
def test_a_killed_sweep_resumes_to_the_same_files(small, swept, tmp_path):
    out, _ = swept
    args = [
        str(ROOT / SCRIPT),
        str(small),
        *map(str, _args("mobilenet_v2")),
        "--group-size",
        "1",
        "-o",
        str(tmp_path / "o"),
    ]
    env = pausing(dict(os.environ, PYTHONUNBUFFERED="1"), "saved", tmp_path / "pause")
    with open(tmp_path / "stderr", "wb") as log:
        process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        held = wait_until_paused(process, tmp_path / "pause")
        process.send_signal(signal.SIGKILL)  # after the first pair's save, before the others
        process.wait(timeout=60)
        os.close(held)
    assert len(_wrote((tmp_path / "stderr").read_text())) == 1
    again = run_script(SCRIPT, *args[1:])
    assert again.returncode == 0, again.stderr
    assert "2 done, 1 skipped" in again.stderr
    want = {
        w: {k: v for k, v in files.items() if "quantized" not in k} for w, files in _all_outputs(out, SMALL).items()
    }
    assert _all_outputs(tmp_path / "o", SMALL) == want


@pytest.mark.slow
def test_torchrun_sweeps_in_one_process_group(small, swept, tmp_path):
    out, _ = swept
    cmd = torchrun(
        ROOT / SCRIPT, small, *_args("mobilenet_v2"), "--device", "cpu", "-o", tmp_path / "o", log_dir=tmp_path / "logs"
    )
    result = subprocess.run(
        cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), cwd=ROOT, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for where in SMALL:
        folder = tmp_path / "o" / where
        want = out / where
        for kind in ("preds", "probs"):
            name = f"mobilenet_v2_pytorch_imagenet_top5{kind}.npy"
            got, expected = np.load(folder / name), np.load(want / name)
            assert (
                np.array_equal(got, expected) if kind == "preds" else np.allclose(got, expected, rtol=1e-5, atol=1e-6)
            )
        for name in ("dataset_labels.npy", "dataset_files.txt", "dataset.json"):
            assert (folder / name).read_bytes() == (want / name).read_bytes()
        manifest = json.loads((folder / "mobilenet_v2_pytorch_imagenet_manifest.json").read_text())
        assert manifest["distributed"] == {"world_size": 2, "backend": "gloo"}
        assert manifest["pass"]["images_decoded"] == 6


@pytest.mark.slow
def test_the_keras_script_sweeps_one_output_folder_per_test_set(small, tmp_path):
    model = "mobilenet_0.25_128"
    args = [
        "-m",
        model,
        "--protocol",
        "common",
        "--weights-file",
        shared(WEIGHTS / "keras_mobilenet_alpha0.25_128.weights.h5"),
    ]
    result = run_script(KERAS, small / "imagenet-c", *args, "-o", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    where = ("gaussian_noise/1", "gaussian_noise/3")
    assert sorted(_wrote(result.stderr)) == [f"{model} on {w}" for w in where]
    assert sorted(p.parent.relative_to(tmp_path / "o").as_posix() for p in (tmp_path / "o").rglob("dataset.json")) == [
        f"{w}" for w in where
    ]
    alone = run_script(KERAS, small / "imagenet-c" / where[1], *args, "-o", tmp_path / "alone")
    assert alone.returncode == 0, alone.stderr
    assert _outputs(tmp_path / "o" / where[1]) == _outputs(tmp_path / "alone")
    preds = np.load(tmp_path / "alone" / f"{model}_keras_imagenet_top5preds.npy")
    assert len(np.unique(preds[:, 0])) > 1  # real weights: the predictions vary


# The whole of the check: 15 corruptions x 2 severities, opt in


def _published() -> dict[str, float]:
    table = np.genfromtxt(shared(ALEXNET_CSV), delimiter=",", names=True, dtype=None, encoding="utf-8")
    return {str(c): 100 * float(e) for c, e in zip(table["corruption"], table["alexnet_error"], strict=True)}


def _error(folder: Path, model: str) -> float:
    preds = np.load(folder / f"{model}_pytorch_imagenet_top5preds.npy")
    truth = dict(line.split() for line in shared(VAL_FULL_TXT).read_text().splitlines())
    labels = [int(truth[n]) for n in (folder / "dataset_files.txt").read_text().split()]
    return 100.0 * float(np.mean(preds[:, 0] != np.array(labels)))


@pytest.mark.sweep
@pytest.mark.skipif(not sweep_enabled(), reason="opt-in sweep: IMAGENET_BENCH_SWEEP=1")
def test_a_sweep_over_imagenet_c_is_each_folder_alone_and_its_mce_is_numpys(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    # the table's primary test set (whose error is the clean one of relative mCE) is imagenet-val,
    # else a part of the val set, named by its folder: "val", after "imagenet-c" by name
    sets = _tree(tmp_path / "sets", 3, 2, ("benchmark",), val="val")
    published = _published()
    where = ("val", *(f"imagenet-c/{c}/{s}" for c in published for s in (1, 3)))
    args = _args("mobilenet_v2")
    result = run_script(SCRIPT, sets, *args, "-o", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    got = _all_outputs(tmp_path / "runs", where)
    assert len(got) == 31 and f"[0/{len(where)} done]" in result.stderr
    for name in where:
        alone = run_script(SCRIPT, sets / name, *args, "-o", tmp_path / "alone" / name)
        assert alone.returncode == 0, alone.stderr
        assert got[name] == _outputs(tmp_path / "alone" / name), name
    for index in range(2):
        shard = run_script(SCRIPT, sets, *args, "--model-shard", f"{index}/2", "-o", tmp_path / "shards")
        assert shard.returncode == 0, shard.stderr
        assert len(_wrote(shard.stderr)) in (15, 16)
    assert _all_outputs(tmp_path / "shards", where) == got
    errors = {w: _error(tmp_path / "runs" / w, "mobilenet_v2") for w in where}
    assert len(set(errors.values())) > 3  # the corruptions change the answers
    clean = errors["val"]
    alexnet_clean = 100 - torchvision.models.AlexNet_Weights.IMAGENET1K_V1.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    model = {c: np.array([errors[f"imagenet-c/{c}/{s}"] for s in (1, 3)]) for c in published}
    ce = np.array([model[c].sum() / (2 * published[c]) for c in published])
    relative = np.array([(model[c] - clean).sum() / (2 * (published[c] - alexnet_clean)) for c in published])
    (row,) = ok_csv("-r", tmp_path / "runs")
    assert float(row["mCE regenerated"]) == pytest.approx(100 * ce.mean(), abs=0.006)
    assert float(row["rel. mCE regenerated"]) == pytest.approx(100 * relative.mean(), abs=0.006)
