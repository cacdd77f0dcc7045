"""imagenet_keras_get_predictions.py end to end, on the 500 real val images in ../shared with
the real Keras MobileNet weights there (random weights predict one class for every image and
would prove nothing about equal predictions)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import (
    NO_NETWORK,
    ROOT,
    VAL500,
    WEIGHTS,
    bad_run,
    run_script,
    shared,
    val_with_truncated_image,
)
from helpers import flat_copy
from helpers import keras_outputs as _load

SCRIPT = "imagenet_keras_get_predictions.py"
MN025 = "keras_mobilenet_alpha0.25_128.weights.h5"
MNV2 = "keras_mobilenetv2_alpha1.0_224.weights.h5"


def _weights(model: str, name: str) -> list[str]:
    return ["--weights-file", f"{model}={shared(WEIGHTS / name)}"]


def _table(folder) -> dict[str, dict]:
    empty = folder.parent / "empty"
    empty.mkdir(exist_ok=True)
    result = run_script("imagenet_benchmarking.py", "-k", folder, "-p", empty, "--format", "json")
    assert result.returncode == 0, result.stderr
    return {row["Model"]: row for row in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def batched(tmp_path_factory):
    out = tmp_path_factory.mktemp("batched") / "out"
    result = run_script(
        SCRIPT,
        shared(VAL500),
        "-m",
        "mobilenetV2",
        "--protocol",
        "common",
        "--weights-file",
        shared(WEIGHTS / MNV2),
        "-b",
        "50",
        "-o",
        out,
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.slow
def test_real_weights_reach_the_documented_accuracy(keras_real_run, batched):
    out, result = keras_real_run
    rows = _table(out)
    assert rows["mobilenet_0.25_128"]["Acc@1"] == pytest.approx(40.4, abs=1.0)
    assert rows["mobilenet_0.25_128"]["Acc@5"] == pytest.approx(66.2, abs=1.0)
    assert rows["mobilenetV2"]["Acc@1"] == pytest.approx(67.6, abs=1.0)
    assert rows["mobilenetV2"]["Acc@5"] == pytest.approx(88.8, abs=1.0)
    assert rows["mobilenetV2"]["Platform"] == "Keras"
    b = _table(batched)["mobilenetV2"]
    assert (b["Acc@1"], b["Acc@5"]) == (pytest.approx(67.6, abs=1.0), pytest.approx(88.8, abs=1.0))
    assert "mobilenetV2: Acc@1" in result.stderr and "images/s" in result.stderr
    assert "mobilenetV2: --check-batching: top-1 agrees on 20 of 20 images" in result.stderr


@pytest.mark.slow
def test_batched_and_one_at_a_time_agree_on_every_image(keras_real_run, batched):
    out, _ = keras_real_run
    p1, q1, m1 = _load(out, "mobilenetV2")
    pb, qb, mb = _load(batched, "mobilenetV2")
    assert m1["batch_size"] == 1 and mb["batch_size"] == 50
    # the batch size may flip near-ties, so it is part of what a reusable output must match
    assert {k: v for k, v in m1["request"].items() if k != "batch_size"} == {
        k: v for k, v in mb["request"].items() if k != "batch_size"
    }
    disagree = np.flatnonzero(p1[:, 0] != pb[:, 0])
    assert disagree.tolist() == [], f"top-1 differs on rows {disagree.tolist()}"
    assert np.max(np.abs(q1 - qb)) < 1e-4
    check = m1["check_batching"]
    assert check["images"] == 20 and check["batch_size"] == 32 and check["top1_agree"] == 20
    assert 0 <= check["max_abs_prob_diff"] < 1e-4


@pytest.mark.slow
def test_one_at_a_time_gives_the_probabilities_of_a_per_image_model_predict_loop(keras_real_run):
    """The default mode calls the compiled predict function on a batch of 1, not
    model.predict(x) per image as the 2019 loop did; the numbers must be the same.
    Computed here independently: torchvision's Resize(256) + CenterCrop(224) for the
    common protocol's pixels, Keras's own MobileNetV2 and preprocess_input."""
    import keras
    from PIL import Image
    from torchvision import transforms

    out, _ = keras_real_run
    preds, probs, _ = _load(out, "mobilenetV2")
    by_name = {p.name: p for p in shared(VAL500).glob("*/*")}
    names = (out / "dataset_files.txt").read_text().split()
    rows = list(range(0, 500, 10))
    geometry = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
    model = keras.applications.MobileNetV2(weights=None)
    model.load_weights(shared(WEIGHTS / MNV2))
    expected = []
    for row in rows:
        with Image.open(by_name[names[row]]) as image:
            pixels = np.asarray(geometry(image.convert("RGB")), dtype=np.float32)
        x = keras.applications.mobilenet_v2.preprocess_input(pixels[None])
        expected.append(model.predict(x, verbose=0)[0])
    expected = np.array(expected)
    assert len(np.unique(expected.argmax(1))) > 20  # real weights: the predictions vary
    top5 = np.argsort(-expected, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(preds[rows], top5)
    np.testing.assert_array_equal(probs[rows], np.take_along_axis(expected, top5, axis=1))


@pytest.mark.slow
def test_outputs_are_sorted_topk_with_a_complete_manifest(keras_real_run):
    out, _ = keras_real_run
    preds, probs, m = _load(out, "mobilenetV2")
    assert preds.shape == probs.shape == (500, 5) and preds.dtype == np.int64 and probs.dtype == np.float32
    assert (np.diff(probs, axis=1) <= 0).all()
    assert len(np.unique(preds[:, 0])) > 20
    for key in (
        "model",
        "framework",
        "weights",
        "published",
        "preprocessing",
        "dataset",
        "labels_source",
        "device",
        "numerics",
        "batch_size",
        "throughput",
        "git",
        "environment",
        "outputs",
        "isolation",
    ):
        assert key in m, key
    assert m["platform"] == "keras" and m["protocol"] == "common"
    import keras
    import tensorflow as tf

    assert m["framework"] == {
        "name": "keras",
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "backend": "tensorflow",
    }
    assert m["weights"]["source"] == "file"
    assert m["weights"]["sha256"] == hashlib.sha256((WEIGHTS / MNV2).read_bytes()).hexdigest()
    assert m["numerics"]["tf32"] is False and m["numerics"]["jit_compile"] is False
    assert m["numerics"]["dtype"] == "float32"
    assert m["published"]["acc1"] == 71.3
    p = m["preprocessing"]
    assert (p["resize_mode"], p["resize_size"], p["crop_size"], p["interpolation"]) == ("shorter", 256, 224, "bilinear")
    assert (
        p["normalization"] == "keras:tf" and p["preprocess_input"] == "keras.applications.mobilenet_v2.preprocess_input"
    )
    assert m["device"]["name"] == "cpu" and m["throughput"]["images_per_s"] > 0
    assert m["throughput"]["model_images_per_s"] > 0 and m["throughput"]["build_s"] > 0
    small = _load(out, "mobilenet_0.25_128")[2]
    assert small["published"] is None and small["preprocessing"]["resize_size"] == 146
    assert small["request"]["kwargs"] == {"alpha": 0.25} and small["request"]["input_size"] == 128
    info = json.loads((out / "dataset.json").read_text())
    assert info["n_images"] == 500 and info["protocol"] == "common"


@pytest.mark.slow
def test_seed2019_gives_different_top1_on_some_images(keras_real_run, tmp_path):
    out, _ = keras_real_run
    seed = tmp_path / "seed"
    result = run_script(
        SCRIPT,
        VAL500,
        "-m",
        "mobilenetV2",
        "--protocol",
        "seed2019",
        "--weights-file",
        WEIGHTS / MNV2,
        "-b",
        "25",
        "--per-class",
        "10",
        "-o",
        seed,
    )
    assert result.returncode == 0, result.stderr
    rows = np.concatenate([np.arange(c * 50, c * 50 + 10) for c in range(10)])
    common_top1 = _load(out, "mobilenetV2")[0][rows, 0]
    preds, _, m = _load(seed, "mobilenetV2")
    differ = int(np.sum(preds[:, 0] != common_top1))
    assert 0 < differ < 50, differ
    p = m["preprocessing"]
    assert (p["resize_mode"], p["interpolation"], p["resize_size"], p["crop_size"]) == ("squash", "nearest", 224, 224)
    assert json.loads((seed / "dataset.json").read_text())["protocol"] == "seed2019"
    assert 40 < _table(seed)["mobilenetV2"]["Acc@1"] < 90


@pytest.mark.slow
def test_rerun_skips_complete_models_without_starting_a_worker(keras_real_run):
    out, _ = keras_real_run
    before = (out / "mobilenet_0.25_128_keras_imagenet_top5preds.npy").stat().st_mtime_ns
    result = run_script(
        SCRIPT, VAL500, "-m", "mobilenet_0.25_128", "--protocol", "common", "--weights-file", WEIGHTS / MN025, "-o", out
    )
    assert result.returncode == 0 and "skipped" in result.stderr and "Acc@1" not in result.stderr
    assert (out / "mobilenet_0.25_128_keras_imagenet_top5preds.npy").stat().st_mtime_ns == before


@pytest.mark.slow
def test_rerun_asking_for_a_check_the_outputs_lack_runs_the_model_again(keras_real_run, tmp_path):
    """--check-batching does not change the predictions, so it is not in the request; but
    outputs that do not record the check asked for are not reused silently."""
    out, _ = keras_real_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    args = [
        SCRIPT,
        VAL500,
        "-m",
        "mobilenet_0.25_128",
        "--protocol",
        "common",
        "--weights-file",
        WEIGHTS / MN025,
        "-o",
        copy,
    ]
    again = run_script(*args, "--check-batching", "20")  # the fixture ran this check: reused
    assert again.returncode == 0 and "skipped" in again.stderr and "Acc@1" not in again.stderr
    more = run_script(*args, "--check-batching", "40")  # a larger check: the model runs again
    assert more.returncode == 0 and "1 done, 0 skipped" in more.stderr, more.stderr
    check = _load(copy, "mobilenet_0.25_128")[2]["check_batching"]
    assert check["images"] == 40 and check["top1_agree"] == 40


@pytest.mark.slow
def test_output_folder_of_another_protocol_is_refused(keras_real_run):
    out, _ = keras_real_run
    before = sorted(os.listdir(out))
    result = run_script(SCRIPT, VAL500, "-m", "mobilenetV2", "--weights-file", WEIGHTS / MNV2, "-o", out)
    assert result.returncode == 2 and "holds outputs of another dataset or protocol" in result.stderr
    assert sorted(os.listdir(out)) == before


_MODULES_PROBE = """
import json, runpy, sys
sys.argv = [sys.argv[1]] + sys.argv[2:]
sys.path.insert(0, {root!r})
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    status = exc.code
print(json.dumps({{"status": status, "modules": sorted(m for m in sys.modules if "." not in m)}}))
"""


def _probe(*args, env=None) -> tuple[dict, str]:
    """Run the script in a wrapper that reports which top-level modules the parent imported."""
    code = _MODULES_PROBE.format(root=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / SCRIPT), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, **(env or {})),
        timeout=600,
    )
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def test_list_models_builds_nothing_and_imports_no_framework():
    report, _ = _probe("--list-models")
    assert report["status"] == 0
    assert not {"tensorflow", "keras", "torch", "timm"} & set(report["modules"])
    result = run_script(SCRIPT, "--list-models")
    lines = result.stdout.splitlines()
    assert sum(1 for line in lines[1:] if "left out" not in line) == 80
    mnv2 = next(line for line in lines if line.startswith("mobilenetV2 "))
    assert " 224 " in mnv2 and "3.5" in mnv2 and "71.3" in mnv2 and "90.1" in mnv2 and "keras:tf" in mnv2
    assert "299" in next(line for line in lines if line.startswith("resnet50v2 "))
    assert "centre 224/256" in next(line for line in lines if line.startswith("efficientnetb0 "))
    assert any(line.startswith("mobilenet_0.25_128 ") for line in lines)
    seed = run_script(SCRIPT, "--list-models", "--protocol", "seed2019").stdout
    assert "squash 299 nearest" in next(line for line in seed.splitlines() if line.startswith("xception "))


@pytest.mark.slow
def test_torch_is_never_imported_and_tensorflow_only_in_the_worker(tmp_path):
    report, stderr = _probe(
        VAL500,
        "-m",
        "mobilenet_0.25_128",
        "--weights-file",
        shared(WEIGHTS / MN025),
        "--limit",
        "4",
        "-o",
        tmp_path / "out",
        env={"PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert report["status"] == 0, stderr[-3000:]
    assert not {"tensorflow", "keras", "torch", "timm", "torchvision"} & set(report["modules"])
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "tensorflow" in imported and "keras" in imported  # the worker's imports are in the profile
    assert not {"torch", "timm", "torchvision"} & imported


def _bad(tmp_path, *args):
    return bad_run(SCRIPT, tmp_path / "out", *args)


@pytest.mark.slow
def test_bad_inputs_are_one_line_exit_2_and_write_nothing(tmp_path):
    line, out = _bad(tmp_path, tmp_path / "missing", "-m", "mobilenetV2")
    assert "missing: validation folder does not exist" in line and not out.exists()
    line, out = _bad(tmp_path, VAL500, "-m", "no_such_model")
    assert "'no_such_model': no such model" in line and not out.exists()
    line, _ = _bad(tmp_path, VAL500, "-m", "mobilenet_1.0_224")
    assert "no such model" in line
    line, _ = _bad(tmp_path, VAL500, "-m", "vgg16", "vgg19", "--weights-file", WEIGHTS / MNV2)
    assert "needs exactly one model" in line
    line, _ = _bad(tmp_path, VAL500, "-m", "vgg16", "--weights-file", tmp_path / "nope.h5")
    assert "nope.h5 does not exist" in line
    line, _ = _bad(tmp_path, VAL500, "-m", "vgg16", "--weights-file", tmp_path)
    assert "is a folder" in line
    (tmp_path / "vgg16.pth").write_bytes(b"x")
    line, _ = _bad(tmp_path, VAL500, "-m", "vgg16", "--weights-file", tmp_path / "vgg16.pth")
    assert "vgg16.pth" in line and ".weights.h5" in line
    line, _ = _bad(tmp_path, VAL500, "-m", "vgg16", "--gpus", "")
    assert "--gpus" in line
    line, _ = _bad(tmp_path, VAL500, "-m", "efficientnetb0", "--protocol", "seed2019")
    assert "13 models of 2019" in line
    line, _ = _bad(tmp_path, VAL500, "-m", "vgg16", "--gpus", "0,x")
    assert "--gpus" in line
    line, _ = _bad(tmp_path, VAL500, "-m", "vgg16", "-g", "0", "--gpus", "0,1")
    assert "use one of them" in line
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"x")
    line, out = _bad(tmp_path, tmp_path / "flat", "-m", "mobilenetV2")
    assert "--val-ground-truth" in line and not out.exists()


@pytest.mark.slow
def test_corrupt_image_stops_the_run_naming_the_file_once(tmp_path):
    val_with_truncated_image(tmp_path)
    line, out = _bad(
        tmp_path,
        tmp_path / "val",
        "-m",
        "mobilenet_0.25_128",
        "mobilenet_0.25_160",
        *_weights("mobilenet_0.25_128", MN025),
        *_weights("mobilenet_0.25_160", MN025),
    )
    assert "/ILSVRC2012_val_00000002.JPEG: cannot decode image" in line
    assert not out.exists()


@pytest.mark.slow
def test_one_failing_model_does_not_stop_the_others(tmp_path):
    """No weights file and no network: the download fails, naming the file and Keras's cache."""
    home = tmp_path / "keras_home"
    result = run_script(
        SCRIPT,
        shared(VAL500),
        "-m",
        "mobilenet_0.25_128",
        "mobilenet_0.25_160",
        "--limit",
        "6",
        *_weights("mobilenet_0.25_128", MN025),
        "-o",
        tmp_path / "out",
        env={**NO_NETWORK, "KERAS_HOME": str(home)},
    )
    assert result.returncode == 1, result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("error: mobilenet_0.25_160 failed"))
    assert (
        "cannot download https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
        "mobilenet_2_5_160_tf.h5" in line
    )
    assert f"Keras caches weights in {home / 'models'}" in line and "--weights-file" in line
    assert "1 done, 0 skipped (already complete), 1 failed: mobilenet_0.25_160" in result.stderr
    assert (tmp_path / "out" / "mobilenet_0.25_128_keras_imagenet_manifest.json").exists()
    assert not (tmp_path / "out" / "mobilenet_0.25_160_keras_imagenet_top5preds.npy").exists()


