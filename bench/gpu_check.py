#!/usr/bin/env python
"""The prepared GPU check: one command that proves the overnight run's GPU paths.

A GPU machine is lent only now and then, for minutes, so everything to look at is in
one run (at most 8 minutes on one H200 with 16 cores) that writes one JSON summary and
prints a short table. It runs the prediction scripts as a user would (subprocesses with
their flags) and reads what they write (the manifests hold throughput, device and
numerics), so it exercises the real paths:

  data               real-size JPEGs (bench/realistic_jpegs.py) in the val layout
  decode             decoding + resize/crop on the CPU: images/s with 1 and with N processes
  torch_numerics     resnet50 (random weights; the dry run: mobilenet_v3_small, float32 and
                     bf16 + channels-last): float32 with TF32 off, --tf32, --amp bf16,
                     --amp fp16, --channels-last, bf16 + channels-last: images/s end to end
                     and model only, top-1 agreement with float32
  torch_grouping     8 cheap models sharing one preprocessing, --group-size 8 against 1
  torch_cache        the same group with --cache-dir, twice (fill, then read)
  torchrun           torchrun, 1 process (and 2 where there are 2 GPUs, or on the CPU with
                     gloo), against one process
  keras              Keras MobileNetV2 one image at a time (-g) and batched (--gpus) with
                     --check-batching, and the XLA setting the model took
  real_torch         the real MobileNetV2 weights of ../shared on its 500 val images: the
                     device in float32 and bf16 against the CPU
  real_keras         the real Keras MobileNet weights of ../shared: the GPU against the CPU
  estimate           the overnight run of every model (bench/overnight_estimate.py)

Each step is isolated: one that fails is recorded and the rest go on; a global deadline
skips the steps it leaves no time for, and says so. --dry-run runs the same steps on the
CPU with tiny sizes, each code path once (sizes_for says what it leaves out; tests/test_gpu_check.py
runs it in CI): 11 script runs, 165 s on a loaded 2-core machine (BENCHMARKS.md).

Usage:
  python bench/gpu_check.py --json gpu_check.json                 # on the GPU box
  python bench/gpu_check.py --dry-run --json /tmp/dry.json        # anywhere, CPU
Options: --shared DIR (default ../shared), --budget SECONDS, --keep DIR, --steps a,b,...
Exit status: 0 when every step that could run passed (exit_status: a step skipped for what the
machine lacks, and a note, are no failure), 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import overnight_estimate  # noqa: E402
import realistic_jpegs  # noqa: E402

TORCH_SCRIPT = ROOT / "imagenet_pytorch_get_predictions.py"
KERAS_SCRIPT = ROOT / "imagenet_keras_get_predictions.py"
# Eight cheap torchvision models that share resize 256 / crop 224 / bilinear (checked at run time).
GROUP = (
    "mobilenet_v3_small",
    "shufflenet_v2_x0_5",
    "squeezenet1_1",
    "mnasnet0_5",
    "mobilenet_v2",
    "shufflenet_v2_x1_0",
    "mnasnet1_0",
    "resnet18",
)
# Known accuracies on ../shared/data/imagenet-val-500 (from ../shared/weights/SOURCE.md), all 500 images.
SOURCE_ACC1 = {"torch mobilenet_v2": 67.0, "keras mobilenetV2": 67.6, "keras mobilenet_0.25_128": 40.4}
KERAS_REAL = {
    "mobilenetV2": "keras_mobilenetv2_alpha1.0_224.weights.h5",
    "mobilenet_0.25_128": "keras_mobilenet_alpha0.25_128.weights.h5",
}
TORCH_REAL = "torchvision_mobilenet_v2_dequantized.pth"
TORCH_QUANTIZED = "torchvision_quantized_mobilenet_v2_qnnpack.pth"  # int8: the overnight estimate's CPU rate
SCRIPT_ENV = {"PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
NUMERICS = {
    "float32": [],
    "tf32": ["--tf32"],
    "bf16": ["--amp", "bf16"],
    "fp16": ["--amp", "fp16"],
    "channels_last": ["--channels-last"],
    "bf16_channels_last": ["--amp", "bf16", "--channels-last"],
}


@dataclass(frozen=True)
class Sizes:
    """How big each step is: GPU mode fits 8 minutes on an H200; dry-run about a minute on a CPU."""

    device: str
    images: int  # generated val images
    unique_images: int  # distinct JPEGs among them (the rest are links: same decoding cost)
    batch: int
    workers: int
    keras_images: int  # Keras one image at a time
    keras_check: int  # --check-batching K
    real_per_class: int | None  # real-weight steps: --per-class (None: all 500)
    budget_s: float
    numerics: tuple[str, ...] = tuple(NUMERICS)  # the numerics model's configurations
    numerics_model: str = "resnet50"
    group: tuple[str, ...] = GROUP
    keras_real: tuple[str, ...] = tuple(KERAS_REAL)
    device_runs: bool = True  # the real-weight steps' runs on the device, against the CPU run
    threads: int | None = None  # CPU threads per process (OMP, TF); None: their defaults


def sizes_for(dry_run: bool, cpus: int) -> Sizes:
    """The dry run keeps every code path of the check and of the scripts it runs, each once, and
    drops what only a GPU makes worth measuring: its cost is the scripts' start-ups (importing
    torch or TensorFlow), so it runs as few of them as cover the paths.

    On the CPU, --tf32 changes nothing and --amp fp16 is the bf16 path with another dtype, so
    one run takes amp and channels-last together; the numerics model is the group's cheapest
    (its random weights are saved once for both steps); a group of two shows grouping (one
    pass against two); the real-weight steps' device runs are dropped, since on the CPU they
    repeat the CPU run (Keras) or the numerics step's bf16 path (PyTorch); 8 images in
    batches of 4 (two batches; two torchrun ranks of 4); one thread per process, since on a
    loaded 2-core machine OpenMP's threads wait for each other (the PyTorch script's prediction
    loop, mobilenet_v3_small on 16 images: 9.7 s with the default threads, 1.4 s with one, at
    load average 7)."""
    if dry_run:
        return Sizes(
            "cpu",
            images=8,
            unique_images=8,
            batch=4,
            workers=1,
            keras_images=4,
            keras_check=2,
            real_per_class=1,
            budget_s=900,
            numerics=("float32", "bf16_channels_last"),
            numerics_model=GROUP[0],
            group=GROUP[:2],
            keras_real=("mobilenet_0.25_128",),
            device_runs=False,
            threads=1,
        )
    return Sizes(
        "cuda",
        images=4000,
        unique_images=400,
        batch=256,
        workers=max(1, min(14, cpus - 2)),
        keras_images=1000,
        keras_check=256,
        real_per_class=None,
        budget_s=480,
    )


class StepFailed(Exception):
    """A step (or one run inside it) failed; the message says how."""


@dataclass
class Context:
    """What the steps share: sizes, folders, the deadlines, and the results so far."""

    sizes: Sizes
    work: Path
    shared: Path
    deadline: float  # global: no step starts after it
    steps: dict[str, Any] = field(default_factory=dict)
    step_deadline: float = 0.0
    files: dict[str, Any] = field(default_factory=dict)  # weights files, the val folder

    @property
    def val(self) -> Path:
        if "val" not in self.files:
            raise StepFailed("no val set (the data step did not run)")
        return self.files["val"]

    def timeout(self) -> float:
        left = min(self.step_deadline, self.deadline) - time.monotonic()
        if left <= 1:
            raise StepFailed("out of time (step budget or global deadline)")
        return left


# --- running the scripts ---------------------------------------------------------------------------


def run_cmd(ctx: Context, cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Run a command in its own process group; kill the whole group on timeout. Returns wall seconds."""
    start = time.monotonic()
    full_env = {**os.environ, **SCRIPT_ENV, **(env or {})}
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True, cwd=ROOT
        )
        try:
            proc.wait(timeout=ctx.timeout())
        except subprocess.TimeoutExpired:
            # SIGTERM first: torchrun then stops its workers, which run in sessions of their own
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            raise StepFailed(f"timed out after {time.monotonic() - start:.0f} s: {' '.join(cmd[1:4])} ...") from None
        finally:
            with contextlib.suppress(ProcessLookupError):  # a DataLoader worker or torchrun child left behind
                os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode != 0:
            log.seek(0)
            lines = [line.strip() for line in log.read().splitlines() if line.strip()]
            errors = [line for line in lines if line.startswith("error")] or lines[-3:]
            raise StepFailed(f"exit status {proc.returncode}: {' | '.join(errors)[-600:]}")
    return time.monotonic() - start


