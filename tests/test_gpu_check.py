"""bench/gpu_check.py: the dry run (every step on the CPU, tiny sizes) and its summary's fields,
failure isolation and the global deadline; bench/overnight_estimate.py's arithmetic.

The dry run is what keeps the GPU check from rotting while no GPU is lent: it runs the
same steps through the same scripts, so a flag that changes or a manifest field that moves
breaks it here first.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, VAL500, WEIGHTS, shared

sys.path.insert(0, str(ROOT / "bench"))
import overnight_estimate

CHECK = ROOT / "bench" / "gpu_check.py"


def run_check(tmp: Path, *args: str, timeout: int = 1200) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the check with its temporary files under tmp/t (to see that none are left)."""
    (tmp / "t").mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp / "t"), "PYTHONUNBUFFERED": "1"}
    summary = tmp / "summary.json"
    done = subprocess.run(
        [sys.executable, str(CHECK), "--dry-run", "--json", str(summary), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )
    assert summary.exists(), done.stdout + done.stderr
    return done, json.loads(summary.read_text())


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    for name in (
        "torchvision_mobilenet_v2_dequantized.pth",
        "torchvision_quantized_mobilenet_v2_qnnpack.pth",
        "keras_mobilenetv2_alpha1.0_224.weights.h5",
        "keras_mobilenet_alpha0.25_128.weights.h5",
    ):
        shared(WEIGHTS / name)
    shared(VAL500)
    tmp = tmp_path_factory.mktemp("gpu_check")
    # an explicit, generous budget: on a loaded machine the check must not drop steps to keep its own
    done, summary = run_check(tmp, "--keep", str(tmp / "work"), "--budget", "2400", timeout=3000)
    return done, summary, tmp


@pytest.mark.slow
def test_dry_run_every_step_runs_and_finds_nothing(dry_run):
    done, summary, tmp = dry_run
    steps = summary["steps"]
    assert list(steps) == [
        "data",
        "decode",
        "torch_numerics",
        "torch_grouping",
        "torch_cache",
        "torchrun",
        "real_torch",
        "keras",
        "real_keras",
        "estimate",
    ]
    assert {name: s["status"] for name, s in steps.items()} == {name: "ok" for name in steps}, done.stdout
    assert all(not s.get("findings") for s in steps.values()), done.stdout
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert summary["mode"] == "dry-run" and not summary["deadline_hit"]
    assert summary["wall_s"] <= summary["budget_s"]
    assert "estimate:" in done.stdout and "torch_numerics" in done.stdout
    assert not any((tmp / "t").iterdir()), "temporary files left behind"


@pytest.mark.slow
def test_dry_run_numerics_are_those_asked_for(dry_run):
    runs = dry_run[1]["steps"]["torch_numerics"]["runs"]
    assert set(runs) == {"float32", "bf16_channels_last"}
    fp32, fast = runs["float32"], runs["bf16_channels_last"]
    assert fp32["numerics"]["dtype"] == "float32" and fp32["numerics"]["channels_last"] is False
    assert fast["numerics"]["dtype"] == "autocast bf16" and fast["numerics"]["channels_last"] is True
    assert fp32["numerics"]["tf32_matmul"] is False and fp32["device"]["name"] == "cpu"
    for run in (fp32, fast):
        # model-only time is part of the wall time, so model-only images/s is never lower
        assert run["model_images_per_s"] >= run["images_per_s"] > 0
    assert fast["vs_float32"]["images"] == 8
    # random weights: the agreement below (and torchrun's, on the same weights) means something only
    # if the float32 run tells the images apart
    assert fp32["distinct_top1"] > 1


@pytest.mark.slow
def test_dry_run_grouping_cache_and_torchrun(dry_run):
    steps = dry_run[1]["steps"]
    grouping, cache = steps["torch_grouping"], steps["torch_cache"]
    n_models = len(grouping["models"])
    assert n_models == 2
    # one pass decodes each image once; one model at a time decodes it once per model
    assert grouping["grouped"]["decoded_per_image"] == 1
    assert grouping["alone"]["decoded_per_image"] == n_models
    assert grouping["identical_files"] is True
    assert all(n > 1 for n in grouping["distinct_top1"].values()), grouping["distinct_top1"]
    assert set(grouping["per_model"]) == set(grouping["models"])
    assert cache["fill"]["cache_entries"] == 1  # one geometry, one entry
    assert cache["read"]["images_decoded_in_pass"] == 0
    assert cache["cache_bytes"] >= 8 * 224 * 224 * 3
    assert cache["identical_to_decoding"] is True
    two = steps["torchrun"]["runs"]["2"]
    assert two["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert two["images"] == 8 and two["top1_agree"] == 8
    assert steps["torch_numerics"]["runs"]["float32"]["distinct_top1"] > 1  # the reference it agrees with varies


@pytest.mark.slow
def test_dry_run_keras_and_real_weights(dry_run):
    _done, summary, tmp = dry_run
    keras = summary["steps"]["keras"]
    assert keras["weights"].startswith("real")
    for run in keras["runs"].values():
        assert run["status"] == "ok" and run["xla_taken"] is False and run["numerics"]["tf32"] is False
    check = keras["runs"]["batched"]["check_batching"]
    assert check["images"] == 2 and check["batch_size"] == 64
    # on the CPU the device runs would repeat the CPU run, so the dry run runs the CPU alone
    assert set(summary["steps"]["real_torch"]["runs"]) == {"cpu float32", "cpu quantized"}
    assert set(summary["steps"]["real_keras"]["runs"]) == {"cpu"}
    # each real-weight Acc@1, recomputed from the files the script wrote (1 image of each of 10 classes)
    from imagenet_bench.outputs import predfiles

    real_torch = summary["steps"]["real_torch"]["runs"]["cpu float32"]
    real_keras = summary["steps"]["real_keras"]["runs"]["cpu"]["mobilenet_0.25_128"]
    for run, folder, model, platform in (
        (real_torch, "real-torch-cpu-float32", "mobilenet_v2", "pytorch"),
        (real_keras, "real-keras-cpu", "mobilenet_0.25_128", "keras"),
    ):
        preds = np.load(predfiles.model_files(tmp / "work" / folder, model, platform).preds_path)
        labels = np.load(tmp / "work" / folder / "dataset_labels.npy")
        assert len(preds) == 10 and len(np.unique(preds[:, 0])) > 1
        assert run["acc1"] == round(100 * float((preds[:, 0] == labels).mean()), 2)


@pytest.mark.slow
def test_dry_run_estimate(dry_run):
    from torchvision import models

    est = dry_run[1]["steps"]["estimate"]
    assert est["fit"]["slope"] == overnight_estimate.TABLE_SLOPE
    expected = sum(len(models.get_model_weights(b)) for b in models.list_models(module=models))
    # every float torchvision weight set with ImageNet-1K metrics: all but VGG16's feature extractor
    assert est["registries"]["torchvision"]["models"] == expected - 1
    from torchvision.models import quantization

    quantized = est["registries"][overnight_estimate.QUANTIZED]
    assert quantized["models"] == sum(len(models.get_model_weights(b)) for b in models.list_models(module=quantization))
    assert set(quantized["hours"]) == {"int8 on the CPU, 1 GPU", "int8 on the CPU, 8 GPUs"}
    for name in ("torchvision", "timm"):
        hours = est["registries"][name]["hours"]
        assert set(hours) == {
            f"{p}, {g}{', cache' if c else ''}"
            for p in ("float32", "bf16")
            for g in ("1 GPU", "8 GPUs")
            for c in (False, True)
        }
        assert all(h["val"] > 0 for h in hours.values())
    assert est["registries"]["keras"]["models"] == 80


@pytest.mark.slow
def test_a_failing_step_is_recorded_and_the_rest_go_on(tmp_path):
    # decode before data: no val set yet, so decode fails; data still runs
    done, summary = run_check(tmp_path, "--steps", "decode,data", "--shared", str(tmp_path / "nowhere"))
    assert summary["steps"]["decode"]["status"] == "failed"
    assert "no val set" in summary["steps"]["decode"]["error"]
    assert summary["steps"]["data"]["status"] == "ok"
    assert done.returncode == 1


@pytest.mark.slow
def test_the_global_deadline_skips_steps_and_says_so(tmp_path):
    done, summary = run_check(tmp_path, "--budget", "0", "--steps", "data,torch_numerics,estimate")
    assert summary["deadline_hit"] is True
    for step in summary["steps"].values():
        assert step["status"] == "skipped" and step["reason"].startswith("global deadline")
    assert done.returncode == 1
    assert "skipped" in done.stdout


def test_unknown_step_is_bad_input(tmp_path):
    done = subprocess.run(
        [sys.executable, str(CHECK), "--dry-run", "--steps", "data,warp"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [done.stderr.strip()]
    assert "warp" in done.stderr


# --- the estimate's arithmetic, against numbers worked out by hand ---------------------------------


def test_fit_keeps_the_slope_and_takes_the_level_from_the_points():
    line = overnight_estimate.fit([(1.0, 1000.0), (4.0, 1000.0 * 4**-0.5)], slope=-0.5)
    assert math.isclose(line.images_per_s(1.0), 1000.0)
    assert math.isclose(line.images_per_s(16.0), 250.0)
    # two points off the line by factors 2 and 1/2: the level is their geometric mean
    line = overnight_estimate.fit([(1.0, 200.0), (1.0, 50.0)], slope=-1.0)
    assert math.isclose(line.images_per_s(2.0), 50.0)


def test_pass_time_is_the_slower_of_decoding_and_the_models():
    M = overnight_estimate.Model
    a, b = M("a", 1.0, ("shorter", 256, 224, "bilinear"), 224), M("b", 1.0, ("shorter", 256, 224, "bilinear"), 224)
    ips = lambda m: 1000.0
    # one pass of two models: GPU 1000 x 2/1000 = 2 s, decoding 1000/500 = 2 s; builds 2 x 0.5 s
    assert math.isclose(overnight_estimate.torch_seconds([a, b], ips, 1000, 500.0, 0.5, 2, False), 3.0)
    # decoding at 100 images/s: 10 s per pass
    assert math.isclose(overnight_estimate.torch_seconds([a, b], ips, 1000, 100.0, 0.5, 2, False), 11.0)
    # one model at a time: two passes of 10 s; with the cache, filled (10 s) before the first pass,
    # both passes read it (GPU time 1 s each)
    assert math.isclose(overnight_estimate.torch_seconds([a, b], ips, 1000, 100.0, 0.0, 1, False), 20.0)
    assert math.isclose(overnight_estimate.torch_seconds([a, b], ips, 1000, 100.0, 0.0, 1, True), 12.0)
    # a torchrun rank of 4 (250 images): rank 0 fills the entry with all 1000 alone, 10 s, the others wait
    assert math.isclose(overnight_estimate.torch_seconds([a, b], ips, 250, 100.0, 0.0, 1, True, 1000), 10.5)


def _summary(keras_one: dict, quantized: dict | None = None) -> dict:
    gpu = {"device": {"name": "/GPU:0"}, "status": "ok", "model_images_per_s": 400.0, "build_s": 2.0}
    steps = {
        "torch_numerics": {
            "status": "ok",
            "runs": {
                "float32": {
                    "status": "ok",
                    "gflops": 4.0,
                    "model_images_per_s": 1000.0,
                    "first_batch_s": 3.0,
                    "process_s": 10.0,
                    "wall_time_s": 5.0,
                }
            },
        },
        "torch_grouping": {"status": "ok", "models": ["a"], "per_model": {}, "alone": {"fixed_s": 6.0}},
        "decode": {"status": "ok", "per_worker_images_per_s": 100.0},
        "keras": {"status": "ok", "gflops": 0.3, "runs": {"one_at_a_time": {**gpu, **keras_one}, "batched": gpu}},
        "real_torch": {"status": "ok", "runs": {} if quantized is None else {"cpu quantized": quantized}},
    }
    return {"mode": "gpu", "machine": {"cpus": 16}, "steps": steps}


def test_a_keras_measure_made_on_the_cpu_is_not_the_gpus():
    summary = _summary({"images_per_s": 50.0, "wall_time_s": 2.0})
    for run in summary["steps"]["keras"]["runs"].values():
        run["device"] = {"name": "cpu"}
    assert overnight_estimate.measured_from_summary(summary).keras_one_ips is None
    for run in summary["steps"]["keras"]["runs"].values():
        run["device"] = {"name": "/GPU:0"}
    assert overnight_estimate.measured_from_summary(summary).keras_one_ips == 50.0


def test_gflops_scale_with_the_pixel_count():
    assert overnight_estimate.scaled({224: 4.0, 160: 2.0}, 448) == 16.0
    assert overnight_estimate.scaled({}, 224) is None


def test_a_manifest_that_does_not_record_its_flags_is_a_finding():
    import gpu_check

    def run(flags, tf32, channels_last, dtype, device):
        return {
            "status": "ok",
            "flags": flags,
            "device": {"name": device},
            "numerics": {"tf32_matmul": tf32, "channels_last": channels_last, "dtype": dtype},
        }

    good = {
        "float32": run("(none)", False, False, "float32", "cuda"),
        "bf16_channels_last": run("--amp bf16 --channels-last", False, True, "autocast bf16", "cuda:0"),
    }
    assert gpu_check.numerics_findings(good, "cuda") == []
    good["fp16"] = run("--amp fp16", False, False, "autocast fp16", "cuda")
    assert gpu_check.numerics_findings(good, "cuda") == []
    assert gpu_check.numerics_findings({"fp16": run("--amp fp16", False, False, "float32", "cuda")}, "cuda") == [
        "fp16: dtype recorded float32 for flags --amp fp16"
    ]
    bad = {"tf32": run("--tf32", False, False, "float32", "cpu")}
    assert gpu_check.numerics_findings(bad, "cuda") == [
        "tf32: ran on cpu, not cuda",
        "tf32: TF32 recorded False for flags --tf32",
    ]


def test_the_imagenet_c_regeneration_hours():
    """The reduced set is a tenth of the full one, workers divide the time, and one core gives
    docs/test-sets.md's measured 2.6 h for 5,000 images x 15 corruptions x 5 severities."""
    one, sixteen = overnight_estimate.regeneration_hours(1), overnight_estimate.regeneration_hours(16)
    assert one["imagenet-c"] == pytest.approx(10 * one["imagenet-c-5k"], abs=0.01)
    assert sixteen["imagenet-c"] == pytest.approx(one["imagenet-c"] / 16, abs=0.01)
    assert one["imagenet-c-5k"] == pytest.approx(2.6, abs=0.05)
    assert overnight_estimate.DATASETS["imagenet-c-5k"] == 375_000


def test_one_gpu_and_no_tensorflow_are_no_failure(monkeypatch):
    import importlib.util

    import gpu_check

    lent = {
        "torchrun": {"status": "ok", "notes": ["nccl not exercised: one GPU"], "findings": []},
        "keras": {"status": "skipped", "reason": "TensorFlow is not installed in this environment"},
        "estimate": {"status": "ok"},
    }
    assert gpu_check.exit_status(lent) == 0
    assert gpu_check.exit_status({**lent, "estimate": {"status": "ok", "findings": ["x"]}}) == 1
    assert gpu_check.exit_status({**lent, "estimate": {"status": "failed", "error": "x"}}) == 1
    assert gpu_check.exit_status({**lent, "estimate": {"status": "skipped", "reason": "global deadline: 0 s"}}) == 1
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "tensorflow" else real_find_spec(name)
    )
    ctx = gpu_check.Context(gpu_check.sizes_for(False, 16), Path("/nonexistent"), Path("/nonexistent"), deadline=1e12)
    for step in (gpu_check.step_keras, gpu_check.step_real_keras):
        result = gpu_check.run_step(ctx, gpu_check.Step(step.__name__, step, 60, 0), 0)
        assert result["status"] == "skipped" and "TensorFlow is not installed" in result["reason"]


def test_the_estimate_fits_the_steady_rates():
    assert overnight_estimate.steady_rate({"model_images_per_s": 100.0, "steady_images_per_s": 400.0}) == 400.0
    assert overnight_estimate.steady_rate({"model_images_per_s": 100.0}) == 100.0  # an older manifest


def test_the_keras_trace_is_paid_once_a_model_not_once_an_image():
    # 100 images in 12 s, the first call 10 s of them: 99 images in 2 s after it
    one = {"images_per_s": 100 / 12, "wall_time_s": 12.0, "first_batch_s": 10.0, "first_batch_images": 1}
    measured = overnight_estimate.measured_from_summary(_summary(one))
    assert measured.keras_one_ips == pytest.approx(99 / 2.0)
    assert measured.keras_warm_up_s == 10.0 and measured.torch_warm_up_s == 3.0
    # an older manifest without the first batch: the whole run's rate, no warm-up
    older = overnight_estimate.measured_from_summary(_summary({"images_per_s": 100 / 12, "wall_time_s": 12.0}))
    assert older.keras_one_ips == pytest.approx(100 / 12) and older.keras_warm_up_s == 0.0


def test_quantized_models_are_counted_on_the_cpu_in_proportion_to_their_gflops():
    M = overnight_estimate.Model
    geometry = ("shorter", 256, 224, "bilinear")
    quantized = {"status": "ok", "gflops": 0.3, "model_images_per_s": 60.0, "steady_images_per_s": 100.0}
    one = {"images_per_s": 10.0, "wall_time_s": 10.0}
    measured = overnight_estimate.measured_from_summary(_summary(one, quantized))
    assert measured.quantized_ips == 100.0 and measured.quantized_gflops == 0.3
    models = [M("q1", 0.3, geometry, 224), M("q2", 3.0, geometry, 224)]
    hours = overnight_estimate.estimate(measured, {overnight_estimate.QUANTIZED: models})["registries"]
    val = hours[overnight_estimate.QUANTIZED]["hours"]
    # 50,000 images at 100/s and at 10/s (ten times the GFLOPs), plus each model's fixed cost
    fixed = 6.0 - (10.0 - 5.0)  # the grouping's time outside its loops less the one-model run's start-up
    expected = (50_000 / 100 + 50_000 / 10 + 2 * fixed) / 3600
    assert val["int8 on the CPU, 1 GPU"]["val"] == pytest.approx(expected, abs=0.01)
    assert val["int8 on the CPU, 8 GPUs"]["val"] == pytest.approx(expected / 8, abs=0.01)
    # no quantized run in the summary: no figure, rather than a guess
    none = overnight_estimate.measured_from_summary(_summary(one))
    assert (
        overnight_estimate.estimate(none, {overnight_estimate.QUANTIZED: models})["registries"][
            overnight_estimate.QUANTIZED
        ]["hours"]
        == {}
    )


def test_the_reduced_imagenet_c_pays_each_models_fixed_cost_once_a_folder():
    M = overnight_estimate.Model
    geometry = ("shorter", 256, 224, "bilinear")
    measured = overnight_estimate.measured_from_summary(_summary({"images_per_s": 10.0, "wall_time_s": 10.0}))
    est = overnight_estimate.estimate(measured, {"torchvision": [M("a", 4.0, geometry, 224)]}, group_size=1)
    hours = est["registries"]["torchvision"]["hours"]["float32, 1 GPU, cache"]
    folder_s = overnight_estimate.torch_seconds(
        [M("a", 4.0, geometry, 224)],
        lambda m: est["fit"]["resnet50_images_per_s_fp32"] * (4.0 / 4.089) ** overnight_estimate.TABLE_SLOPE,
        5_000,
        est["decode_images_per_s_per_gpu"],
        measured.build_s + measured.torch_warm_up_s,
        1,
        True,
        5_000,
    )
    assert hours["imagenet-c-5k"] == pytest.approx(75 * folder_s / 3600, abs=0.01)
    assert overnight_estimate.per_folder("imagenet-c-5k", 375_000) == (75, 5_000)
