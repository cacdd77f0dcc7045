"""ObjectNet's large images and ImageNet-9's two rules, measured side by side (issue 23).

1. Decoding: ObjectNet's images are often 2-4 MP. One image's decode, 2-pixel border crop, resize
   and crop (``images.load_pixels`` with ObjectNet's preprocessing, as the scripts' workers run
   it) on generated 3000 x 2000 JPEGs against val-size 500 x 375 ones, in alternating rounds; beside
   it one image's forward pass of torchvision's ResNet-50 and MobileNetV2 on this CPU (random
   weights: the time does not depend on them), and PIL's reduced JPEG decoding (``draft``) for
   comparison (not used: it changes the pixels).
2. ImageNet-9 with and without resizing: an ``original`` variation built from the real val images
   of ../shared (the 4 superclasses its 10 classes reach, 50 images each), run through both scripts
   with the real MobileNetV2 weights of ../shared/weights (torchvision's dequantized MobileNetV2 and
   Keras's MobileNetV2 1.0/224; both 224 models whose own rule is ResNet-50's: shorter side to 256,
   centre crop 224), with each model's rule and with ``--authors-rule`` (the 224 x 224 images fed
   as they are). Acc@1 by the authors' superclass rule.

    python bench/bench_own_test_sets.py [--images 6] [--rounds 3] [--skip-imagenet-9]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
VAL500 = SHARED / "data" / "imagenet-val-500"
SIZES = {"val-size 500 x 375": (500, 375), "ObjectNet-size 3000 x 2000": (3000, 2000)}


def _jpegs(folder: Path, n: int) -> dict[str, list[Path]]:
    from realistic_jpegs import image

    rng, made = np.random.default_rng(0), {}
    for name, (width, height) in SIZES.items():
        made[name] = []
        for i in range(n):
            path = folder / f"{width}x{height}_{i}.jpg"
            image(rng, width, height).save(path, quality=90)
            made[name].append(path)
    return made


def _per_image(work, paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        work(path)
    return (time.perf_counter() - start) / len(paths)


def bench_decoding(args: argparse.Namespace, folder: Path) -> dict[str, dict[str, float]]:
    from PIL import Image

    from imagenet_bench.datasets import images, test_sets
    from imagenet_bench.datasets.preprocessing import Preprocess

    preprocess = test_sets.TEST_SETS["objectnet"].prepare(Preprocess(crop_size=224, resize_size=256))

    def draft(path: Path) -> None:
        with Image.open(path) as image:
            image.draft("RGB", (256, 256))  # libjpeg scales by 1/2, 1/4 or 1/8 while decoding
            preprocess.pixels(image.convert("RGB"))

    made = _jpegs(folder, args.images)
    times: dict[str, dict[str, list[float]]] = {name: {"full": [], "draft": []} for name in made}
    for _ in range(args.rounds):
        for name, paths in made.items():
            times[name]["full"].append(_per_image(lambda p: images.load_pixels(p, preprocess), paths))
            times[name]["draft"].append(_per_image(draft, paths))
    return {name: {k: statistics.median(v) for k, v in row.items()} for name, row in times.items()}


def bench_forward(rounds: int) -> dict[str, float]:
    import torch
    from torchvision import models

    out = {}
    batch = torch.randn(16, 3, 224, 224)
    for name in ("resnet50", "mobilenet_v2"):
        model = getattr(models, name)(weights=None).eval()
        with torch.inference_mode():
            model(batch[:2])
            runs = []
            for _ in range(rounds):
                start = time.perf_counter()
                model(batch)
                runs.append((time.perf_counter() - start) / len(batch))
        out[name] = statistics.median(runs)
    return out


def _imagenet_9(folder: Path) -> Path:
    """``original/val`` with the nine superclass folders, the real val images of the classes mapped."""
    from imagenet_bench.base.classes import wnid_to_index
    from imagenet_bench.datasets import imagenet_9

    own = imagenet_9.own_classes()
    root = folder / "original" / "val"
    for label, name in enumerate(own.folders):
        (root / name).mkdir(parents=True)
        for wnid in sorted(p.name for p in VAL500.iterdir() if p.is_dir()):
            if wnid_to_index()[wnid] in own.accepts[label]:
                for jpeg in sorted((VAL500 / wnid).iterdir()):
                    (root / name / jpeg.name).symlink_to(jpeg)
    return root


RUNS = {  # platform: (script, model, weights file)
    "pytorch": ("imagenet_pytorch_get_predictions.py", "mobilenet_v2", "torchvision_mobilenet_v2_dequantized.pth"),
    "keras": ("imagenet_keras_get_predictions.py", "mobilenetV2", "keras_mobilenetv2_alpha1.0_224.weights.h5"),
}


def bench_imagenet_9(folder: Path) -> dict[str, dict[str, float]]:
    """Acc@1 (superclass of the 1000-class top-1) per platform and rule."""
    from imagenet_bench.datasets import imagenet_9

    variation = _imagenet_9(folder)
    member = imagenet_9.own_classes().membership()
    out: dict[str, dict[str, float]] = {}
    for platform_name, (script, model, weights) in RUNS.items():
        out[platform_name] = {}
        for rule, extra in (("model", []), ("authors", ["--authors-rule"])):
            dest = folder / f"{platform_name}-{rule}"
            command = [sys.executable, str(ROOT / script), str(variation), "-m", model]
            command += ["--weights-file", f"{model}={SHARED / 'weights' / weights}", "-o", str(dest), *extra]
            subprocess.run(command, check=True, capture_output=True)
            top1 = np.load(dest / f"{model}_{platform_name}_imagenet_top5preds.npy")[:, 0]
            labels = np.load(dest / "dataset_labels.npy")
            manifest = json.loads((dest / f"{model}_{platform_name}_imagenet_manifest.json").read_text())
            assert manifest["preprocessing"]["rule"] in (rule, "authors: no resize")
            out[platform_name][rule] = 100 * float(np.mean(member[labels, top1]))
            out[platform_name]["n"] = len(labels)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=6, help="generated JPEGs of each size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-imagenet-9", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {platform.platform()}")
    with tempfile.TemporaryDirectory() as tmp:
        decode = bench_decoding(args, Path(tmp))
        forward = bench_forward(args.rounds)
        small, large = (decode[name] for name in SIZES)
        print("\nper image, median of rounds        decode+border+resize+crop   draft decode (not used)")
        for name, row in decode.items():
            print(f"  {name:32s} {1000 * row['full']:10.1f} ms {1000 * row['draft']:20.1f} ms")
        print(f"  ratio large / val-size           {large['full'] / small['full']:10.1f} x")
        for name, seconds in forward.items():
            print(
                f"  {name} forward (CPU, batch 16): {1000 * seconds:.1f} ms; large decode / forward "
                f"{large['full'] / seconds:.2f}, val-size decode / forward {small['full'] / seconds:.2f}"
            )
        if not args.skip_imagenet_9:
            accs = bench_imagenet_9(Path(tmp))
            print("\nImageNet-9 original (from real val images), Acc@1 by superclass   model's rule   authors' rule")
            for name, row in accs.items():
                print(
                    f"  {name} {RUNS[name][1]:14s} {int(row['n'])} images {row['model']:24.2f} {row['authors']:15.2f}"
                    f"   (authors - model {row['authors'] - row['model']:+.2f})"
                )


if __name__ == "__main__":
    main()
