#!/usr/bin/env python
"""How long the overnight run of every model takes, from what bench/gpu_check.py measured.

Why a model and not a table of timings: the check measures a handful of models on one
GPU (resnet50 in every numeric mode, eight cheap models, decoding on the CPU); the
overnight run has about 1,500. Across models, images/s falls with the model's GFLOPs
(log images/s is close to linear in log GFLOPs: BENCHMARKS.md checks this against
timm's own throughput table, r = -0.94), so the line's slope comes from timm's table and
its level from the measured models, the registries give each model's GFLOPs, and the line
gives each model's images/s.

The model of one pass (a group of models that share one decode, or one model):
    seconds = images x max(1 / decode rate, sum over the group of 1 / model images/s)
plus a fixed cost per model (building it, moving it to the GPU), because the DataLoader
decodes ahead while the GPU runs. bf16 is float32 times the measured resnet50 speed-up.
8 GPUs: torchrun splits the images, so each GPU sees 1/8 of them with its share of the
cores (assumed: as many cores per GPU as the measured machine). Keras runs one model per
process, one image at a time by default: a fixed cost per image (measured on
MobileNetV2) plus the model's time at the PyTorch float32 rate; with --gpus, one model
per GPU in parallel. Warm-up (a model's first batch; Keras's trace) is paid once a model,
beside its build, not per image. torchvision's quantized models run on the CPU in a GPU run:
time in proportion to GFLOPs from the measured quantized MobileNetV2.

GFLOPs (as torchvision and timm count them: multiply-adds, 4.1 for resnet50): torchvision
from its weights metadata (``_ops``); timm from timm's benchmark table (by architecture and
image size; pass --timm-benchmark); Keras from the same architecture in torchvision or timm,
scaled by resolution squared and width multiplier squared for the MobileNet variants
(an approximation). A model with no GFLOPs known is counted at its registry's median.

Usage: python bench/overnight_estimate.py SUMMARY.json [--timm-benchmark CSV]
(recomputes the estimate of a check's summary, for example on a machine with ../shared).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_TIMM_BENCHMARK = (
    ROOT.parent / "shared" / "reference" / "timm-results" / "benchmark-infer-amp-nchw-pt291-cu130-5090.csv"
)
# Images per dataset: the val set, and the test sets of the issue "Every model off the val set".
DATASETS = {
    "val": 50_000,
    "imagenetv2": 30_000,
    "sketch": 50_889,
    "imagenet-a": 7_500,
    "imagenet-r": 30_000,
    "imagenet-c-5k": 15 * 5 * 5_000,  # RobustBench's reduced ImageNet-C: 5,000 images a folder, 15 x 5 folders
}
IMAGENET_C_FOLDERS = 15 * 5  # the full ImageNet-C: 75 val-sized folders, 75 times the val hours
# Test sets of several folders: a sweep runs each (model, folder) pair apart, so every model is
# built (a Keras model process started) and warmed up once a folder.
FOLDERS = {"imagenet-c-5k": IMAGENET_C_FOLDERS}


def per_folder(dataset: str, n: int) -> tuple[int, int]:
    """(folders, images a folder) of a dataset of ``n`` images."""
    folders = FOLDERS.get(dataset, 1)
    return folders, n // folders


# Regenerating ImageNet-C's 15 corruptions on the CPU (python -m imagenet_bench.corrupt): seconds
# per val image and severity, summed over the 15, on one core of this project's shared 2-core
# machine (docs/test-sets.md), and assumed to scale with the cores (one worker a core).
REGENERATION_S_PER_IMAGE = 0.373


def regeneration_hours(cores: int) -> dict[str, float]:
    """Hours to regenerate the reduced and the full ImageNet-C with one worker per core."""
    per_folder_set = {"imagenet-c-5k": 5_000 * 5, "imagenet-c": 50_000 * 5}
    return {name: round(n * REGENERATION_S_PER_IMAGE / max(1, cores) / 3600, 2) for name, n in per_folder_set.items()}


GPU_COUNTS = (1, 8)
# The slope of log images/s against log GFLOPs across timm's 1,627 measured models (RTX 5090,
# AMP; ../shared/reference/timm-results), from bench/bench_gflops_throughput.py. The check
# measures too few models, all but resnet50 cheap and memory-bound, to fit a slope of its own
# (their slope, -0.42, misses timm's models by a median 104%); with this slope and the level
# from the check's models the median miss is 32% (BENCHMARKS.md).
TABLE_SLOPE = -0.701

QUANTIZED = "torchvision quantized"
# int8 on the CPU is compute-bound: time in proportion to GFLOPs (slope -1), the level from the
# measured quantized MobileNetV2. An approximation: no more than one quantized model is measured.
QUANTIZED_SLOPE = -1.0


class EstimateError(Exception):
    """The summary lacks a measurement the estimate needs (the message names the step)."""


@dataclass(frozen=True)
class Fit:
    """log(images/s) = intercept + slope * log(GFLOPs), fitted across measured models."""

    intercept: float
    slope: float
    points: int

    def images_per_s(self, gflops: float) -> float:
        return math.exp(self.intercept + self.slope * math.log(gflops))


def fit(points: list[tuple[float, float]], slope: float = TABLE_SLOPE) -> Fit:
    """The line with the given slope through the measured points (least squares on the logs:
    the intercept is the mean of log images/s - slope * log GFLOPs)."""
    points = [(g, ips) for g, ips in points if g and ips and g > 0 and ips > 0]
    if not points:
        raise EstimateError("no model measured with both GFLOPs and images/s")
    intercept = statistics.fmean(math.log(ips) - slope * math.log(g) for g, ips in points)
    return Fit(intercept, slope, len(points))


@dataclass(frozen=True)
class Measured:
    """What the estimate takes from a check's summary."""

    torch_points: list[tuple[float, float]]  # (GFLOPs, model-only images/s), float32 TF32 off
    bf16_factor: float  # resnet50 model-only images/s, bf16 over float32
    bf16_flags: str
    decode_per_worker: float  # images/s one decoding process gives
    cores: int
    build_s: float  # fixed cost per model: build, move to the device
    keras_one_ips: float | None  # MobileNetV2 one image at a time, end to end
    keras_batched_ips: float | None  # MobileNetV2 batched, model only
    keras_build_s: float | None
    keras_gflops: float | None  # MobileNetV2's
    torch_warm_up_s: float = 0.0  # a model's first batch (kernels chosen, memory allocated), paid once a model
    keras_warm_up_s: float = 0.0  # the first predict call (the tf.function traced), paid by every model process
    quantized_ips: float | None = None  # quantized MobileNetV2 on the CPU, every core, model only, after warm-up
    quantized_gflops: float | None = None