@pytest.mark.slow
def test_gpus_runs_models_in_parallel_processes(tmp_path):
    """--gpus 0,1: one worker per slot, each with its own CUDA_VISIBLE_DEVICES (CPU here)."""
    out = tmp_path / "out"
    result = run_script(
        SCRIPT,
        shared(VAL500),
        "-m",
        "mobilenet_0.25_128",
        "mobilenetV2",
        "--limit",
        "4",
        *_weights("mobilenet_0.25_128", MN025),
        *_weights("mobilenetV2", MNV2),
        "--gpus",
        "0,1",
        "-b",
        "4",
        "--save-all-probs",
        "-o",
        out,
        # a Slurm task's two GPUs: --gpus 0,1 index that list (GPUs 5 and 7 do not exist here either)
        env={"IMAGENET_BENCH_ASSUME_GPUS": "2", "CUDA_VISIBLE_DEVICES": "5,7"},
    )
    assert result.returncode == 0, result.stderr
    assert "2 done, 0 skipped" in result.stderr
    assert "the first model runs alone, to fill the CUDA kernel cache" in result.stderr
    throughput = _load(out, "mobilenetV2")[2]["throughput"]
    assert throughput["first_batch_images"] == 4 and throughput["first_batch_s"] > 0  # the trace, apart
    slots = {_load(out, m)[2]["device"].get("cuda_visible_devices") for m in ("mobilenet_0.25_128", "mobilenetV2")}
    assert slots == {"5", "7"}
    preds, _probs, _ = _load(out, "mobilenetV2")
    all_probs = np.load(out / "mobilenetV2_keras_imagenet_allprobs.npy", allow_pickle=False)
    assert all_probs.shape == (4, 1000)
    np.testing.assert_allclose(all_probs.sum(axis=1), 1.0, rtol=1e-4)
    np.testing.assert_array_equal(np.argsort(-all_probs, axis=1, kind="stable")[:, :5], preds)


