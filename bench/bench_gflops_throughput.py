#!/usr/bin/env python
"""How well do GFLOPs predict a model's images/s? Checked against timm's measured table.

bench/overnight_estimate.py predicts each model's GPU throughput from its GFLOPs alone
(a line through log images/s against log GFLOPs, fitted across the models the GPU check
measured). This script tests that model on timm's own inference benchmark: 1,627 models
measured on one RTX 5090 with AMP (../shared/reference/timm-results, benchmark-infer-amp-
nchw-pt291-cu130-5090.csv: images/s, GMACs and activations per model). It prints:

- the correlation of log images/s with log GFLOPs, and the fitted line;
- the error of the fitted prediction, |predicted / measured - 1|: median and 90th percentile,
  over all models, by size band, and on a held-out half (fit on one half, tested on the other);
- the same with activations (millions of output elements) as a second predictor, which timm's
  table has and the registries mostly do not: how much of the error is memory traffic;
- the fit through only the few cheap models and resnet50 that the GPU check measures,
  applied to every model: how far a fit on so few points carries; and what the estimate
  does instead: the whole table's slope, with only the level taken from the check's models
  (or from resnet50 alone).

With --val-hours it also sums, over timm's registry (its models at their test size, as the
prediction script runs them), the table's measured images/s into GPU hours for the 50,000 val
images, and the same for torchvision's models from the table's line at their GFLOPs: a floor
for the overnight run on one such GPU (model time only, AMP, batch 1024, no decoding).

Usage: python bench/bench_gflops_throughput.py [CSV] [--json FILE] [--val-hours]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

DEFAULT = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "reference"
    / "timm-results"
    / "benchmark-infer-amp-nchw-pt291-cu130-5090.csv"
)
# The models bench/gpu_check.py measures (timm's names for them, at 224).
CHECKED = ("resnet50", "mobilenetv3_small_100", "mnasnet_050", "mobilenetv2_100", "mnasnet_100", "resnet18")


def load(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["infer_gmacs"] and r["infer_samples_per_sec"] and r["infer_macts"]]
    return {
        "model": np.array([r["model"] for r in rows]),
        "size": np.array([int(r["infer_img_size"]) for r in rows]),
        "ips": np.array([float(r["infer_samples_per_sec"]) for r in rows]),
        "gflops": np.array([float(r["infer_gmacs"]) for r in rows]),
        "acts": np.array([float(r["infer_macts"]) for r in rows]),
    }


def errors(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    e = np.abs(predicted / measured - 1)
    return {"median": float(np.median(e)), "p90": float(np.percentile(e, 90)), "n": len(e)}


def fit_predict(x_fit: np.ndarray, y_fit: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Least squares of log images/s on [1, predictors...]; predicted images/s for x."""
    coef, *_ = np.linalg.lstsq(np.c_[np.ones(len(x_fit)), x_fit], y_fit, rcond=None)
    return np.exp(np.c_[np.ones(len(x)), x] @ coef)