def thread_env(threads: int | None) -> dict[str, str]:
    """OpenMP's and TensorFlow's thread counts (read when the libraries load, so set before any import)."""
    names = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
    return {} if threads is None else {name: str(threads) for name in names}


def torch_run(
    ctx: Context,
    out: Path,
    flags: list[str],
    val: Path | None = None,
    device: str | None = None,
    launcher: list[str] | None = None,
) -> float:
    cmd = [
        *(launcher or [sys.executable]),
        str(TORCH_SCRIPT),
        str(val or ctx.val),
        "-o",
        str(out),
        "-b",
        str(ctx.sizes.batch),
        "-j",
        str(ctx.sizes.workers),
        "--device",
        device or ctx.sizes.device,
        "--overwrite",
        *flags,
    ]
    return run_cmd(ctx, cmd)


def outputs(out: Path, model: str, platform_: str = "pytorch") -> dict[str, Any]:
    """What a script wrote for one model: manifest, preds, probs (all probs when saved), labels."""
    from imagenet_bench.outputs import predfiles

    files = predfiles.model_files(out, model, platform_)
    found = {
        "manifest": json.loads(files.manifest_path.read_text()),
        "preds": np.load(files.preds_path),
        "probs": np.load(files.probs_path),
        "labels": np.load(out / "dataset_labels.npy"),
    }
    if files.all_probs_path.exists():
        found["all_probs"] = np.load(files.all_probs_path)
    return found


def same_files(a: Path, b: Path, models: tuple[str, ...]) -> bool:
    from imagenet_bench.outputs import predfiles

    return all(
        getattr(predfiles.model_files(a, m, "pytorch"), kind).read_bytes()
        == getattr(predfiles.model_files(b, m, "pytorch"), kind).read_bytes()
        for m in models
        for kind in ("preds_path", "probs_path")
    )


