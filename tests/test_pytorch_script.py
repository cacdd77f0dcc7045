"""imagenet_pytorch_get_predictions.py end to end, on the 500 real val images in
../shared with the real weights there (random weights predict one class for
every image and would prove nothing about equal predictions)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import (
    NO_NETWORK,
    ROOT,
    VAL500,
    VAL_FULL_TXT,
    WEIGHTS,
    bad_run,
    run_script,
    shared,
    val_with_truncated_image,
)
from helpers import flat_copy

SCRIPT = "imagenet_pytorch_get_predictions.py"
MNV2 = "torchvision_mobilenet_v2_dequantized.pth"
QMNV2 = "torchvision_quantized_mobilenet_v2_qnnpack.pth"
TIMING_KEYS = {"created", "throughput"}
WHERE_READ_KEYS = {"root", "layout"}  # where the images were read from, not what they are


def _table(folder) -> dict[str, dict]:
    empty = folder.parent / "empty"
    empty.mkdir(exist_ok=True)
    result = run_script("imagenet_benchmarking.py", "-k", empty, "-p", folder, "--format", "json")
    assert result.returncode == 0, result.stderr
    return {row["Model"]: row for row in json.loads(result.stdout)}


def _comparable(manifest: dict) -> dict:
    manifest = {k: v for k, v in manifest.items() if k not in TIMING_KEYS | {"labels_source", "git", "command"}}
    manifest["dataset"] = {k: v for k, v in manifest["dataset"].items() if k not in WHERE_READ_KEYS}
    return manifest


@pytest.mark.slow
def test_real_weights_reach_the_documented_accuracy(torch_real_run):
    out, result = torch_real_run
    rows = _table(out)
    assert rows["mobilenet_v2"]["Acc@1"] == pytest.approx(67.0, abs=0.01)
    assert rows["mobilenet_v2"]["Acc@5"] == pytest.approx(89.6, abs=0.01)
    # SOURCE.md's 65.6 to 66.0 was measured with torch.topk's order among equal probabilities; the int8
    # model's outputs tie at the top on 11 of the 500 images, and ties now go to the lower class
    # (torch_predict.topk, issue 21), which gives Acc@1 66.2 and, ties at the fifth place, Acc@5 90.0 (not 90.2)
    assert 65.6 <= rows["quantized_mobilenet_v2"]["Acc@1"] <= 66.2
    assert 90.0 <= rows["quantized_mobilenet_v2"]["Acc@5"] <= 90.2
    preds = np.load(out / "quantized_mobilenet_v2_pytorch_imagenet_top5preds.npy", allow_pickle=False)
    probs = np.load(out / "quantized_mobilenet_v2_pytorch_imagenet_top5probs.npy", allow_pickle=False)
    tied = probs[:, :-1] == probs[:, 1:]
    assert tied[:, 0].sum() > 5 and (preds[:, :-1][tied] < preds[:, 1:][tied]).all()  # the lower class first
    assert "mobilenet_v2: Acc@1 67.00  Acc@5 89.60" in result.stderr
    assert "10 of 1000 classes present" in result.stderr


@pytest.mark.slow
def test_outputs_are_sorted_topk_with_a_complete_manifest(torch_real_run):
    out, _ = torch_real_run
    preds = np.load(out / "mobilenet_v2_pytorch_imagenet_top5preds.npy", allow_pickle=False)
    probs = np.load(out / "mobilenet_v2_pytorch_imagenet_top5probs.npy", allow_pickle=False)
    assert preds.shape == probs.shape == (500, 5) and preds.dtype == np.int64 and probs.dtype == np.float32
    assert (np.diff(probs, axis=1) <= 0).all()
    assert len(np.unique(preds[:, 0])) > 20  # real weights: predictions vary
    m = json.loads((out / "mobilenet_v2_pytorch_imagenet_manifest.json").read_text())
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
    ):
        assert key in m, key
    assert m["weights"]["sha256"] == __import__("hashlib").sha256((WEIGHTS / MNV2).read_bytes()).hexdigest()
    assert m["numerics"]["tf32_matmul"] is False and m["numerics"]["dtype"] == "float32"
    assert m["published"]["acc1"] == 71.878
    assert m["command"][:3] == ["python", str(ROOT / SCRIPT), str(VAL500)]  # to run it again
    assert m["preprocessing"]["resize_size"] == 256 and m["preprocessing"]["crop_size"] == 224
    info = json.loads((out / "dataset.json").read_text())
    assert info["n_images"] == 500 and info["n_classes_present"] == 10 and info["protocol"] == "reference"
    assert info["fingerprint"] == m["dataset"]["fingerprint"]
    truth = dict(ln.split() for ln in shared(VAL_FULL_TXT).read_text().splitlines())
    names = (out / "dataset_files.txt").read_text().split()
    assert np.load(out / "dataset_labels.npy").tolist() == [int(truth[n]) for n in names]
    q = json.loads((out / "quantized_mobilenet_v2_pytorch_imagenet_manifest.json").read_text())
    assert q["numerics"]["quantized_engine"] == "qnnpack" and q["device"]["name"] == "cpu"


@pytest.mark.slow
def test_rerun_skips_complete_models(torch_real_run):
    out, _ = torch_real_run
    before = (out / "mobilenet_v2_pytorch_imagenet_top5preds.npy").stat().st_mtime_ns
    result = run_script(SCRIPT, VAL500, "-m", "mobilenet_v2", "--weights-file", WEIGHTS / MNV2, "-o", out)
    assert result.returncode == 0 and "skipped" in result.stderr
    assert (out / "mobilenet_v2_pytorch_imagenet_top5preds.npy").stat().st_mtime_ns == before


@pytest.mark.slow
def test_imagefolder_and_flat_layouts_give_identical_files(tmp_path):
    flat = flat_copy(tmp_path / "flat", shared(VAL500))
    common = ["-m", "mobilenet_v2", "--weights-file", shared(WEIGHTS / MNV2), "--per-class", "8", "-j", "0"]
    a = run_script(SCRIPT, VAL500, *common, "-o", tmp_path / "a")
    b = run_script(SCRIPT, flat, "--val-ground-truth", shared(VAL_FULL_TXT), *common, "-o", tmp_path / "b")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    for name in (
        "mobilenet_v2_pytorch_imagenet_top5preds.npy",
        "mobilenet_v2_pytorch_imagenet_top5probs.npy",
        "dataset_labels.npy",
        "dataset_files.txt",
    ):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    preds = np.load(tmp_path / "a" / "mobilenet_v2_pytorch_imagenet_top5preds.npy")
    assert len(preds) == 80 and len(np.unique(preds[:, 0])) > 10
    ma, mb = (json.loads((tmp_path / d / "mobilenet_v2_pytorch_imagenet_manifest.json").read_text()) for d in "ab")
    assert mb["dataset"]["layout"] == "flat" and ma["dataset"]["subset"] == {"per_class": 8}
    assert _comparable(ma) == _comparable(mb)


@pytest.mark.slow
def test_model_spec_efficientnet_lite0(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    spec = ROOT / "tests" / "specs" / "efficientnet_lite0.py"
    right = run_script(
        SCRIPT,
        shared(VAL500),
        "--model-spec",
        f"{spec}:lite0",
        "--name",
        "efficientnet_lite0",
        "-o",
        tmp_path / "right",
        "-j",
        "0",
    )
    wrong = run_script(
        SCRIPT,
        VAL500,
        "--model-spec",
        f"{spec}:lite0_imagenet_mean_std",
        "--name",
        "efficientnet_lite0_meanstd",
        "-o",
        tmp_path / "wrong",
        "-j",
        "0",
    )
    assert right.returncode == 0 and wrong.returncode == 0, right.stderr + wrong.stderr
    r, w = _table(tmp_path / "right")["efficientnet_lite0"], _table(tmp_path / "wrong")["efficientnet_lite0_meanstd"]
    assert (r["Acc@1"], r["Acc@5"]) == (pytest.approx(69.2, abs=0.5), pytest.approx(91.4, abs=0.5))
    assert (w["Acc@1"], w["Acc@5"]) == (pytest.approx(62.2, abs=0.5), pytest.approx(86.4, abs=0.5))
    m = json.loads((tmp_path / "right" / "efficientnet_lite0_pytorch_imagenet_manifest.json").read_text())
    assert m["preprocessing"]["mean"] == [127 / 255] * 3 and "model-spec" in m["weights"]["source"]


@pytest.mark.slow
def test_list_models_reads_metadata_only():
    result = run_script(SCRIPT, "--list-models")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert sum(1 for ln in lines[1:] if "left out" not in ln) == 128
    assert any(ln.startswith("vgg16.IMAGENET1K_FEATURES") and "left out" in ln for ln in lines)
    resnet = next(ln for ln in lines if ln.startswith("resnet50 "))
    assert "76.13" in resnet and "25.6" in resnet and "crop 224" in resnet
    shard = run_script(SCRIPT, "--list-models", "--model-shard", "1/4")
    assert len(shard.stdout.splitlines()) - 2 == len(lines[1:-1][1::4])


@pytest.mark.slow
def test_list_models_timm_shows_params_and_builds_nothing(monkeypatch, capsys):
    """Issue 10: timm's params (and GFLOPs where timm published them) come from a data file; the
    listing, run in-process with timm.create_model refused, builds no model."""
    import timm

    from imagenet_bench.models import timm_registry
    from imagenet_bench.predict import listing

    monkeypatch.setattr(timm, "create_model", lambda *a, **k: pytest.fail("--list-models built a model"))
    listing.print_models("pytorch", "timm", "reference", None)
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:] if line.startswith("timm.")]
    assert len(rows) == len(timm_registry.entries()) >= 1300
    for row in rows:  # id, size, params(M), ...
        assert float(row[2]) > 0, row
    by_id = {row[0]: row for row in rows}
    assert by_id["timm.resnet50.tv_in1k"][1:4] == ["224", "25.6", "4.11"]  # timm's benchmark file: 4.11 GMACs
    assert by_id["timm.resnet50.a1_in1k"][1:4] == ["288", "25.6", "6.80"]  # at its test size


def _bad(tmp_path, *args):
    return bad_run(SCRIPT, tmp_path / "out", *args)


@pytest.mark.slow
def test_bad_inputs_are_one_line_exit_2_and_write_nothing(tmp_path):
    line, out = _bad(tmp_path, tmp_path / "missing", "-m", "mobilenet_v2")
    assert "missing: validation folder does not exist" in line and not out.exists()
    line, _ = _bad(tmp_path, VAL500, "-m", "no_such_model")
    assert "'no_such_model': no such model" in line
    line, _ = _bad(tmp_path, VAL500, "-m", "resnet18", "resnet34", "--weights-file", WEIGHTS / MNV2)
    assert "needs exactly one model" in line
    line, _ = _bad(tmp_path, VAL500, "-m", "resnet50.IMAGENET1K_V2", "--protocol", "seed2019")
    assert "21 models of 2019" in line
    line, _ = _bad(tmp_path, VAL500, "-m", "mobilenet_v2", "--device", "cuda")
    assert "CUDA is not available" in line  # no CUDA, on any machine: conftest hides the GPUs
    line, _ = _bad(tmp_path, VAL500, "-m", "mobilenet_v2", "--device", "cuda:abc")
    assert "expected cpu, cuda or cuda:N" in line
    result = run_script(SCRIPT, VAL500, "--model-spec", "x.py:f", "--name", "x", "--weights-file", WEIGHTS / MNV2)
    assert result.returncode == 2 and "cannot be used together" in result.stderr
    result = run_script(SCRIPT, VAL500, "-m", "mobilenet_v2", "-b", "0")
    assert result.returncode == 2 and "error: argument -b/--batch-size: must be at least 1, not 0" in result.stderr
    spec = tmp_path / "spec.py"
    spec.write_text("def f():\n    return 42\n")
    line, _ = _bad(tmp_path, VAL500, "--model-spec", f"{spec}:f", "--name", "x")
    assert "must return (torch.nn.Module" in line
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"x")
    line, out = _bad(tmp_path, tmp_path / "flat", "-m", "mobilenet_v2")
    assert "--val-ground-truth" in line and not out.exists()


@pytest.mark.slow
def test_weights_file_that_does_not_fit_fails_that_model_only(tmp_path):
    result = run_script(
        SCRIPT,
        shared(VAL500),
        "-m",
        "resnet18",
        "mobilenet_v2",
        "--limit",
        "4",
        "-j",
        "0",
        "--weights-file",
        f"resnet18={WEIGHTS / MNV2}",
        "--weights-file",
        f"mobilenet_v2={WEIGHTS / MNV2}",
        "-o",
        tmp_path / "out",
    )
    assert result.returncode == 2  # a bad --weights-file is bad input
    assert "error: resnet18 failed:" in result.stderr and "does not fit resnet18" in result.stderr
    assert "1 done, 0 skipped (already complete), 1 failed: resnet18" in result.stderr
    assert (tmp_path / "out" / "mobilenet_v2_pytorch_imagenet_manifest.json").exists()
    assert not (tmp_path / "out" / "resnet18_pytorch_imagenet_top5preds.npy").exists()


@pytest.mark.slow
def test_corrupt_image_stops_the_model_naming_the_file(tmp_path):
    val_with_truncated_image(tmp_path)
    for workers in ("0", "1"):
        line, out = _bad(
            tmp_path,
            tmp_path / "val",
            "-m",
            "squeezenet1_1",
            "--weights-file",
            _random_weights(tmp_path),
            "-j",
            workers,
        )
        assert "/ILSVRC2012_val_00000002.JPEG: cannot decode image" in line
        assert not out.exists()


@pytest.mark.slow
def test_output_folder_of_another_dataset_is_refused(torch_real_run, tmp_path):
    out, _ = torch_real_run
    before = sorted(os.listdir(out))
    result = run_script(SCRIPT, VAL500, "-m", "mobilenet_v2", "--per-class", "2", "-o", out)
    assert result.returncode == 2 and "holds outputs of another dataset or protocol" in result.stderr
    assert "pick another -o" in result.stderr
    assert sorted(os.listdir(out)) == before


def _random_weights(tmp_path):
    import torch
    from torchvision import models

    path = tmp_path / "squeezenet.pth"
    if not path.exists():
        torch.save(models.squeezenet1_1().state_dict(), path)
    return path


@pytest.mark.slow
def test_timm_source_lists_offline_and_runs_with_a_weights_file(tmp_path):
    import timm
    import torch

    listing = run_script(SCRIPT, "--list-models", "--source", "timm", env={"HF_HUB_OFFLINE": "1"})
    assert listing.returncode == 0, listing.stderr
    rows = [ln for ln in listing.stdout.splitlines()[1:] if ln.startswith("timm.")]
    assert len(rows) == len(__import__("imagenet_bench.models.timm_registry", fromlist=["x"]).entries()) >= 1300
    torch.manual_seed(0)
    weights = tmp_path / "test_vit.pth"
    torch.save(timm.create_model("test_vit.r160_in1k", pretrained=False).state_dict(), weights)
    out = tmp_path / "out"
    result = run_script(
        SCRIPT,
        shared(VAL500),
        "--source",
        "timm",
        "-m",
        "timm.test_vit.r160_in1k",
        "--weights-file",
        weights,
        "--per-class",
        "1",
        "-j",
        "0",
        "-o",
        out,
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    m = json.loads((out / "timm.test_vit.r160_in1k_pytorch_imagenet_manifest.json").read_text())
    assert m["framework"]["name"] == "timm" and m["framework"]["timm"] == timm.__version__
    assert m["weights"]["tag"] == "r160_in1k" and m["weights"]["pretrained_cfg"]["num_classes"] == 1000
    assert m["preprocessing"]["crop_size"] == 160
    assert np.load(out / "timm.test_vit.r160_in1k_pytorch_imagenet_top5preds.npy").shape == (10, 5)


@pytest.mark.slow
def test_failed_download_names_the_url_and_where_to_put_the_file(tmp_path):
    """No network (NO_NETWORK, whether the machine has one or not): torchvision's download fails,
    and says so in one line."""
    result = run_script(
        SCRIPT,
        shared(VAL500),
        "-m",
        "squeezenet1_1",
        "--limit",
        "2",
        "-j",
        "0",
        "-o",
        tmp_path / "out",
        env={**NO_NETWORK, "TORCH_HOME": str(tmp_path / "th")},
    )
    assert result.returncode == 1
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("error: squeezenet1_1 failed"))
    assert "https://download.pytorch.org/models/squeezenet1_1-" in line
    assert f"put that file in {tmp_path / 'th' / 'hub' / 'checkpoints'} (TORCH_HOME)" in line
    assert not (tmp_path / "out").exists()
