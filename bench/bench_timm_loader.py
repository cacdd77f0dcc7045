#!/usr/bin/env python
"""The PyTorch script's data path against a loop built from timm's own loader.

In one run, on real-size JPEGs (bench/realistic_jpegs.py), resnet18 with the same
random weights, batch size and workers:
  * ours: imagenet_pytorch_get_predictions.py -m resnet18 --weights-file ...; images/s
    from its manifest (the prediction loop: decode, resize, crop, forward, top-5);
  * timm: timm.data.create_dataset('', root=VAL) and create_loader(...) with the same
    preprocessing (resize 256 bilinear, crop 224, ImageNet mean/std), then the same
    forward, softmax and top-5, timed over the same loop.
Both run in their own subprocess, alternating, REPEATS times; prints the medians and
the ratio ours / timm (target >= 0.95x).

Usage: python bench/bench_timm_loader.py [--images 200] [--repeats 2] [--workers 2] [--batch-size 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import realistic_jpegs  # noqa: E402

TIMM_LOOP = r"""
import sys, time, torch, timm.data
from torchvision import models
val, weights, batch_size, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
model = models.resnet18()
model.load_state_dict(torch.load(weights, weights_only=True))
model.eval()
dataset = timm.data.create_dataset("", root=val)
loader = timm.data.create_loader(dataset, input_size=(3, 224, 224), batch_size=batch_size, is_training=False,
                                 use_prefetcher=False, interpolation="bilinear", mean=(0.485, 0.456, 0.406),
                                 std=(0.229, 0.224, 0.225), crop_pct=224 / 256, crop_mode="center",
                                 num_workers=workers, device=torch.device("cpu"))
torch.backends.cudnn.deterministic = True
start = time.perf_counter()
n = 0
with torch.inference_mode():
    for x, _ in loader:
        p = torch.softmax(model(x).float(), dim=1)
        top_p, top_i = torch.topk(p, 5, dim=1)
        top_i.numpy(); top_p.numpy()
        n += len(x)
print(n / (time.perf_counter() - start))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    import torch
    from torchvision import models

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        val = realistic_jpegs.make_val_set(tmp / "val", args.images)
        torch.manual_seed(0)
        weights = tmp / "resnet18.pth"
        torch.save(models.resnet18().state_dict(), weights)
        ours, theirs = [], []
        for _ in range(args.repeats):
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "imagenet_pytorch_get_predictions.py"),
                    str(val),
                    "-m",
                    "resnet18",
                    "--weights-file",
                    str(weights),
                    "-o",
                    str(tmp / "out"),
                    "-b",
                    str(args.batch_size),
                    "-j",
                    str(args.workers),
                    "--overwrite",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            manifest = json.loads((tmp / "out" / "resnet18_pytorch_imagenet_manifest.json").read_text())
            ours.append(manifest["throughput"]["images_per_s"])
            result = subprocess.run(
                [sys.executable, "-c", TIMM_LOOP, str(val), str(weights), str(args.batch_size), str(args.workers)],
                check=True,
                capture_output=True,
                text=True,
            )
            theirs.append(float(result.stdout.strip().splitlines()[-1]))
        a, b = statistics.median(ours), statistics.median(theirs)
        print(
            f"{args.images} JPEGs of {realistic_jpegs.mean_file_kb(val):.0f} KB, resnet18, -b {args.batch_size}, "
            f"-j {args.workers}"
        )
        print(f"ours: {a:6.1f} images/s  (runs {', '.join(f'{x:.1f}' for x in ours)})")
        print(f"timm: {b:6.1f} images/s  (runs {', '.join(f'{x:.1f}' for x in theirs)})")
        print(f"ratio ours / timm: {a / b:.2f}x (target >= 0.95x)")


if __name__ == "__main__":
    main()