def compare(test: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """Top-1 agreement and the largest probability difference (all 1000 when saved, else top-1)."""
    agree = int((test["preds"][:, 0] == reference["preds"][:, 0]).sum())
    if "all_probs" in test and "all_probs" in reference:
        diff = float(np.abs(test["all_probs"] - reference["all_probs"]).max())
    else:
        diff = float(np.abs(test["probs"][:, 0] - reference["probs"][:, 0]).max())
    return {"top1_agree": agree, "images": len(test["preds"]), "max_abs_prob_diff": diff}


def accuracy(found: dict[str, Any]) -> float:
    return round(100 * float((found["preds"][:, 0] == found["labels"]).mean()), 2)


def throughput(manifest: dict[str, Any]) -> dict[str, Any]:
    t = manifest["throughput"]
    return {
        "images_per_s": t["images_per_s"],
        "model_images_per_s": t.get("model_images_per_s"),
        "steady_images_per_s": t.get("steady_images_per_s"),  # after the first batch (warm-up)
        "first_batch_s": t.get("first_batch_s"),
        "first_batch_images": t.get("first_batch_images"),
        "wall_time_s": t["wall_time_s"],
    }


def save_random_weights(folder: Path, builders: tuple[str, ...], images: list[Path]) -> dict[str, Path]:
    """Seeded random weights for torchvision builders (so no download), as --weights-file, with
    the head calibrated on ``images`` so that the top-1 varies (``calibrate_head``)."""
    import torch
    from torchvision import models

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for builder in builders:
        path = folder / f"{builder}.pth"
        if not path.exists():
            torch.manual_seed(0)
            model = models.get_model(builder)
            calibrate_head(model, images[:64])
            torch.save(model.state_dict(), path)
        paths[builder] = path
    return paths


def calibrate_head(model: Any, images: list[Path]) -> None:
    """Random weights predict nearly one class for every image, and then any two runs agree
    whatever they compute: the last linear layer is set so that its logits are the features'
    deviation from their mean over ``images`` (bias = -W mean), scaled to unit spread, so the
    top-1 varies from image to image."""
    import torch
    from PIL import Image
    from torchvision import transforms

    prep = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    features: list[Any] = []
    hook = last.register_forward_hook(lambda module, inputs, output: features.append(inputs[0]))
    model.eval()
    with torch.no_grad():
        model(torch.stack([prep(Image.open(p).convert("RGB")) for p in images]))
        hook.remove()
        mean = features[0].mean(0)
        spread = ((features[0] - mean) @ last.weight.T).std().clamp_min(1e-12)
        last.weight /= spread
        last.bias.copy_(-(last.weight @ mean))


def val_images(ctx: Context) -> list[Path]:
    """The generated val images (the data step's), for the random weights' calibration."""
    if "val" not in ctx.files:
        raise StepFailed("no val images: the data step comes first")
    return sorted(ctx.files["val"].rglob("*.JPEG"))


def weights_flags(paths: dict[str, Path]) -> list[str]:
    return [flag for m, p in paths.items() for flag in ("--weights-file", f"{m}={p}")]


def gflops_of(model_ids: tuple[str, ...]) -> dict[str, float]:
    from imagenet_bench.models import torch_registry

    entries = torch_registry.by_id()
    return {m: entries[m].gflops() for m in model_ids}


# --- the steps -------------------------------------------------------------------------------------


def step_data(ctx: Context) -> dict[str, Any]:
    """ImageFolder val set: unique JPEGs generated once, linked to reach the image count."""
    s = ctx.sizes
    unique = realistic_jpegs.make_val_set(ctx.work / "unique", s.unique_images)
    sources = sorted(unique.glob("n*/*.JPEG"))
    val = ctx.work / "val"
    from imagenet_bench.base.classes import wnids

    for i in range(s.images):
        target = val / wnids()[i % 10] / f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            try:
                os.link(sources[i % len(sources)], target)
            except OSError:
                shutil.copyfile(sources[i % len(sources)], target)
    ctx.files["val"] = val
    return {
        "images": s.images,
        "unique_images": len(sources),
        "mean_kb": round(realistic_jpegs.mean_file_kb(unique), 1),
    }


def _decode(args: tuple[str, Any]) -> int:
    from imagenet_bench.datasets import images

    return images.load_pixels(args[0], args[1]).shape[0]


def step_decode(ctx: Context) -> dict[str, Any]:
    """Decoding + resize 256 / crop 224 on the CPU, in 1 and in N processes (the DataLoader's work)."""
    from multiprocessing import get_context

    from imagenet_bench.datasets.preprocessing import common

    paths = sorted(ctx.val.glob("n*/*.JPEG"))[: max(ctx.sizes.images // 2, 8)]
    geometry = common(224)
    rates = {}
    for workers in sorted({1, ctx.sizes.workers}):
        jobs = [(str(p), geometry) for p in (paths if workers > 1 else paths[: max(8, len(paths) // 8)])]
        with get_context("fork").Pool(workers) as pool:
            pool.map(_decode, jobs[:workers])  # start-up excluded
            start = time.perf_counter()
            pool.map(_decode, jobs, chunksize=4)
            rates[workers] = len(jobs) / (time.perf_counter() - start)
    return {
        "images_per_s": {str(w): round(r, 1) for w, r in rates.items()},
        "per_worker_images_per_s": round(rates[max(rates)] / max(rates), 1),
        "workers": max(rates),
    }


def all_failed(runs: dict[str, Any]) -> None:
    """A step whose every run failed has failed (the runs' errors say why)."""
    if runs and all(r["status"] != "ok" for r in runs.values()):
        raise StepFailed("; ".join(f"{name}: {r['error']}" for name, r in runs.items()))


def step_torch_numerics(ctx: Context) -> dict[str, Any]:
    model = ctx.sizes.numerics_model
    weights = save_random_weights(ctx.work / "weights", (model,), val_images(ctx))
    ctx.files["numerics_weights"] = weights
    gflops = gflops_of((model,))[model]
    runs: dict[str, Any] = {}
    found: dict[str, Any] = {}
    for name in ctx.sizes.numerics:
        flags = NUMERICS[name]
        out = ctx.work / f"numerics-{name}"
        try:
            wall = torch_run(ctx, out, ["-m", model, *weights_flags(weights), *flags])
            found[name] = outputs(out, model)
            m = found[name]["manifest"]
            runs[name] = {
                "status": "ok",
                "flags": " ".join(flags) or "(none)",
                "process_s": round(wall, 1),
                **throughput(m),
                "numerics": m["numerics"],
                "device": m["device"],
                "gflops": gflops,
            }
        except Exception as exc:  # this configuration fails; the others go on
            runs[name] = {"status": "failed", "flags": " ".join(flags), "error": str(exc)}
    all_failed(runs)
    findings = []
    if "float32" in found:
        ctx.files["numerics_float32"] = ctx.work / "numerics-float32"
        runs["float32"]["distinct_top1"] = len(np.unique(found["float32"]["preds"][:, 0]))
        for name, f in found.items():
            if name != "float32":
                runs[name]["vs_float32"] = compare(f, found["float32"])
    findings += [f"{name}: {run['error']}" for name, run in runs.items() if run["status"] != "ok"]
    findings += numerics_findings(runs, ctx.sizes.device)
    return {
        "model": model,
        "runs": runs,
        "findings": findings,
        "note": "random weights: agreement is meaningful only as far as distinct_top1 shows varied predictions",
    }


def numerics_findings(runs: dict[str, Any], device: str) -> list[str]:
    """Each manifest must record what its flags asked for, on the device asked for."""
    found = []
    for name, run in runs.items():
        if run["status"] != "ok":
            continue
        flags, numerics = run["flags"], run["numerics"]
        if not str(run["device"]["name"]).startswith(device):
            found.append(f"{name}: ran on {run['device']['name']}, not {device}")
        if numerics["tf32_matmul"] != ("--tf32" in flags):
            found.append(f"{name}: TF32 recorded {numerics['tf32_matmul']} for flags {flags}")
        if numerics["channels_last"] != ("--channels-last" in flags):
            found.append(f"{name}: channels-last recorded {numerics['channels_last']} for flags {flags}")
        words = flags.split()
        dtype = f"autocast {words[words.index('--amp') + 1]}" if "--amp" in words else "float32"
        if numerics["dtype"] != dtype:
            found.append(f"{name}: dtype recorded {numerics['dtype']} for flags {flags}")
    return found


def _group_manifests(out: Path, group: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    return {m: outputs(out, m)["manifest"] for m in group}


def _loops(manifests: dict[str, dict[str, Any]], images: int) -> tuple[float, float]:
    """Wall seconds of the prediction loops (one per pass) and images decoded per dataset image."""
    passes = {tuple(m["pass"]["models"]): m for m in manifests.values()}
    loops = sum(m["throughput"]["wall_time_s"] for m in passes.values())
    decoded = sum(m["pass"]["images_decoded"] for m in passes.values())
    return loops, decoded / images


def step_torch_grouping(ctx: Context) -> dict[str, Any]:
    from imagenet_bench.models import torch_registry

    group = ctx.sizes.group
    geometries = {torch_registry.by_id()[m].preprocess("reference").geometry for m in group}
    if len(geometries) != 1:
        raise StepFailed(f"the group's models do not share one preprocessing: {geometries}")
    weights = save_random_weights(ctx.work / "weights", group, val_images(ctx))
    ctx.files["group"] = weights
    result: dict[str, Any] = {"models": list(group)}
    for label, size in (("grouped", len(group)), ("alone", 1)):
        out = ctx.work / f"group-{label}"
        wall = torch_run(ctx, out, ["-m", *group, *weights_flags(weights), "--group-size", str(size)])
        manifests = _group_manifests(out, group)
        loops, decoded = _loops(manifests, ctx.sizes.images)
        result[label] = {
            "process_s": round(wall, 2),
            "loops_s": round(loops, 2),
            "decoded_per_image": decoded,
            "fixed_s": round(max(0.0, wall - loops), 2),  # start-up and the builds
            "images_per_s_per_model": {m: man["throughput"]["images_per_s"] for m, man in manifests.items()},
        }
        if label == "alone":
            gflops = gflops_of(group)
            result["per_model"] = {
                m: {
                    "gflops": gflops[m],
                    "model_images_per_s": man["throughput"]["model_images_per_s"],
                    "steady_images_per_s": man["throughput"].get("steady_images_per_s"),
                }
                for m, man in manifests.items()
            }
    ctx.files["group_grouped"] = ctx.work / "group-grouped"
    result["speedup_process"] = round(result["alone"]["process_s"] / result["grouped"]["process_s"], 2)
    result["speedup_loops"] = round(result["alone"]["loops_s"] / result["grouped"]["loops_s"], 2)
    result["identical_files"] = same_files(ctx.work / "group-grouped", ctx.work / "group-alone", group)
    # identical files mean something only where each model tells the images apart
    result["distinct_top1"] = {m: len(np.unique(outputs(ctx.work / "group-grouped", m)["preds"][:, 0])) for m in group}
    result["findings"] = [] if result["identical_files"] else ["grouped and one-at-a-time prediction files differ"]
    return result


def step_torch_cache(ctx: Context) -> dict[str, Any]:
    group = ctx.sizes.group
    weights = ctx.files.get("group") or save_random_weights(ctx.work / "weights", group, val_images(ctx))
    cache = ctx.work / "pixel-cache"
    result: dict[str, Any] = {"models": list(group)}
    for label in ("fill", "read"):
        out = ctx.work / f"cache-{label}"
        wall = torch_run(
            ctx,
            out,
            ["-m", *group, *weights_flags(weights), "--group-size", str(len(group)), "--cache-dir", str(cache)],
        )
        manifests = _group_manifests(out, group)
        loops, _ = _loops(manifests, ctx.sizes.images)
        # the first run decodes into the cache before its pass; a pass reading the cache decodes nothing
        result[label] = {
            "process_s": round(wall, 2),
            "loops_s": round(loops, 2),
            "images_decoded_in_pass": sum(
                {tuple(m["pass"]["models"]): m["pass"]["images_decoded"] for m in manifests.values()}.values()
            ),
            "cache_entries": len(list(cache.glob("*/key.json"))),
        }
    result["cache_bytes"] = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    grouped = (ctx.steps.get("torch_grouping") or {}).get("grouped")
    if grouped:
        result["speedup_read_vs_decoding_loops"] = round(grouped["loops_s"] / result["read"]["loops_s"], 2)
        result["speedup_read_vs_decoding_process"] = round(grouped["process_s"] / result["read"]["process_s"], 2)
    findings = []
    if "group_grouped" in ctx.files:
        result["identical_to_decoding"] = same_files(ctx.work / "cache-read", ctx.files["group_grouped"], group)
        if not result["identical_to_decoding"]:
            findings.append("outputs from the pixel cache differ from outputs from decoding")
    if result["read"]["images_decoded_in_pass"] != 0 or result["fill"]["cache_entries"] != 1:
        findings.append(
            f"the second pass decoded {result['read']['images_decoded_in_pass']} images, with "
            f"{result['fill']['cache_entries']} cache entries (expected 0, with 1)"
        )
    result["findings"] = findings
    return result


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:
        return 0


def step_torchrun(ctx: Context) -> dict[str, Any]:
    """torchrun against one process; nccl needs a GPU per process, so 2 processes only with 2 GPUs."""
    model = ctx.sizes.numerics_model
    weights = ctx.files.get("numerics_weights") or save_random_weights(ctx.work / "weights", (model,), val_images(ctx))
    reference_dir = ctx.files.get("numerics_float32")
    if reference_dir is None:
        reference_dir = ctx.work / "torchrun-reference"
        torch_run(ctx, reference_dir, ["-m", model, *weights_flags(weights)])
    reference = outputs(reference_dir, model)
    # the CPU (dry run): 2 gloo processes, the case that splits the images; a GPU: 1, and 2 with 2 GPUs
    counts = [2] if ctx.sizes.device == "cpu" else [1] + ([2] if gpu_count() >= 2 else [])
    runs, findings = {}, []
    for n in counts:
        out = ctx.work / f"torchrun-{n}"
        # --log-dir: torchrun's logs go into the work folder, not a temporary folder it leaves behind
        launcher = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={n}",
            "--log-dir",
            str(ctx.work / f"torchrun-logs-{n}"),
        ]
        try:
            wall = torch_run(ctx, out, ["-m", model, *weights_flags(weights)], launcher=launcher)
            found = outputs(out, model)
            same = same_files(out, reference_dir, (model,))
            runs[str(n)] = {
                "status": "ok",
                "process_s": round(wall, 1),
                **throughput(found["manifest"]),
                "distributed": found["manifest"].get("distributed"),
                "identical_to_one_process": same,
                **compare(found, reference),
            }
            if not same and runs[str(n)]["top1_agree"] != runs[str(n)]["images"]:
                findings.append(f"torchrun with {n} process(es): top-1 differs from one process")
        except Exception as exc:
            runs[str(n)] = {"status": "failed", "error": str(exc)}
            findings.append(f"torchrun with {n} process(es): {exc}")
    note = (
        "WORLD_SIZE 1 starts no process group (torch_distributed.init), so 1 process never reaches nccl; "
        "nccl runs only with 2 GPUs or more"
        if ctx.sizes.device != "cpu"
        else "gloo on the CPU"
    )
    notes = []
    if ctx.sizes.device != "cpu" and 2 not in counts:  # the machine's lack, not the code's: a note
        notes.append("nccl not exercised: one GPU (torchrun needs one GPU per process)")
    return {"runs": runs, "note": note, "notes": notes, "findings": findings}


def keras_weights(ctx: Context) -> tuple[Path, str]:
    """The real MobileNetV2 weights of ../shared, or random ones made by Keras in a subprocess."""
    real = ctx.shared / "weights" / KERAS_REAL["mobilenetV2"]
    if real.exists():
        return real, "real (../shared/weights)"
    path = ctx.work / "keras_mobilenetv2_random.weights.h5"
    code = (
        "import keras, sys; keras.utils.set_random_seed(0); "
        "keras.applications.MobileNetV2(weights=None).save_weights(sys.argv[1])"
    )
    run_cmd(ctx, [sys.executable, "-c", code, str(path)])
    return path, "random (seeded)"


def keras_run(ctx: Context, out: Path, flags: list[str], val: Path | None = None, cpu: bool = False) -> float:
    cmd = [
        sys.executable,
        str(KERAS_SCRIPT),
        str(val or ctx.val),
        "-o",
        str(out),
        "-j",
        str(ctx.sizes.workers),
        "--overwrite",
        *flags,
    ]
    return run_cmd(ctx, cmd, env={"CUDA_VISIBLE_DEVICES": "-1"} if cpu else None)


def needs_tensorflow() -> None:
    """A Keras step on a machine without TensorFlow (a lent GPU box with torch alone) is skipped,
    with the reason, not failed."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        raise StepFailed(
            "skipped: TensorFlow is not installed in this environment (the Keras GPU environment is "
            "requirements-keras-gpu.txt: README, 'GPU')"
        )


def step_keras(ctx: Context) -> dict[str, Any]:
    needs_tensorflow()
    weights, kind = keras_weights(ctx)
    on_gpu = ctx.sizes.device != "cpu"
    common = ["-m", "mobilenetV2", "--weights-file", str(weights), "--protocol", "common"]
    configs = {
        "one_at_a_time": [*common, "--limit", str(ctx.sizes.keras_images), *(["-g", "0"] if on_gpu else [])],
        "batched": [
            *common,
            "-b",
            "64",
            "--check-batching",
            str(ctx.sizes.keras_check),
            *(["--gpus", "0"] if on_gpu else []),
        ],
    }
    runs, findings = {}, []
    for name, flags in configs.items():
        out = ctx.work / f"keras-{name}"
        try:
            wall = keras_run(ctx, out, flags)
            m = outputs(out, "mobilenetV2", "keras")["manifest"]
            runs[name] = {
                "status": "ok",
                "flags": " ".join(flags[len(common) :]),
                "process_s": round(wall, 1),
                **throughput(m),
                "build_s": m["throughput"].get("build_s"),
                "device": m["device"],  # which GPU (cuda_visible_devices) this TensorFlow saw
                "tensorflow": m.get("framework", {}).get("tensorflow"),
                "numerics": m["numerics"],
                "xla_taken": m["numerics"].get("jit_compile"),
            }
            if "check_batching" in m:
                cb = m["check_batching"]
                runs[name]["check_batching"] = {
                    k: cb[k] for k in ("images", "batch_size", "top1_agree", "max_abs_prob_diff")
                }
            if on_gpu and "GPU" not in str(m["device"].get("name")):
                findings.append(f"keras {name}: ran on {m['device'].get('name')}, not the GPU")
            if m["numerics"].get("jit_compile") or m["numerics"].get("tf32"):
                findings.append(
                    f"keras {name}: XLA {m['numerics'].get('jit_compile')}, TF32 "
                    f"{m['numerics'].get('tf32')}, though neither was asked for"
                )
        except Exception as exc:
            runs[name] = {"status": "failed", "error": str(exc)}
            findings.append(f"keras {name}: {exc}")
    all_failed(runs)
    return {"weights": kind, "gflops": gflops_of(("mobilenet_v2",))["mobilenet_v2"], "runs": runs, "findings": findings}


def _real_val(ctx: Context) -> tuple[Path, list[str]]:
    val = ctx.shared / "data" / "imagenet-val-500"
    if not val.is_dir():
        raise StepFailed(f"skipped: {val} is missing (pass --shared DIR)")
    subset = ["--per-class", str(ctx.sizes.real_per_class)] if ctx.sizes.real_per_class else []
    return val, subset


def step_real_torch(ctx: Context) -> dict[str, Any]:
    val, subset = _real_val(ctx)
    weights = ctx.shared / "weights" / TORCH_REAL
    if not weights.exists():
        raise StepFailed(f"skipped: {weights} is missing")
    flags = ["--weights-file", str(weights), "--save-all-probs", *subset]
    found, runs = {}, {}
    configs = {"cpu float32": ("cpu", "mobilenet_v2", flags)}
    if ctx.sizes.device_runs:
        configs |= {
            f"{ctx.sizes.device} float32": (ctx.sizes.device, "mobilenet_v2", flags),
            f"{ctx.sizes.device} bf16": (ctx.sizes.device, "mobilenet_v2", [*flags, "--amp", "bf16"]),
        }
    quantized = ctx.shared / "weights" / TORCH_QUANTIZED
    if quantized.exists():  # int8 runs on the CPU in a GPU run too: its rate, for the overnight estimate
        configs["cpu quantized"] = ("cpu", "quantized_mobilenet_v2", ["--weights-file", str(quantized), *subset])
    for name, (device, model, model_flags) in configs.items():
        out = ctx.work / f"real-torch-{name.replace(' ', '-')}"
        try:
            torch_run(ctx, out, ["-m", model, *model_flags], val=val, device=device)
            found[name] = outputs(out, model)
            runs[name] = {
                "status": "ok",
                "model": model,
                "gflops": gflops_of((model,))[model],
                "acc1": accuracy(found[name]),
                **throughput(found[name]["manifest"]),
            }
        except Exception as exc:
            runs[name] = {"status": "failed", "error": str(exc)}
    all_failed(runs)
    findings = [f"{name}: {run['error']}" for name, run in runs.items() if run["status"] != "ok"]
    if "cpu float32" in found:
        for name in found:
            if name not in ("cpu float32", "cpu quantized"):
                runs[name]["vs_cpu"] = compare(found[name], found["cpu float32"])
        acc = runs["cpu float32"]["acc1"]
        if not subset and abs(acc - SOURCE_ACC1["torch mobilenet_v2"]) > 0.5:
            findings.append(f"CPU Acc@1 {acc} differs from SOURCE.md's {SOURCE_ACC1['torch mobilenet_v2']}")
        fp32 = runs.get(f"{ctx.sizes.device} float32", {}).get("vs_cpu")
        if fp32 and fp32["top1_agree"] < 0.99 * fp32["images"]:
            findings.append(f"device float32 agrees with the CPU on only {fp32['top1_agree']}/{fp32['images']}")
    return {"expected_acc1_all_500": SOURCE_ACC1["torch mobilenet_v2"], "runs": runs, "findings": findings}


def step_real_keras(ctx: Context) -> dict[str, Any]:
    needs_tensorflow()
    val, subset = _real_val(ctx)
    files = {m: ctx.shared / "weights" / KERAS_REAL[m] for m in ctx.sizes.keras_real}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise StepFailed(f"skipped: {', '.join(missing)} missing")
    flags = [
        "-m",
        *files,
        *[f for m, p in files.items() for f in ("--weights-file", f"{m}={p}")],
        "--protocol",
        "common",
        "-b",
        "32",
        "--save-all-probs",
        *subset,
    ]
    found, runs = {}, {}
    configs = [("cpu", [], True)] + ([("gpu", ["-g", "0"], False)] if ctx.sizes.device_runs else [])
    for name, extra, cpu in configs:
        out = ctx.work / f"real-keras-{name.replace(' ', '-')}"
        try:
            keras_run(ctx, out, [*flags, *extra], val=val, cpu=cpu)
            found[name] = {m: outputs(out, m, "keras") for m in files}
            runs[name] = {
                "status": "ok",
                **{
                    m: {
                        "acc1": accuracy(f),
                        **throughput(f["manifest"]),
                        "device": f["manifest"]["device"].get("model"),
                    }
                    for m, f in found[name].items()
                },
            }
        except Exception as exc:
            runs[name] = {"status": "failed", "error": str(exc)}
    all_failed(runs)
    findings = [f"{name}: {run['error']}" for name, run in runs.items() if run["status"] != "ok"]
    if len(found) == 2:
        other = next(n for n in found if n != "cpu")
        for m in files:
            runs[other][m]["vs_cpu"] = compare(found[other][m], found["cpu"][m])
    if "cpu" in found and not subset:
        for m in files:
            expected = SOURCE_ACC1[f"keras {m}"]
            if abs(runs["cpu"][m]["acc1"] - expected) > 0.5:
                findings.append(f"keras {m}: CPU Acc@1 {runs['cpu'][m]['acc1']} differs from SOURCE.md's {expected}")
    return {"expected_acc1_all_500": {m: SOURCE_ACC1[f"keras {m}"] for m in files}, "runs": runs, "findings": findings}


def step_estimate(ctx: Context, timm_benchmark: Path | None = None) -> dict[str, Any]:
    summary = {"steps": ctx.steps, "machine": machine()}
    measured = overnight_estimate.measured_from_summary(summary)
    registries, problems = overnight_estimate.registries_for(timm_benchmark)
    result = overnight_estimate.estimate(measured, registries)
    result["problems"] = problems
    result["measured"] = asdict(measured)
    return result


# --- the whole check -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Context], dict[str, Any]]
    cap_s: float  # GPU mode: the most this step may take
    min_s: float  # not started with less than this left


def steps_for(timm_benchmark: Path | None) -> list[Step]:
    return [
        Step("data", step_data, 60, 5),
        Step("decode", step_decode, 30, 5),
        Step("torch_numerics", step_torch_numerics, 110, 20),
        Step("torch_grouping", step_torch_grouping, 80, 20),
        Step("torch_cache", step_torch_cache, 60, 15),
        Step("torchrun", step_torchrun, 50, 15),
        Step("real_torch", step_real_torch, 70, 15),
        Step("keras", step_keras, 80, 20),
        Step("real_keras", step_real_keras, 100, 20),
        Step("estimate", lambda ctx: step_estimate(ctx, timm_benchmark), 40, 1),
    ]


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        import torch
        import torchvision

        info.update(
            torch=torch.__version__,
            torchvision=torchvision.__version__,
            cuda=torch.version.cuda,
            gpus=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        )
    except Exception as exc:
        info["torch"] = f"not importable: {exc}"
    for name in ("timm", "tensorflow", "keras"):
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = None
    return info


def run_step(ctx: Context, step: Step, estimate_reserve: float) -> dict[str, Any]:
    now = time.monotonic()
    reserve = 0.0 if step.name == "estimate" else estimate_reserve
    left = ctx.deadline - reserve - now
    if left < step.min_s:
        return {
            "status": "skipped",
            "reason": f"global deadline: {max(0, left):.0f} s left, the step needs at least {step.min_s:.0f} s",
        }
    ctx.step_deadline = now + min(left, step.cap_s if ctx.sizes.device != "cpu" else left)
    start = time.monotonic()
    try:
        result = {"status": "ok", **step.run(ctx)}
    except StepFailed as exc:
        text = str(exc)
        status = "skipped" if text.startswith("skipped:") else "failed"
        result = {"status": status, ("reason" if status == "skipped" else "error"): text.removeprefix("skipped: ")}
    except Exception as exc:  # any other failure of this step: recorded, the rest go on
        result = {"status": "failed", "error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:600]}"}
    result["seconds"] = round(time.monotonic() - start, 1)
    return result


def headline(name: str, r: dict[str, Any]) -> str:
    """The step's key figures on one line."""
    if r.get("status") != "ok":
        return r.get("reason") or r.get("error") or ""
    if name == "data":
        return f"{r['images']} JPEGs ({r['unique_images']} distinct, {r['mean_kb']} KB)"
    if name == "decode":
        return f"{r['images_per_s']} images/s by processes; {r['per_worker_images_per_s']} per process"
    if name == "torch_numerics":
        return (
            "; ".join(
                f"{n} {x.get('model_images_per_s')}/{x.get('images_per_s')}"
                + (f" agree {x['vs_float32']['top1_agree']}/{x['vs_float32']['images']}" if "vs_float32" in x else "")
                if x["status"] == "ok"
                else f"{n} FAILED"
                for n, x in r["runs"].items()
            )
            + " (model/end-to-end images/s)"
        )
    if name == "torch_grouping":
        return (
            f"loops {r['alone']['loops_s']} s alone, {r['grouped']['loops_s']} s grouped: {r['speedup_loops']}x "
            f"(process {r['speedup_process']}x); identical {r['identical_files']}"
        )
    if name == "torch_cache":
        return (
            f"fill {r['fill']['loops_s']} s, read {r['read']['loops_s']} s; read vs decoding "
            f"{r.get('speedup_read_vs_decoding_loops')}x; {r['cache_bytes'] / 1e6:.0f} MB"
        )
    if name == "torchrun":
        return "; ".join(
            f"{n} proc: "
            + (f"identical {x['identical_to_one_process']}, {x['distributed']}" if x["status"] == "ok" else "FAILED")
            for n, x in r["runs"].items()
        )
    if name == "keras":
        return "; ".join(
            f"{n} {x.get('images_per_s')} images/s XLA {x.get('xla_taken')}"
            + (
                f" check {x['check_batching']['top1_agree']}/{x['check_batching']['images']}"
                if "check_batching" in x
                else ""
            )
            if x["status"] == "ok"
            else f"{n} FAILED"
            for n, x in r["runs"].items()
        )
    if name in ("real_torch", "real_keras"):
        parts = []
        for n, x in r["runs"].items():
            if x["status"] != "ok":
                parts.append(f"{n} FAILED")
            elif "acc1" in x:
                parts.append(
                    f"{n} Acc@1 {x['acc1']}"
                    + (
                        f" agree {x['vs_cpu']['top1_agree']}/{x['vs_cpu']['images']}"
                        f" diff {x['vs_cpu']['max_abs_prob_diff']:.1e}"
                        if "vs_cpu" in x
                        else ""
                    )
                )
            else:
                parts.append(
                    f"{n} "
                    + ", ".join(
                        f"{m} {y['acc1']}"
                        + (f" agree {y['vs_cpu']['top1_agree']}/{y['vs_cpu']['images']}" if "vs_cpu" in y else "")
                        for m, y in x.items()
                        if isinstance(y, dict)
                    )
                )
        return "; ".join(parts)
    if name == "estimate":
        return f"{len(r['registries'])} registries; fit slope {r['fit']['slope']:.2f} over {r['fit']['points']} models"
    return ""


def print_table(summary: dict[str, Any]) -> None:
    print(
        f"gpu_check ({summary['mode']}): {summary['machine'].get('gpus') or 'no GPU'}, "
        f"{summary['machine']['cpus']} CPUs, "
        f"{summary['wall_s']:.0f} s of {summary['budget_s']:.0f}"
    )
    for name, r in summary["steps"].items():
        try:
            line = headline(name, r)
        except Exception as exc:  # the summary is written already; a table line must not end the run
            line = f"(see the summary: {type(exc).__name__}: {exc})"
        print(f"  {name:15} {r['status']:8} {r.get('seconds', 0):6.1f} s  {line}")
        for finding in r.get("findings", []):
            print(f"  {'':15} finding: {finding}")
        for note in r.get("notes", []):
            print(f"  {'':15} note: {note}")
    if summary["steps"].get("estimate", {}).get("status") == "ok":
        try:
            overnight_estimate.print_estimate(summary["steps"]["estimate"])
        except Exception as exc:
            print(f"  (estimate not printed: {type(exc).__name__}: {exc}; it is in the summary)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, tiny sizes (CI)")
    parser.add_argument("--json", type=Path, default=Path("gpu_check.json"), help="where the summary goes")
    parser.add_argument(
        "--shared",
        type=Path,
        default=ROOT.parent / "shared",
        help="the shared data folder (weights/, data/imagenet-val-500); default ../shared",
    )
    parser.add_argument(
        "--timm-benchmark",
        type=Path,
        default=overnight_estimate.DEFAULT_TIMM_BENCHMARK,
        help="timm's benchmark-infer-*.csv, for timm models' GFLOPs in the estimate",
    )
    parser.add_argument(
        "--budget",
        type=float,
        help="global deadline in seconds (default 480; dry-run 900, a safety net on a loaded CPU)",
    )
    parser.add_argument(
        "--steps",
        help="comma-separated steps to run, in this order (default: all, in order; a "
        "step that needs an earlier one's output fails without it)",
    )
    parser.add_argument("--keep", type=Path, help="keep the generated data and outputs in this folder")
    args = parser.parse_args(argv)
    sizes = sizes_for(args.dry_run, os.cpu_count() or 1)
    os.environ.update(thread_env(sizes.threads))  # this process, the scripts and the forkserver
    budget = args.budget if args.budget is not None else sizes.budget_s
    steps = steps_for(args.timm_benchmark)
    if args.steps:
        by_name = {s.name: s for s in steps}
        wanted = args.steps.split(",")
        unknown = [name for name in wanted if name not in by_name]
        if unknown:
            print(f"error: --steps: unknown {', '.join(unknown)}; known: {', '.join(by_name)}", file=sys.stderr)
            return 2
        steps = [by_name[name] for name in wanted]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ctx = Context(sizes, work, args.shared.resolve(), deadline=started + budget)
        for step in steps:
            print(f"[{time.monotonic() - started:5.0f} s] {step.name} ...", file=sys.stderr, flush=True)
            ctx.steps[step.name] = run_step(ctx, step, estimate_reserve=20 if not args.dry_run else 5)
        summary = {
            "mode": "dry-run" if args.dry_run else "gpu",
            "sizes": asdict(sizes),
            "budget_s": budget,
            "wall_s": round(time.monotonic() - started, 1),
            "machine": machine(),
            "steps": ctx.steps,
            "deadline_hit": any(r.get("reason", "").startswith("global deadline") for r in ctx.steps.values()),
        }
    from imagenet_bench.base import atomic

    atomic.write_text(args.json, json.dumps(summary, indent=1, default=str))
    print_table(summary)
    print(f"summary: {args.json}")
    return exit_status(summary["steps"])


def exit_status(steps: dict[str, dict[str, Any]]) -> int:
    """0 when every step that could run passed: a step skipped for what the machine lacks
    (TensorFlow, ../shared's files) is no failure, nor is a note (one GPU: no nccl); a failed
    step, a finding, or a step the global deadline left out is."""
    for r in steps.values():
        if r["status"] == "failed" or r.get("findings"):
            return 1
        if r["status"] == "skipped" and str(r.get("reason", "")).startswith("global deadline"):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