def _ok(steps: dict[str, Any], name: str) -> dict[str, Any]:
    step = steps.get(name) or {}
    if step.get("status") != "ok":
        raise EstimateError(
            f"step {name} did not run ({step.get('status', 'absent')}: {step.get('reason') or step.get('error')})"
        )
    return step


def build_seconds(grouping: dict[str, Any], one_model: dict[str, Any]) -> float:
    """Fixed cost per model: the one-at-a-time run's time outside its loops (start-up and its
    models' builds) less that of the one-model float32 run (start-up and one build)."""
    n = len(grouping["models"])
    start_up_and_one = one_model["process_s"] - one_model["wall_time_s"]
    return max(0.0, (grouping["alone"]["fixed_s"] - start_up_and_one) / max(1, n - 1))


def steady_rate(run: dict[str, Any]) -> float:
    """A model's images/s after its first batch (warm-up is paid once a model, in build_s's
    place, not per image); the whole pass's rate where the manifest did not record it."""
    rate: float = run.get("steady_images_per_s") or run["model_images_per_s"]
    return rate


def steady_end_to_end(run: dict[str, Any]) -> float | None:
    """A run's end-to-end images/s after its first batch (the one-at-a-time Keras run: its first
    call traces the model, paid once a model process, not once an image)."""
    rate, wall = run.get("images_per_s"), run.get("wall_time_s")
    first_s, first_n = run.get("first_batch_s"), run.get("first_batch_images")
    if not rate or not wall or first_s is None or not first_n:
        return rate
    images = round(rate * wall)
    return (images - first_n) / (wall - first_s) if images > first_n and wall > first_s else rate