@pytest.mark.slow
def test_numeric_and_device_flags_reach_the_manifest(tmp_path):
    """-g picks the model process's GPU (CUDA_VISIBLE_DEVICES); --tf32 and --jit-compile are
    recorded as the model took them (XLA compiles MobileNet on the CPU too)."""
    out = tmp_path / "out"
    result = run_script(
        SCRIPT,
        shared(VAL500),
        "-m",
        "mobilenet_0.25_128",
        "--limit",
        "2",
        *_weights("mobilenet_0.25_128", MN025),
        "-g",
        "3",
        "--tf32",
        "--jit-compile",
        "-o",
        out,
        env={"IMAGENET_BENCH_ASSUME_GPUS": "4", "CUDA_VISIBLE_DEVICES": "0,1,2,3"},
    )
    assert result.returncode == 0, result.stderr
    m = _load(out, "mobilenet_0.25_128")[2]
    assert m["device"]["cuda_visible_devices"] == "3"
    assert m["numerics"]["tf32"] is True
    assert m["numerics"]["jit_compile"] is True and m["request"]["jit_compile"] is True


@pytest.mark.slow
def test_flat_layout_gives_the_imagefolder_rows(keras_real_run, tmp_path):
    """Same canonical row order whatever the layout: a flat copy labelled by val_full.txt gives
    the ImageFolder run's rows (one image at a time is deterministic)."""
    from conftest import VAL_FULL_TXT

    full, _ = keras_real_run
    flat = flat_copy(tmp_path / "flat", shared(VAL500))
    out = tmp_path / "out"
    result = run_script(
        SCRIPT,
        flat,
        "--val-ground-truth",
        shared(VAL_FULL_TXT),
        "-m",
        "mobilenet_0.25_128",
        "--protocol",
        "common",
        "--weights-file",
        WEIGHTS / MN025,
        "--per-class",
        "2",
        "-o",
        out,
    )
    assert result.returncode == 0, result.stderr
    rows = np.concatenate([np.arange(c * 50, c * 50 + 2) for c in range(10)])
    preds, probs, m = _load(out, "mobilenet_0.25_128")
    full_preds, full_probs, _ = _load(full, "mobilenet_0.25_128")
    np.testing.assert_array_equal(preds, full_preds[rows])
    np.testing.assert_array_equal(probs, full_probs[rows])
    names = (full / "dataset_files.txt").read_text().split()
    assert (out / "dataset_files.txt").read_text().split() == [names[i] for i in rows]
    assert m["dataset"]["layout"] == "flat" and m["dataset"]["subset"] == {"per_class": 2}


