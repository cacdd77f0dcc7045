"""Accuracy beside cost (--speed): device, throughput, parameters, GFLOPs and the frontier per
device, from manifests or from the registries' data.
"""

from __future__ import annotations

from helpers import by_model_rows, ok_csv, synthetic_labels, write_dataset, write_model


def test_speed_columns_and_frontier_per_device(tmp_path):
    labels = synthetic_labels()
    folder = tmp_path / "runs"
    write_dataset(folder, labels)
    spec = {  # model: (images right, device, images/s, params)
        "a": (150, "NVIDIA A100", 100.0, 25_000_000),
        "b": (120, "NVIDIA A100", 300.0, 5_000_000),
        "c": (100, "NVIDIA A100", 200.0, None),
        "d": (90, "cpu", 20.0, 3_000_000),
    }
    for model, (right, device, speed, params) in spec.items():
        manifest = {
            "device": {"name": "cuda", "model": device},
            "batch_size": 64,
            "throughput": {"images_per_s": speed},
            "request": {"source": "timm"},
        }
        if params:
            manifest["params"] = params
        write_model(folder, model, labels, range(right), manifest=manifest)
    rows = by_model_rows(ok_csv("--dir", folder, "--speed"))
    assert by_model_rows(ok_csv("--dir", folder, "--speed")) == rows  # the rerun takes manifests from the cache
    # c is beaten by b (more accurate and faster on the same device); d is alone on the CPU
    assert {m: r["Frontier"] for m, r in rows.items()} == {"a": "*", "b": "*", "c": "", "d": "*"}
    assert (rows["a"]["Device"], rows["a"]["images/s"], rows["a"]["Batch"], rows["a"]["Params (M)"]) == (
        "NVIDIA A100",
        "100.0",
        "64",
        "25.0",
    )
    assert rows["c"]["Params (M)"] == "" and rows["c"]["GFLOPs"] == ""


def test_speed_costs_from_the_registries_data_where_manifests_lack_them(seed_dirs):
    """torchvision documents resnet50 (IMAGENET1K_V1) at 25.6 M parameters and 4.09 GFLOPs;
    keras.io lists Xception at 22.9 M parameters and no GFLOPs. The 2019 files have no
    manifest: no speed, no device, so no frontier mark."""
    keras, pytorch = seed_dirs
    rows = {(r["Platform"], r["Model"]): r for r in ok_csv("-k", keras, "-p", pytorch, "--speed")}
    assert (rows["PyTorch", "resnet50"]["Params (M)"], rows["PyTorch", "resnet50"]["GFLOPs"]) == ("25.6", "4.09")
    assert (rows["Keras", "xception"]["Params (M)"], rows["Keras", "xception"]["GFLOPs"]) == ("22.9", "")
    assert all(r["images/s"] == r["Device"] == r["Frontier"] == "" for r in rows.values())