def measured_from_summary(summary: dict[str, Any]) -> Measured:
    steps = summary["steps"]
    numerics = _ok(steps, "torch_numerics")["runs"]
    grouping = _ok(steps, "torch_grouping")
    decode = _ok(steps, "decode")
    fp32 = numerics.get("float32", {})
    if fp32.get("status") != "ok":
        raise EstimateError("torch_numerics: the float32 run failed")
    points = [(fp32["gflops"], steady_rate(fp32))]
    points += [(m["gflops"], steady_rate(m)) for m in grouping["per_model"].values()]
    bf16 = {name: run for name, run in numerics.items() if name.startswith("bf16") and run.get("status") == "ok"}
    best = max(bf16, key=lambda name: bf16[name]["model_images_per_s"], default=None)
    factor = bf16[best]["model_images_per_s"] / fp32["model_images_per_s"] if best else 1.0
    keras = steps.get("keras") or {}
    one, batched = (keras.get("runs") or {}).get("one_at_a_time", {}), (keras.get("runs") or {}).get("batched", {})
    keras_ok = keras.get("status") == "ok" and one.get("status") == "ok" and batched.get("status") == "ok"
    real = (steps.get("real_torch") or {}).get("runs") or {}
    quantized = real.get("cpu quantized") or {}
    quantized_ok = quantized.get("status") == "ok" and bool(quantized.get("model_images_per_s"))
    if summary.get("mode") == "gpu" and any(
        "GPU" not in str((r.get("device") or {}).get("name")) for r in (one, batched)
    ):
        keras_ok = False  # TensorFlow ran on the CPU (it listed no GPU): no measure of the GPU run
    return Measured(
        torch_points=points,
        bf16_factor=factor,
        bf16_flags=bf16[best]["flags"] if best else "(not measured)",
        decode_per_worker=decode["per_worker_images_per_s"],
        cores=summary["machine"]["cpus"],
        build_s=build_seconds(grouping, fp32),
        keras_one_ips=steady_end_to_end(one) if keras_ok else None,
        keras_batched_ips=batched.get("model_images_per_s") if keras_ok else None,
        keras_build_s=one.get("build_s") if keras_ok else None,
        keras_gflops=keras.get("gflops") if keras_ok else None,
        torch_warm_up_s=fp32.get("first_batch_s") or 0.0,
        keras_warm_up_s=(one.get("first_batch_s") or 0.0) if keras_ok else 0.0,
        quantized_ips=steady_rate(quantized) if quantized_ok else None,
        quantized_gflops=quantized.get("gflops") if quantized_ok else None,
    )


# --- each registry's models with their GFLOPs -----------------------------------------------------


@dataclass(frozen=True)
class Model:
    id: str
    gflops: float | None
    geometry: tuple  # models with the same geometry can share one pass
    crop: int  # for the pixel cache's size


def torchvision_models(quantized: bool = False) -> list[Model]:
    """torchvision's float models, or (``quantized``) its int8 ones, which run on the CPU in a GPU run."""
    from imagenet_bench.models import torch_registry

    found = []
    for e in torch_registry.entries():
        if e.quantized != quantized:
            continue
        p = e.preprocess("reference")
        found.append(Model(e.id, e.gflops(), p.geometry, p.crop_size))
    return found


