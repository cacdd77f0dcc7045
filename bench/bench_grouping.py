#!/usr/bin/env python
"""Decode once, run many: four cheap models grouped in one pass against one at a time.

In one run, through imagenet_pytorch_get_predictions.py itself, on real-size JPEGs
(bench/realistic_jpegs.py: 500 x 375, about 105 KB): mobilenet_v3_small,
shufflenet_v2_x0_5, squeezenet1_1 and mnasnet0_5 (random weights, seeded, passed as
--weights-file; they share resize 256 / crop 224 / bilinear), with --group-size 4
and with --group-size 1, alternating, REPEATS times each. Prints the wall time of
each configuration (median of the process's wall time) and of its prediction loops
alone (from the manifests), their ratios (target >= 1.15x on a 2-core CPU), images decoded
per dataset image (from the manifests' ``pass`` records: target 1 per group) and checks that
both give identical prediction files.

Usage: python bench/bench_grouping.py [--images 200] [--repeats 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import realistic_jpegs  # noqa: E402

MODELS = ("mobilenet_v3_small", "shufflenet_v2_x0_5", "squeezenet1_1", "mnasnet0_5")


def save_random_weights(folder: Path) -> list[str]:
    import torch
    from torchvision import models

    from imagenet_bench.models import torch_registry

    geometries = {torch_registry.by_id()[m].preprocess("reference").geometry for m in MODELS}
    assert len(geometries) == 1, f"the four models do not share one preprocessing: {geometries}"
    args = []
    for model_id in MODELS:
        torch.manual_seed(0)
        path = folder / f"{model_id}.pth"
        torch.save(models.get_model(model_id).state_dict(), path)
        args += ["--weights-file", f"{model_id}={path}"]
    return args


def run(val: Path, out: Path, group_size: int, weights: list[str], workers: int) -> float:
    cmd = [
        sys.executable,
        str(ROOT / "imagenet_pytorch_get_predictions.py"),
        str(val),
        "-m",
        *MODELS,
        *weights,
        "-o",
        str(out),
        "-j",
        str(workers),
        "-b",
        "50",
        "--group-size",
        str(group_size),
        "--overwrite",
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def pass_seconds(out: Path) -> float:
    """Wall time of the prediction loops (decode + forward), from the manifests: one per pass."""
    walls = {}
    for model_id in MODELS:
        record = json.loads((out / f"{model_id}_pytorch_imagenet_manifest.json").read_text())
        walls[tuple(record["pass"]["models"])] = record["throughput"]["wall_time_s"]
    return sum(walls.values())


def decoded_per_image(out: Path, n: int) -> float:
    passes = {}
    for model_id in MODELS:
        record = json.loads((out / f"{model_id}_pytorch_imagenet_manifest.json").read_text())["pass"]
        passes[tuple(record["models"])] = record["images_decoded"]
    return sum(passes.values()) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        val = realistic_jpegs.make_val_set(tmp / "val", args.images)
        weights = save_random_weights(tmp)
        times: dict[int, list[float]] = {1: [], 4: []}
        loops: dict[int, list[float]] = {1: [], 4: []}
        for _ in range(args.repeats):
            for size in (1, 4):
                times[size].append(run(val, tmp / f"out{size}", size, weights, args.workers))
                loops[size].append(pass_seconds(tmp / f"out{size}"))
        same = all(
            (tmp / "out1" / f"{m}_pytorch_imagenet_top5{k}.npy").read_bytes()
            == (tmp / "out4" / f"{m}_pytorch_imagenet_top5{k}.npy").read_bytes()
            for m in MODELS
            for k in ("preds", "probs")
        )
        alone, grouped = statistics.median(times[1]), statistics.median(times[4])
        print(
            f"{args.images} JPEGs of {realistic_jpegs.mean_file_kb(val):.0f} KB, {os.cpu_count()} CPUs, "
            f"-j {args.workers}, -b 50, models: {', '.join(MODELS)}"
        )
        print(
            f"one model at a time (--group-size 1): {alone:7.2f} s   "
            f"{decoded_per_image(tmp / 'out1', args.images):.0f} "
            f"decodes per image   runs {', '.join(f'{t:.1f}' for t in times[1])}"
        )
        print(
            f"grouped (--group-size 4):             {grouped:7.2f} s   "
            f"{decoded_per_image(tmp / 'out4', args.images):.0f} "
            f"decodes per image   runs {', '.join(f'{t:.1f}' for t in times[4])}"
        )
        loop_alone, loop_grouped = statistics.median(loops[1]), statistics.median(loops[4])
        print(f"speed-up, whole process: {alone / grouped:.2f}x (target >= 1.15x); identical prediction files: {same}")
        print(
            f"prediction loops only (manifests): {loop_alone:.2f} s against {loop_grouped:.2f} s, "
            f"{loop_alone / loop_grouped:.2f}x (start-up, imports and model builds excluded)"
        )


if __name__ == "__main__":
    main()