def test_run_jobs_in_parallel_saves_each_result_and_isolates_failures(tmp_path, capsys):
    """runner.run_jobs(parallel=N), which --gpus uses: jobs overlap, each result is saved, a
    failure costs its job only, complete jobs are skipped."""
    import threading

    from imagenet_bench.outputs import predfiles
    from imagenet_bench.predict import runner

    running, peak, lock = [0], [0], threading.Lock()
    both = threading.Event()  # set when two jobs run at once: no job ends before that

    def run_one(job):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            if running[0] == 2:
                both.set()
        both.wait(timeout=30)  # in sequence, the first job would wait here alone, then go on
        with lock:
            running[0] -= 1
        if job.model == "bad":
            raise RuntimeError("boom")
        preds = np.tile(np.arange(5), (3, 1))
        return runner.Result(preds, np.full((3, 5), 0.2, dtype=np.float32), {"request": job.request})

    claimed = []
    jobs = [
        runner.Job(m, predfiles.model_files(tmp_path, m, "keras"), {"m": m}, before_save=lambda: claimed.append(1))
        for m in ("a", "bad", "c")
    ]
    status = runner.run_jobs(jobs, run_one, parallel=2)
    err = capsys.readouterr().err
    assert both.is_set() and status == 1 and peak[0] == 2
    assert "error: bad failed: boom" in err and "2 done, 0 skipped (already complete), 1 failed: bad" in err
    assert (tmp_path / "a_keras_imagenet_manifest.json").exists() and (
        tmp_path / "c_keras_imagenet_manifest.json"
    ).exists()
    assert len(claimed) == 2
    status = runner.run_jobs(jobs[::2], run_one, parallel=2)
    assert status == 0 and "0 done, 2 skipped" in capsys.readouterr().err
