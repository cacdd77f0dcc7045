#!/usr/bin/env python
"""Peak memory of the prediction scripts at two or more sizes, repeated, this tree beside another.

Each run is one script's command on generated 96 x 80 JPEGs in the ImageFolder layout (the same
images at every size: a size is the first N per class), ``--device cpu``; its peak is the kernel's
maximum resident set size of the run and its processes (``wait4``'s ``ru_maxrss``: what
``/usr/bin/time -f %M`` prints, the largest single process). Runs alternate between the trees so
that the machine's load falls on both alike. Printed per script, configuration, tree and size:
the minimum, median and maximum peak over the repeats, their spread, the median wall time, and the
growth per image between the smallest and largest size (medians).

PyTorch runs a one-layer model (``--model-spec``: decoding and the pipeline are all that run);
Keras runs keras.applications' MobileNet 0.25 at 128 with the real weights of ../shared.

  python bench/bench_memory.py --baseline /path/to/older/checkout          # 1,000 / 4,000, 3 repeats
  python bench/bench_memory.py --sizes 3000 15000 40000 --repeats 5 --json figures.json
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
SHARED = ROOT.parent / "shared"
KERAS_WEIGHTS = SHARED / "weights" / "keras_mobilenet_alpha0.25_128.weights.h5"
SPEC = """
import torch
from imagenet_bench.datasets.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocess


def one_layer():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 1000))
    return model, Preprocess(224, 256, "shorter", "bilinear", "mean_std", IMAGENET_MEAN, IMAGENET_STD)
"""

# configuration -> (script, its arguments after the val folder); {work} is the bench's folder
CONFIGURATIONS = {
    "pytorch -j 0": ("pytorch", ["-j", "0"]),
    "pytorch -j 2": ("pytorch", ["-j", "2"]),
    "pytorch cache": ("pytorch", ["-j", "0", "--cache-dir", "{work}/cache"]),
    "keras one at a time": ("keras", []),
    "keras -b 32": ("keras", ["-b", "32"]),
}


def make_images(folder: Path, per_class: int, classes: int) -> None:
    """``per_class`` JPEGs in each of the first ``classes`` class folders (kept between runs)."""
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from imagenet_bench.base.classes import wnids

    rng = np.random.default_rng(0)
    ramp = (np.linspace(0, 255, 96)[None, :, None] * np.ones((80, 1, 3))).astype(int)
    for c, wnid in enumerate(wnids()[:classes]):
        (folder / wnid).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            path = folder / wnid / f"ILSVRC2012_val_{c * per_class + i:08d}.JPEG"
            noise = rng.integers(-40, 40, (80, 96, 3))
            if not path.exists():
                Image.fromarray(np.clip(ramp + noise, 0, 255).astype(np.uint8)).save(path, quality=85)


def command(tree: Path, work: Path, configuration: str, size: int, classes: int) -> list[str]:
    script, extra = CONFIGURATIONS[configuration]
    out = work / "out" / f"{configuration.replace(' ', '_')}-{size}"
    common = [str(work / "images"), "--per-class", str(size // classes), "-o", str(out), "--overwrite"]
    common += [a.format(work=work) for a in extra]
    if script == "pytorch":
        model = ["--model-spec", f"{work / 'spec.py'}:one_layer", "--name", "one_layer", "--device", "cpu"]
        return [sys.executable, str(tree / "imagenet_pytorch_get_predictions.py"), *common, *model]
    model = ["-m", "mobilenet_0.25_128", "--weights-file", str(KERAS_WEIGHTS)]
    return [sys.executable, str(tree / "imagenet_keras_get_predictions.py"), *common, *model]


# Grouped passes (two models each) one after another in one process, as a run of several groups
# does: the resident memory (RssAnon, the process's own) just before each pass, after what the
# tree does between passes.
PASSES = """
import copy, gc, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from imagenet_bench.datasets import layout
from imagenet_bench.models import torch_build
from imagenet_bench.predict import torch_predict
try:
    from imagenet_bench.base import memory
except ImportError:
    memory = None
if memory is not None:
    memory.keep_large_blocks_out_of_the_heap()
model, preprocess = torch_build.model_from_spec(sys.argv[3])
dataset = layout.select(layout.scan(sys.argv[2]), per_class=int(sys.argv[4]))
for _ in range(int(sys.argv[5])):
    memory.give_back_freed_memory() if memory is not None else gc.collect()
    rss = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("RssAnon")]
    print(int(rss[0].split()[1]) / 1024, flush=True)
    members = [torch_predict.Member(name, copy.deepcopy(model), preprocess) for name in "ab"]  # a grouped pass
    torch_predict.predict_group(members, dataset, torch_predict.Numerics(), 32, 0, 5)