def analyse(d: dict[str, np.ndarray]) -> dict[str, object]:
    lg, la, ly = np.log(d["gflops"]), np.log(d["acts"]), np.log(d["ips"])
    slope, intercept = np.polyfit(lg, ly, 1)
    out: dict[str, object] = {
        "models": len(ly),
        "r_log_gflops": float(np.corrcoef(lg, ly)[0, 1]),
        "slope": float(slope),
        "intercept": float(intercept),
        "gflops": errors(fit_predict(lg[:, None], ly, lg[:, None]), d["ips"]),
        "gflops_and_activations": errors(fit_predict(np.c_[lg, la], ly, np.c_[lg, la]), d["ips"]),
    }
    bands = {"< 1 GFLOPs": lg < 0, "1-10 GFLOPs": (lg >= 0) & (lg < np.log(10)), ">= 10 GFLOPs": lg >= np.log(10)}
    predicted = fit_predict(lg[:, None], ly, lg[:, None])
    out["by_band"] = {name: errors(predicted[mask], d["ips"][mask]) for name, mask in bands.items()}
    half = np.random.default_rng(0).permutation(len(ly)) < len(ly) // 2
    out["held_out_half"] = errors(fit_predict(lg[half, None], ly[half], lg[~half, None]), d["ips"][~half])
    checked = np.isin(d["model"], CHECKED) & (d["size"] == 224)
    if checked.sum() >= 2:
        out["fit_on_checked_models"] = {
            "models": sorted(set(d["model"][checked])),
            "slope": float(np.polyfit(lg[checked], ly[checked], 1)[0]),
            **errors(fit_predict(lg[checked, None], ly[checked], lg[:, None]), d["ips"]),
        }
        # what overnight_estimate does: the whole table's slope, the level from the check's models
        level = float(np.mean(ly[checked] - slope * lg[checked]))
        out["table_slope_checked_level"] = errors(np.exp(level + slope * lg), d["ips"])
        r50 = checked & (d["model"] == "resnet50")
        level = float(np.mean(ly[r50] - slope * lg[r50]))
        out["table_slope_resnet50_level"] = errors(np.exp(level + slope * lg), d["ips"])
    return out


def val_hours(d: dict[str, np.ndarray], r: dict[str, object], images: int = 50_000) -> dict[str, object]:
    """GPU hours for the val set: timm's registry from the table's rows, torchvision from its line."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import overnight_estimate

    from imagenet_bench.models import timm_registry

    measured = {(m, s): ips for m, s, ips in zip(d["model"], d["size"], d["ips"], strict=True)}
    found = [measured.get((e.architecture, e.reference_preprocess().crop_size)) for e in timm_registry.entries()]
    known = [ips for ips in found if ips]
    median = float(np.median(known))
    timm_h = sum(images / (ips or median) for ips in found) / 3600
    tv = [m.gflops for m in overnight_estimate.torchvision_models()]
    tv_h = sum(images / np.exp(r["intercept"] + r["slope"] * np.log(g)) for g in tv) / 3600
    return {
        "timm_models": len(found),
        "timm_in_table": len(known),
        "timm_hours": round(timm_h, 2),
        "torchvision_models": len(tv),
        "torchvision_hours": round(float(tv_h), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--val-hours", action="store_true", help="GPU hours of the val set on the table's GPU")
    args = parser.parse_args()
    data = load(args.csv)
    r = analyse(data)
    pct = lambda e: f"median {100 * e['median']:.0f}%, 90th percentile {100 * e['p90']:.0f}% ({e['n']} models)"
    print(
        f"{r['models']} models: r(log images/s, log GFLOPs) = {r['r_log_gflops']:.3f}; "
        f"log images/s = {r['intercept']:.2f} {r['slope']:+.3f} log GFLOPs"
    )
    print(f"error of the GFLOPs fit: {pct(r['gflops'])}")
    for band, e in r["by_band"].items():
        print(f"  {band:13} {pct(e)}")
    print(f"fit on one half, tested on the other: {pct(r['held_out_half'])}")
    print(f"with activations as a second predictor: {pct(r['gflops_and_activations'])}")
    if "fit_on_checked_models" in r:
        c = r["fit_on_checked_models"]
        print(f"fit on the check's {len(c['models'])} models only (slope {c['slope']:+.3f}), applied to all: {pct(c)}")
        print(f"the table's slope, level from the check's models: {pct(r['table_slope_checked_level'])}")
        print(f"the table's slope, level from resnet50 alone: {pct(r['table_slope_resnet50_level'])}")
    if args.val_hours:
        h = r["val_hours"] = val_hours(data, r)
        print(
            f"GPU hours for the 50,000 val images on the table's GPU (AMP, model only): timm "
            f"{h['timm_hours']} h ({h['timm_in_table']} of {h['timm_models']} models measured in the table, the "
            f"rest at their median), torchvision {h['torchvision_hours']} h ({h['torchvision_models']} models, "
            f"from the line)"
        )
    if args.json:
        args.json.write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
