#!/usr/bin/env python
"""Time of the HTML report against the text table, and the report's size, at 1,500 models.

Two measurements, in one run:
  * time: the 68 files of 2019 hard-linked under 1,500 model names (3,000 files, no copies,
    made as bench_table.py makes them, in a temporary folder removed at the end, with the score
    cache); ``imagenet_benchmarking.py -k KERAS -p PYTORCH`` (the text table) and the same with
    ``--html FILE`` run as subprocesses,
    REPEATS times interleaved after an untimed warm-up of each; the medians and their ratio are
    printed (target: report <= 2x the text table). Three ways: every file read (``--no-cache``),
    a rerun on the score cache, and a rerun with ``--published`` (one more chart).
  * size: a generated table of 1,500 models on six test sets (val and five others), every
    model with a full manifest on each (unique weights hashes, dates and command lines),
    rendered in-process: the page's size (target: at most 5 MB) and the render time; then, where
    Debian's Chromium is installed, the time to open that page and to sort and filter it.

Usage: python bench/bench_html.py [SEED_DIR] [--models N] [--repeats N]
SEED_DIR defaults to ../shared/reference/seed-2019 beside the project root.
``synthetic_table`` is also what tests/test_html_report.py checks the size limit with.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_SEED = ROOT.parent / "shared" / "reference" / "seed-2019"
TARGET_RATIO = 2.0
TARGET_BYTES = 5 * 10**6
TEST_SETS = ("val", "imagenetv2", "sketch", "imagenet-a", "imagenet-r", "objectnet")
SOURCES = ("torchvision", "timm", "timm", "timm", "keras", "keras_hub")


def _manifest(model: str, platform_name: str, source: str, dataset: str, i: int, rng) -> dict:
    """A manifest shaped like the prediction scripts' (see torch_run.py, keras_run.py); its date
    and timings differ for every model and dataset, as they do in a real run."""
    sha = hashlib.sha256(model.encode()).hexdigest()
    wall = rng.uniform(20, 400)
    return {
        "schema": "imagenet-bench/manifest/1",
        "model": model,
        "platform": platform_name,
        "created": f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
        f"{rng.randint(0, 59):02d}+00:00",
        "protocol": "reference",
        "dataset": {
            "fingerprint": hashlib.sha256(dataset.encode()).hexdigest(),
            "layout": "imagefolder",
            "root": f"/data/{dataset}",
            "n_images": 50000,
            "n_classes_present": 1000,
            "full_val": True,
            "subset": None,
        },
        "labels_source": "class folders (WordNet ids)",
        "request": {
            "source": source,
            "weights": f"{model}.DEFAULT",
            "weights_file": None,
            "topk": 5,
            "dataset": hashlib.sha256(dataset.encode()).hexdigest(),
            "device": "cuda:0",
        },
        "environment": {
            "python": "3.11.7",
            "numpy": "2.4.6",
            "pillow": "12.0.0",
            "os": "Linux-6.8-x86_64",
            "machine": "x86_64",
            "hostname": "gpu-node-07",
        },
        "git": {"commit": "3fa4539c4b3c0f7333ef5dac6a44a9eeecaee319", "dirty": False},
        "framework": {"name": source, "torch": "2.14.1", "torchvision": "0.29.1", "timm": "1.0.31"},
        "weights": {
            "id": f"{model}.DEFAULT",
            "source": "download",
            "url": f"https://example.org/{model}.pth",
            "sha256": sha,
            "tag": "in1k",
        },
        "preprocessing": {
            "resize_mode": "shorter",
            "resize_size": 256 + 32 * (i % 3),
            "crop_size": 224 + 32 * (i % 3),
            "interpolation": ("bilinear", "bicubic")[i % 2],
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "normalization": "imagenet",
            "antialias": True,
            "library": "PIL 12.0.0",
        },
        "device": {"name": "cuda:0", "model": "NVIDIA H200"},
        "numerics": {
            "dtype": "float32",
            "tf32_matmul": False,
            "tf32_cudnn": False,
            "cudnn_deterministic": True,
            "cudnn_benchmark": False,
            "channels_last": False,
            "quantized_engine": "x86",
        },
        "batch_size": 64,
        "workers": 8,
        "throughput": {
            "wall_time_s": round(wall, 3),
            "images_per_s": round(50000 / wall, 2),
            "model_time_s": round(wall * rng.uniform(0.3, 0.9), 3),
        },
        "command": [
            "python",
            "imagenet_pytorch_get_predictions.py",
            f"/data/{dataset}",
            "-m",
            model,
            "-b",
            "64",
            "-o",
            f"runs/{dataset}",
        ],
        "outputs": {"n_images": 50000, "topk": 5},
    }


def synthetic_table(n_models: int = 1500, test_sets: tuple[str, ...] = TEST_SETS):
    """A table shaped like the table script's for ``n_models`` models on ``test_sets``
    (the first is the primary one), with --published, a manifest for every model on every set."""
    import math
    import random

    from imagenet_bench.report import table
    from imagenet_bench.report.table_format import Column, percent, signed

    rng = random.Random(0)
    rows = []
    for i in range(n_models):
        source = SOURCES[i % len(SOURCES)]
        platform_name = "keras" if source.startswith("keras") else "pytorch"
        model = f"model_{i:04d}.variant_{i % 7}"
        val = rng.uniform(55, 90)
        row = {
            "platform": platform_name,
            "platform_name": table.PLATFORM_NAMES[platform_name],
            "model": model,
            "source": source,
            "acc1": val,
            "acc5": min(99.9, val + rng.uniform(5, 15)),
            "rank1": None,
            "rank5": None,
            "images_per_s": rng.uniform(50, 20000),
            "device": "NVIDIA H200",
            "published_acc1": val + rng.uniform(-1, 1),
            "published_acc5": None,
            "manifests": {t: _manifest(model, platform_name, source, t, i, rng) for t in test_sets},
        }
        row["delta1"] = row["acc1"] - row["published_acc1"]
        for j, t in enumerate(test_sets[1:]):
            logit = math.log(val / (100 - val))
            test = 100 / (1 + math.exp(-(0.9 * logit - 0.5 * (j + 1) + rng.gauss(0, 0.2))))
            row[f"acc1:{t}"], row[f"delta:{t}"] = test, test - val
            row[f"er:{t}"] = rng.gauss(0, 2)
        rows.append(row)
    rows.sort(key=lambda r: -r["acc1"])
    for k, row in enumerate(rows):
        row["rank1"] = k + 1
    columns = [
        Column("Platform", "platform_name", numeric=False),
        Column("Model", "model", numeric=False),
        Column("Acc@1", "acc1", percent),
        Column("Acc@5", "acc5", percent),
        Column("Rank@1", "rank1"),
        Column("Rank@5", "rank5"),
        Column("Pub@1", "published_acc1", percent),
        Column("Δ@1", "delta1", signed),
    ]
    for t in test_sets[1:]:
        columns += [
            Column(f"{t} Acc@1", f"acc1:{t}", percent),
            Column(f"{t} Δ", f"delta:{t}", signed),
            Column(f"{t} ER", f"er:{t}", signed),
        ]
    datasets = [
        {
            "name": t,
            "folders": [f"runs/{t}"],
            "n_images": 50000,
            "n_classes": 1000,
            "class_subset": None,
            "labels": "class folders (WordNet ids)",
        }
        for t in test_sets
    ]
    fits = {
        t: {"slope": 0.9, "intercept": -0.5 * (j + 1), "baseline": [r["model"] for r in rows]}
        for j, t in enumerate(test_sets[1:])
    }
    return table.Table(
        rows, columns, datasets, list(test_sets), fits, ["Published figures are for the full 50,000-image val set."]
    )


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def chromium_driver():
    """Headless Debian Chromium through its chromedriver (Selenium; nothing downloaded), with
    the browser's console kept for reading. The caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def time_in_browser(page: Path) -> dict[str, float]:
    """Seconds to open the page (parse, build the table and charts, lay out) and to re-sort and
    re-filter it, each until the browser has laid the page out again."""
    driver = chromium_driver()
    try:
        start = time.perf_counter()
        driver.get(page.as_uri())
        driver.execute_script("return document.body.offsetHeight")
        times = {"open": time.perf_counter() - start}
        for name, script in (
            ("sort by Acc@1", "document.querySelector('#models th[data-key=acc1] button').click()"),
            ("filter to one platform", "document.querySelector('#filter-platform input').click()"),
        ):
            start = time.perf_counter()
            driver.execute_script(script + "; return document.body.offsetHeight")
            times[name] = time.perf_counter() - start
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        if errors:
            raise SystemExit(f"console errors in {page}: {errors}")
        return times
    finally:
        driver.quit()