"""


def levels_before_passes(
    tree: Path, work: Path, size: int, classes: int, passes: int, env: dict[str, str]
) -> list[float]:
    cmd = [sys.executable, "-c", PASSES, str(tree), str(work / "images"), f"{work / 'spec.py'}:one_layer"]
    done = subprocess.run([*cmd, str(size // classes), str(passes)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"error: the passes measurement failed:\n{done.stderr[-2000:]}")
    return [float(line) for line in done.stdout.split()]


def peak_mb(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """The run's peak resident set (its largest process) in MB, and its wall time in seconds;
    fails if the run fails."""
    started = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert process.stderr is not None
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(
            f"error: {' '.join(cmd)} exited {process.returncode}:\n{stderr.decode(errors='replace')[-2000:]}"
        )
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000], help="images per run (default 1000 4000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--classes", type=int, default=1000, help="class folders (default 1000)")
    parser.add_argument("--configurations", nargs="*", default=list(CONFIGURATIONS), choices=list(CONFIGURATIONS))
    parser.add_argument("--baseline", type=Path, help="another checkout of the project, run beside this one")
    parser.add_argument(
        "--passes", type=int, default=4, help="passes in one process, at the smallest size (default 4; 0: none)"
    )
    parser.add_argument("--work", type=Path, help="keep the images here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if any(size % args.classes for size in args.sizes):
        parser.error(f"each size must be a multiple of --classes ({args.classes})")

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as temporary:
        work = (args.work or Path(temporary)).resolve()
        make_images(work / "images", max(args.sizes) // args.classes, args.classes)
        (work / "spec.py").write_text(SPEC)
        trees = {"this": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
        env = dict(os.environ, PYTHONPATH=str(work), TF_CPP_MIN_LOG_LEVEL="3")
        peaks: dict[tuple[str, str, int], list[float]] = {}
        passes: dict[str, list[list[float]]] = {}
        walls: dict[tuple[str, str, int], list[float]] = {}
        started = time.time()
        for repeat in range(args.repeats):
            for configuration in args.configurations:
                for size in args.sizes:
                    for name, tree in trees.items() if repeat % 2 == 0 else reversed(trees.items()):
                        cmd = command(tree, work, configuration, size, args.classes)
                        peak, seconds = peak_mb(cmd, env)
                        peaks.setdefault((configuration, name, size), []).append(peak)
                        walls.setdefault((configuration, name, size), []).append(seconds)
            for name, tree in trees.items() if args.passes and repeat == 0 else ():  # once: a slow measure
                levels = levels_before_passes(tree, work, min(args.sizes), args.classes, args.passes, env)
                passes.setdefault(name, []).append(levels)
            print(f"repeat {repeat + 1}/{args.repeats} done ({time.time() - started:.0f} s)", file=sys.stderr)

    rows = []
    print(
        f"{'configuration':22} {'tree':9} {'images':>7} {'min':>7} {'median':>7} {'max':>7} {'spread':>7} "
        f"{'wall s':>7}  KB/image"
    )
    for configuration in args.configurations:
        for name in trees:
            medians = {size: statistics.median(peaks[configuration, name, size]) for size in args.sizes}
            small, large = min(args.sizes), max(args.sizes)
            growth = (medians[large] - medians[small]) * 1024 / (large - small) if large > small else float("nan")
            for size in args.sizes:
                values = peaks[configuration, name, size]
                spread = max(values) - min(values)
                wall = statistics.median(walls[configuration, name, size])
                last = f"{growth:8.2f}" if size == large else ""
                print(
                    f"{configuration:22} {name:9} {size:7} {min(values):7.0f} {medians[size]:7.0f} "
                    f"{max(values):7.0f} {spread:7.0f} {wall:7.1f}  {last}"
                )
                rows.append(
                    {
                        "configuration": configuration,
                        "tree": name,
                        "images": size,
                        "peaks_mb": values,
                        "wall_s": walls[configuration, name, size],
                    }
                )
            rows[-1]["growth_kb_per_image"] = round(growth, 3)
    for name, runs in passes.items():
        print(
            f"\nRssAnon (MB) of {name} before each of {args.passes} passes of {min(args.sizes)} images (PyTorch -j 0):"
        )
        for levels in runs:
            rise = max(levels[1:]) - levels[1] if len(levels) > 2 else 0.0
            shown = " ".join(f"{v:7.0f}" for v in levels)
            print(f"  {shown}   after the first pass: +{rise:.0f} MB at most")
    if args.json:
        figures = {"trees": {k: str(v) for k, v in trees.items()}, "runs": rows, "levels_before_passes": passes}
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
