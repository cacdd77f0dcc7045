"""Decode once, run many (issue 5): grouped passes, the pixel cache and torchrun give
the same prediction files as one model at a time, with real weights."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from conftest import ROOT, VAL500, WEIGHTS, run_script, shared, torchrun

pytestmark = pytest.mark.slow  # every test here runs real models or prediction runs

SCRIPT = "imagenet_pytorch_get_predictions.py"
MODELS = ("mobilenet_v2", "quantized_mobilenet_v2")


def _args():
    return [
        shared(VAL500),
        "-m",
        *MODELS,
        "--per-class",
        "6",
        "-j",
        "0",
        "-b",
        "16",
        "--weights-file",
        f"mobilenet_v2={shared(WEIGHTS / 'torchvision_mobilenet_v2_dequantized.pth')}",
        "--weights-file",
        f"quantized_mobilenet_v2={WEIGHTS / 'torchvision_quantized_mobilenet_v2_qnnpack.pth'}",
    ]


def _arrays(folder):
    return {
        f"{m}_{kind}": np.load(folder / f"{m}_pytorch_imagenet_top5{kind}.npy", allow_pickle=False)
        for m in MODELS
        for kind in ("preds", "probs")
    }


def _bytes(folder):
    return {m: (folder / f"{m}_pytorch_imagenet_top5{k}.npy").read_bytes() for m in MODELS for k in ("preds", "probs")}


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    out = tmp_path_factory.mktemp("alone")
    result = run_script(SCRIPT, *_args(), "--group-size", "1", "-o", out)
    assert result.returncode == 0, result.stderr
    preds = np.load(out / "mobilenet_v2_pytorch_imagenet_top5preds.npy")
    assert len(np.unique(preds[:, 0])) > 10  # real weights: the predictions vary across images
    return out


def test_grouped_pass_is_bit_for_bit_one_model_at_a_time(alone, tmp_path):
    result = run_script(SCRIPT, *_args(), "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert _bytes(tmp_path) == _bytes(alone)
    manifests = [json.loads((tmp_path / f"{m}_pytorch_imagenet_manifest.json").read_text()) for m in MODELS]
    assert all(m["pass"]["models"] == list(MODELS) for m in manifests)
    assert manifests[0]["pass"]["images_decoded"] == 60  # one decode per image for the whole group
    alone_manifest = json.loads((alone / "mobilenet_v2_pytorch_imagenet_manifest.json").read_text())
    assert alone_manifest["pass"]["models"] == ["mobilenet_v2"]


def test_pixel_cache_is_reused_and_bit_for_bit(alone, tmp_path):
    cache = tmp_path / "cache"
    first = run_script(SCRIPT, *_args(), "--cache-dir", cache, "-o", tmp_path / "a")
    assert first.returncode == 0, first.stderr
    entries = [p for p in cache.iterdir() if p.is_dir()]
    assert len(entries) == 1 and (entries[0] / "key.json").exists()
    pixels = entries[0] / "pixels.npy"
    stamp = pixels.stat().st_mtime_ns
    second = run_script(SCRIPT, *_args(), "--cache-dir", cache, "--group-size", "1", "-o", tmp_path / "b")
    assert second.returncode == 0, second.stderr
    assert pixels.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert _bytes(tmp_path / "a") == _bytes(alone) == _bytes(tmp_path / "b")
    m = json.loads((tmp_path / "b" / "mobilenet_v2_pytorch_imagenet_manifest.json").read_text())
    assert m["pass"]["images_decoded"] == 0 and m["pass"]["pixel_cache"] == str(entries[0])


def test_a_damaged_cache_entry_is_rebuilt_not_used(alone, tmp_path):
    cache = tmp_path / "cache"
    assert run_script(SCRIPT, *_args(), "--cache-dir", cache, "-o", tmp_path / "a").returncode == 0
    entry = next(p for p in cache.iterdir() if p.is_dir())
    data = bytearray((entry / "pixels.npy").read_bytes())
    (entry / "pixels.npy").write_bytes(bytes(data[:-1000]))  # truncated
    assert run_script(SCRIPT, *_args(), "--cache-dir", cache, "-o", tmp_path / "b").returncode == 0
    assert (entry / "pixels.npy").stat().st_size == len(data)
    key = json.loads((entry / "key.json").read_text())
    key["pil"] = "0.0"  # made by another PIL
    (entry / "key.json").write_text(json.dumps(key))
    assert run_script(SCRIPT, *_args(), "--cache-dir", cache, "-o", tmp_path / "c").returncode == 0
    assert json.loads((entry / "key.json").read_text())["pil"] != "0.0"
    assert _bytes(tmp_path / "b") == _bytes(alone) == _bytes(tmp_path / "c")


def test_torchrun_two_processes_gloo_match_one_process(alone, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = torchrun(
        ROOT / SCRIPT, *map(str, _args()), "--device", "cpu", "-o", str(tmp_path), log_dir=tmp_path / "torchrun-logs"
    )
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    got, want = _arrays(tmp_path), _arrays(alone)
    for m in MODELS:
        assert np.array_equal(got[f"{m}_preds"], want[f"{m}_preds"])  # identical top-k
        assert np.allclose(got[f"{m}_probs"], want[f"{m}_probs"], rtol=1e-5, atol=1e-6)
    manifest = json.loads((tmp_path / "mobilenet_v2_pytorch_imagenet_manifest.json").read_text())
    assert manifest["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert [r["wall_time_s"] > 0 for r in manifest["throughput"]["per_rank"]] == [True, True]
    assert manifest["pass"]["images_decoded"] == 60  # every image once, no padding


def test_both_scripts_share_one_cache_entry(tmp_path):
    """torchvision mobilenet_v2 (reference) and Keras mobilenetV2 (--protocol common) use the
    same geometry; the Keras model processes read the entry the PyTorch run filled, and
    get the same predictions as decoding themselves."""
    cache = tmp_path / "cache"
    torch_run = run_script(
        SCRIPT,
        shared(VAL500),
        "-m",
        "mobilenet_v2",
        "--per-class",
        "6",
        "-j",
        "0",
        "--weights-file",
        WEIGHTS / "torchvision_mobilenet_v2_dequantized.pth",
        "--cache-dir",
        cache,
        "-o",
        tmp_path / "pt",
    )
    assert torch_run.returncode == 0, torch_run.stderr
    (entry,) = [p for p in cache.iterdir() if p.is_dir()]
    stamp = (entry / "pixels.npy").stat().st_mtime_ns
    keras = [
        "imagenet_keras_get_predictions.py",
        shared(VAL500),
        "-m",
        "mobilenetV2",
        "--protocol",
        "common",
        "--per-class",
        "6",
        "-b",
        "20",
        "--weights-file",
        shared(WEIGHTS / "keras_mobilenetv2_alpha1.0_224.weights.h5"),
    ]
    cached = run_script(*keras, "--cache-dir", cache, "-o", tmp_path / "kc")
    plain = run_script(*keras, "-o", tmp_path / "kp")
    assert cached.returncode == 0 and plain.returncode == 0, cached.stderr[-2000:] + plain.stderr[-2000:]
    assert (entry / "pixels.npy").stat().st_mtime_ns == stamp
    for kind in ("preds", "probs"):
        name = f"mobilenetV2_keras_imagenet_top5{kind}.npy"
        assert (tmp_path / "kc" / name).read_bytes() == (tmp_path / "kp" / name).read_bytes()
    m = json.loads((tmp_path / "kc" / "mobilenetV2_keras_imagenet_manifest.json").read_text())
    assert m["pixel_cache"] == str(entry / "pixels.npy")
    assert len(np.unique(np.load(tmp_path / "kc" / "mobilenetV2_keras_imagenet_top5preds.npy")[:, 0])) > 10


def test_torchrun_splits_an_uneven_count_exactly_without_padding(tmp_path):
    """61 images over 2 ranks (31 + 30): the files are byte for byte one process's, with one
    image per batch and one thread in both (so every image's arithmetic is the same), and every
    image is decoded once: a sampler that pads to an even split would decode 62."""
    args = [
        shared(VAL500),
        "-m",
        "mobilenet_v2",
        "--weights-file",
        shared(WEIGHTS / "torchvision_mobilenet_v2_dequantized.pth"),
        "--limit",
        "61",
        "-j",
        "0",
        "-b",
        "1",
    ]
    env = {"OMP_NUM_THREADS": "1"}
    one = run_script(SCRIPT, *args, "-o", tmp_path / "one", env=env)
    assert one.returncode == 0, one.stderr
    cmd = torchrun(
        ROOT / SCRIPT,
        *map(str, args),
        "--device",
        "cpu",
        "-o",
        str(tmp_path / "two"),
        log_dir=tmp_path / "torchrun-logs",
    )
    result = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **env), cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    preds = np.load(tmp_path / "one" / "mobilenet_v2_pytorch_imagenet_top5preds.npy")
    assert preds.shape == (61, 5) and len(np.unique(preds[:, 0])) > 3  # real weights: predictions vary
    for name in (
        "mobilenet_v2_pytorch_imagenet_top5preds.npy",
        "mobilenet_v2_pytorch_imagenet_top5probs.npy",
        "dataset_labels.npy",
        "dataset_files.txt",
    ):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    manifest = json.loads((tmp_path / "two" / "mobilenet_v2_pytorch_imagenet_manifest.json").read_text())
    assert manifest["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert manifest["pass"]["images_decoded"] == 61 and len(manifest["throughput"]["per_rank"]) == 2