def run_once(command: list[str]) -> float:
    """Wall seconds of one subprocess; exits if it fails."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr}")
    return wall


def time_side_by_side(folders: tuple[Path, Path], html: Path, repeats: int, extra: list[str]) -> dict[str, list[float]]:
    keras, pytorch = folders
    script = [sys.executable, str(ROOT / "imagenet_benchmarking.py"), "-k", str(keras), "-p", str(pytorch), *extra]
    commands = {"text table": script, "html report": script + ["--html", str(html)]}
    for command in commands.values():
        run_once(command)  # warm-up: files in the page cache (and the score cache written) for both
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            walls[name].append(run_once(command))
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "seed_dir",
        nargs="?",
        type=Path,
        default=DEFAULT_SEED,
        help=f"folder with keras_imagenet/ and pytorch_imagenet/ (default {DEFAULT_SEED})",
    )
    parser.add_argument("--models", type=int, default=1500, help="models in the timed folder (default 1500)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each (default 5)")
    args = parser.parse_args()

    from bench_table import link_models  # the table bench's 1,500-model folder, made the same way

    from imagenet_bench.report import html_report

    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, {args.repeats} runs each, interleaved, "
        "after a warm-up"
    )
    with tempfile.TemporaryDirectory(prefix="bench_html.") as tmp:
        html = Path(tmp) / "report.html"
        folders = link_models(args.seed_dir, args.models, Path(tmp) / "models")
        cache = ["--cache-dir", str(Path(tmp) / "cache")]
        modes = {
            "cold (--no-cache)": ["--no-cache"],
            "rerun (score cache)": cache,
            "rerun, --published": cache + ["--published"],
        }
        for mode, extra in modes.items():
            walls = time_side_by_side(folders, html, args.repeats, extra)
            median = {name: statistics.median(values) for name, values in walls.items()}
            ratio = median["html report"] / median["text table"]
            print(f"{args.models} models ({2 * args.models} hard-linked files), {mode}:")
            for name, values in walls.items():
                print(f"  {name:<12} median {median[name]:.3f} s  (range {min(values):.3f}-{max(values):.3f} s)")
            verdict = "ok" if ratio <= TARGET_RATIO else "ABOVE TARGET"
            print(
                f"  ratio html/text {ratio:.2f}x  (target <= {TARGET_RATIO}x: {verdict}); "
                f"page {html.stat().st_size / 1e6:.2f} MB"
            )

    start = time.perf_counter()
    synthetic = synthetic_table()
    built = time.perf_counter() - start
    start = time.perf_counter()
    page = html_report.render(synthetic, html_report.ReportInfo("bench", "now"))
    rendered = time.perf_counter() - start
    size = len(page.encode("utf-8"))
    verdict = "ok" if size <= TARGET_BYTES else "ABOVE TARGET"
    print(
        f"generated table, {len(synthetic.rows)} models x {len(synthetic.test_sets)} test sets, a manifest each "
        f"(built in {built:.2f} s): page {size / 1e6:.2f} MB (target <= {TARGET_BYTES / 1e6:.0f} MB: {verdict}), "
        f"rendered in {rendered:.2f} s"
    )
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        with tempfile.TemporaryDirectory(prefix="bench_html.") as tmp:
            page_path = Path(tmp) / "report.html"
            page_path.write_text(page, encoding="utf-8")
            times = time_in_browser(page_path)
        print("  in headless Chromium: " + ", ".join(f"{name} {t:.2f} s" for name, t in times.items()))
    else:
        print(f"  (no {CHROMIUM} or {CHROMEDRIVER}: the page was not timed in a browser)")


if __name__ == "__main__":
    main()