def timm_gflops_table(path: Path | None) -> dict[str, dict[int, float]]:
    """architecture -> image size -> GFLOPs, from timm's benchmark table (GMACs column)."""
    if path is None or not Path(path).exists():
        return {}
    table: dict[str, dict[int, float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("infer_gmacs"):
                table.setdefault(row["model"], {})[int(row["infer_img_size"])] = float(row["infer_gmacs"])
    return table


def scaled(table: dict[int, float], size: int) -> float | None:
    """GFLOPs at ``size`` from the nearest size measured, scaled by the pixel count."""
    if not table:
        return None
    near = min(table, key=lambda s: abs(s - size))
    return table[near] * (size / near) ** 2


def timm_models(table: dict[str, dict[int, float]]) -> list[Model]:
    from imagenet_bench.models import timm_registry

    found = []
    for e in timm_registry.entries():
        p = e.reference_preprocess()
        found.append(Model(e.id, scaled(table.get(e.architecture, {}), p.crop_size), p.geometry, p.crop_size))
    return found


# Keras application -> the same architecture elsewhere: ("torchvision", builder) or ("timm", architecture).
KERAS_COUNTERPARTS: dict[str, tuple[str, str]] = {
    "VGG16": ("torchvision", "vgg16"),
    "VGG19": ("torchvision", "vgg19"),
    "ResNet50": ("torchvision", "resnet50"),
    "ResNet101": ("torchvision", "resnet101"),
    "ResNet152": ("torchvision", "resnet152"),
    "ResNet50V2": ("timm", "resnetv2_50"),
    "ResNet101V2": ("timm", "resnetv2_101"),
    "ResNet152V2": ("timm", "resnetv2_152"),
    "InceptionV3": ("torchvision", "inception_v3"),
    "InceptionResNetV2": ("timm", "inception_resnet_v2"),
    "Xception": ("timm", "legacy_xception"),
    "MobileNet": ("timm", "mobilenetv1_100"),
    "MobileNetV2": ("torchvision", "mobilenet_v2"),
    "MobileNetV3Large": ("torchvision", "mobilenet_v3_large"),
    "MobileNetV3Small": ("torchvision", "mobilenet_v3_small"),
    "DenseNet121": ("torchvision", "densenet121"),
    "DenseNet169": ("torchvision", "densenet169"),
    "DenseNet201": ("torchvision", "densenet201"),
    "NASNetLarge": ("timm", "nasnetalarge"),
    **{f"EfficientNetB{i}": ("torchvision", f"efficientnet_b{i}") for i in range(8)},
    **{f"EfficientNetV2B{i}": ("timm", f"tf_efficientnetv2_b{i}") for i in range(4)},
    "EfficientNetV2S": ("torchvision", "efficientnet_v2_s"),
    "EfficientNetV2M": ("torchvision", "efficientnet_v2_m"),
    "EfficientNetV2L": ("torchvision", "efficientnet_v2_l"),
    "ConvNeXtTiny": ("torchvision", "convnext_tiny"),
    "ConvNeXtSmall": ("torchvision", "convnext_small"),
    "ConvNeXtBase": ("torchvision", "convnext_base"),
    "ConvNeXtLarge": ("torchvision", "convnext_large"),
    "ConvNeXtXLarge": ("timm", "convnext_xlarge"),
}


def _torchvision_at_size() -> dict[str, tuple[float, int]]:
    from imagenet_bench.models import torch_registry

    return {
        e.id: (e.meta["_ops"], e.preprocess("reference").crop_size)
        for e in torch_registry.entries()
        if not e.quantized and "_ops" in e.meta
    }


def keras_models(table: dict[str, dict[int, float]]) -> list[Model]:
    from imagenet_bench.models import keras_registry

    tv = _torchvision_at_size()
    found = []
    for e in keras_registry.entries():
        p = e.preprocess("reference")
        source, name = KERAS_COUNTERPARTS.get(e.application, (None, None))
        gflops = None
        if source == "torchvision" and name in tv:
            ops, size = tv[name]
            gflops = ops * (e.input_size / size) ** 2
        elif source == "timm":
            gflops = scaled(table.get(name, {}), e.input_size)
        if gflops is not None and e.alpha is not None:
            gflops *= e.alpha**2
        found.append(Model(e.id, gflops, p.geometry, p.crop_size))
    return found


# --- the estimate ----------------------------------------------------------------------------------


def passes(models: list[Model], group_size: int) -> list[list[Model]]:
    """Models of one geometry, in chunks of group_size (what the script's grouping does, memory aside)."""
    by_geometry: dict[tuple, list[Model]] = {}
    for m in models:
        by_geometry.setdefault(m.geometry, []).append(m)
    return [ms[i : i + group_size] for ms in by_geometry.values() for i in range(0, len(ms), group_size)]


def torch_seconds(
    models: list[Model],
    ips: Callable[[Model], float],
    images: int,
    decode_rate: float,
    build_s: float,
    group_size: int,
    cache: bool,
    fill_images: int | None = None,
) -> float:
    """One GPU (or one torchrun rank, with its share of images and of the decode rate).

    cache: each geometry's entry is filled before its first pass, by rank 0 alone, with every
    image (``fill_images``, the whole dataset; the other ranks wait), and the passes then read
    it, which costs nothing next to the models."""
    total, filled = 0.0, set()
    for group in passes(models, group_size):
        gpu = images * sum(1 / ips(m) for m in group)
        if not cache:
            total += max(gpu, images / decode_rate)
        else:
            total += gpu + (0.0 if group[0].geometry in filled else (fill_images or images) / decode_rate)
            filled.add(group[0].geometry)
        total += build_s * len(group)
    return total


def with_gflops(models: list[Model]) -> tuple[list[Model], int]:
    """Models with no GFLOPs known get the registry's median (counted)."""
    known = [m.gflops for m in models if m.gflops]
    median = statistics.median(known) if known else 1.0
    missing = sum(1 for m in models if not m.gflops)
    return [m if m.gflops else Model(m.id, median, m.geometry, m.crop) for m in models], missing


def suggested_group_size(median_ips: float, decode_rate: float) -> int:
    """Smallest group whose GPU time per image reaches the decoding time per image."""
    return max(1, min(16, math.ceil(median_ips / decode_rate)))


def estimate(measured: Measured, registries: dict[str, list[Model]], group_size: int | None = None) -> dict[str, Any]:
    """Hours per registry, precision and GPU count, per dataset; suggestions; the fit."""
    line = fit(measured.torch_points)
    workers = max(1, measured.cores - 1)
    decode_per_gpu = measured.decode_per_worker * workers  # assumed: as many cores per GPU on 8 GPUs
    out: dict[str, Any] = {
        "fit": {
            "intercept": line.intercept,
            "slope": line.slope,
            "points": line.points,
            "resnet50_images_per_s_fp32": line.images_per_s(4.089),
        },
        "bf16_factor": measured.bf16_factor,
        "bf16_flags": measured.bf16_flags,
        "decode_images_per_s_per_gpu": decode_per_gpu,
        "workers_per_gpu": workers,
        "datasets": DATASETS,
        "imagenet_c_regeneration_hours": regeneration_hours(measured.cores),
        "registries": {},
    }
    for name, models in registries.items():
        if not models:
            continue
        full, missing = with_gflops(models)
        entry: dict[str, Any] = {
            "models": len(models),
            "without_gflops": missing,
            "median_gflops": statistics.median(m.gflops for m in full),
            "hours": {},
        }
        crops = {m.geometry: m.crop for m in full}  # one cache entry per geometry
        entry["cache_gb_val"] = round(sum(DATASETS["val"] * c * c * 3 for c in crops.values()) / 1e9, 1)
        if name == "keras":
            entry["hours"] = _keras_hours(measured, line, full, decode_per_gpu)
        elif name == QUANTIZED:
            entry["hours"] = _quantized_hours(measured, full)
        else:
            for precision, factor in (("float32", 1.0), ("bf16", measured.bf16_factor)):
                ips = lambda m, f=factor: f * line.images_per_s(m.gflops)
                median_ips = statistics.median(ips(m) for m in full)
                size = group_size or suggested_group_size(median_ips, decode_per_gpu)
                entry.setdefault("group_size", {})[precision] = size
                for gpus in GPU_COUNTS:
                    for cache in (False, True):
                        key = f"{precision}, {gpus} GPU{'s' if gpus > 1 else ''}{', cache' if cache else ''}"
                        entry["hours"][key] = {}
                        for ds, n in DATASETS.items():
                            folders, images = per_folder(ds, n)
                            seconds = torch_seconds(
                                full,
                                ips,
                                math.ceil(images / gpus),
                                decode_per_gpu,
                                measured.build_s + measured.torch_warm_up_s,
                                size,
                                cache,
                                images,
                            )
                            entry["hours"][key][ds] = round(folders * seconds / 3600, 2)
        out["registries"][name] = entry
    return out


def _keras_hours(measured: Measured, line: Fit, models: list[Model], decode_rate: float) -> dict[str, dict[str, float]]:
    """One model per process (and per GPU with --gpus): per-image fixed cost plus model time."""
    if measured.keras_one_ips is None:
        return {}
    reference = line.images_per_s(measured.keras_gflops)
    overhead = max(0.0, 1 / measured.keras_one_ips - 1 / reference)  # per image, one at a time
    batched_scale = measured.keras_batched_ips / reference
    fixed = (measured.keras_build_s or 0.0) + measured.keras_warm_up_s  # every model is a fresh process
    hours: dict[str, dict[str, float]] = {}
    for mode in ("one at a time", "batched"):
        per_image = [
            (overhead + 1 / line.images_per_s(m.gflops))
            if mode == "one at a time"
            else max(1 / (batched_scale * line.images_per_s(m.gflops)), 1 / decode_rate)
            for m in models
        ]
        for gpus in GPU_COUNTS:
            hours[f"float32, {mode}, {gpus} GPU{'s' if gpus > 1 else ''}"] = {
                ds: round(sum(n * t + per_folder(ds, n)[0] * fixed for t in per_image) / gpus / 3600, 2)
                for ds, n in DATASETS.items()
            }
    return hours


def _quantized_hours(measured: Measured, models: list[Model]) -> dict[str, dict[str, float]]:
    """torchvision's quantized models, which run on the CPU in a GPU run, one pass each: under
    torchrun each rank gets its share of the images and of the cores (``torch_run.quantized_threads``),
    so a box of N GPUs, with N times the measured machine's cores, takes 1/N of one GPU's time."""
    if measured.quantized_ips is None or not measured.quantized_gflops:
        return {}
    line = fit([(measured.quantized_gflops, measured.quantized_ips)], QUANTIZED_SLOPE)
    per_image = [1 / line.images_per_s(m.gflops or measured.quantized_gflops) for m in models]
    return {
        f"int8 on the CPU, {gpus} GPU{'s' if gpus > 1 else ''}": {
            ds: round(sum(n * t + per_folder(ds, n)[0] * measured.build_s for t in per_image) / gpus / 3600, 2)
            for ds, n in DATASETS.items()
        }
        for gpus in GPU_COUNTS
    }


def registries_for(
    timm_benchmark: Path | None, which: tuple[str, ...] = ("torchvision", QUANTIZED, "timm", "keras")
) -> tuple[dict[str, list[Model]], dict[str, str]]:
    """Each registry's models; a registry that cannot be read is left out, with the reason."""
    table = timm_gflops_table(timm_benchmark)
    readers = {
        "torchvision": torchvision_models,
        QUANTIZED: lambda: torchvision_models(quantized=True),
        "timm": lambda: timm_models(table),
        "keras": lambda: keras_models(table),
    }
    found, problems = {}, {}
    for name in which:
        try:
            found[name] = readers[name]()
        except Exception as exc:  # e.g. timm not installed on the GPU box
            problems[name] = f"{type(exc).__name__}: {exc}"
    if not table:
        problems["timm_gflops"] = (
            f"no timm benchmark table at {timm_benchmark}: timm models counted at the median GFLOPs"
        )
    return found, problems


def print_estimate(est: dict[str, Any], file=sys.stdout) -> None:
    f = est["fit"]
    print(
        f"estimate: log(images/s) = {f['intercept']:.2f} {f['slope']:+.3f} log(GFLOPs) over {f['points']} models "
        f"(resnet50 {f['resnet50_images_per_s_fp32']:.3g} images/s float32); bf16 x{est['bf16_factor']:.2f} "
        f"({est['bf16_flags']}); decoding {est['decode_images_per_s_per_gpu']:.0f} images/s per GPU "
        f"with -j {est['workers_per_gpu']}",
        file=file,
    )
    total = sum(DATASETS.values())
    regen = est.get("imagenet_c_regeneration_hours") or regeneration_hours(1)
    print(
        f"  regenerating ImageNet-C (15 x 5 folders) on the CPU first, one worker a core: 5,000 a folder "
        f"{regen['imagenet-c-5k']:.2f} h, 50,000 a folder {regen['imagenet-c']:.2f} h; evaluating the full "
        f"set takes {IMAGENET_C_FOLDERS} times the val hours",
        file=file,
    )
    for name, entry in est["registries"].items():
        groups = ", ".join(f"{size} in {precision}" for precision, size in entry.get("group_size", {}).items())
        how = (
            "int8 on the CPU, one pass a model"
            if name == QUANTIZED
            else f"suggested --group-size {groups or '- (one model per process)'}, -j {est['workers_per_gpu']} per GPU"
        )
        print(
            f"  {name}: {entry['models']} models ({entry['without_gflops']} without GFLOPs), median "
            f"{entry['median_gflops']:.2f} GFLOPs; {how}; pixel cache {entry['cache_gb_val']} GB for the val set",
            file=file,
        )
        if not entry["hours"]:
            print("    (not measured in this check)", file=file)
        for key, hours in entry["hours"].items():
            print(
                f"    {key:34} val {hours['val']:7.2f} h   all {total:,} images {sum(hours.values()):7.2f} h", file=file
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("summary", type=Path, help="the JSON summary bench/gpu_check.py wrote")
    parser.add_argument(
        "--timm-benchmark",
        type=Path,
        default=DEFAULT_TIMM_BENCHMARK,
        help="timm's benchmark-infer-*.csv (GFLOPs of timm models)",
    )
    parser.add_argument("--group-size", type=int, help="estimate for this group size (default: suggested)")
    args = parser.parse_args()
    summary = json.loads(args.summary.read_text())
    try:
        measured = measured_from_summary(summary)
    except EstimateError as exc:
        sys.exit(f"error: {args.summary}: {exc}")
    registries, problems = registries_for(args.timm_benchmark)
    for name, problem in problems.items():
        print(f"note: {name}: {problem}", file=sys.stderr)
    print_estimate(estimate(measured, registries, args.group_size))


if __name__ == "__main__":
    main()
