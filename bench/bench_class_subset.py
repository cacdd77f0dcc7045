"""What the class restriction (ImageNet-A/-R's 200 classes) costs: measured side by side.

Two measurements, each in alternating rounds (unrestricted, restricted, unrestricted, ...)
so that machine load hits both alike; the script prints the medians and their ratio:

  1. PyTorch: ``torch_predict.predict_group`` over generated images (pixels from a pixel
     cache entry, so decoding does not drown the difference), the dataset with and without
     ImageNet-A's class subset: the restriction is one ``index_select`` per batch and one
     index of the top-k.
  2. The post-processing alone, no model, per batch: PyTorch's (softmax, top-k; restricted:
     index_select first, the top-k indexed back) and Keras's (``keras_predict.scored``, numpy,
     on the CPU after each batch whatever the device), with and without the subset: their
     absolute time against a model's time per batch is what matters.

    python bench/bench_class_subset.py [--images 256] [--batch 64] [--rounds 5] [--model mobilenet_v2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _images(folder: Path, n: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    cls = folder / "val" / "n01440764"
    cls.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(cls / f"img_{i:05d}.JPEG")
    return folder / "val"


def bench_torch(args: argparse.Namespace, tmp: Path) -> tuple[float, float]:
    import torch
    from torchvision import models

    from imagenet_bench.datasets import layout, test_sets
    from imagenet_bench.datasets.preprocessing import Preprocess
    from imagenet_bench.predict import pixel_cache, torch_predict

    torch.set_num_threads(max(1, torch.get_num_threads()))
    dataset = layout.scan(_images(tmp, args.images))
    restricted = replace(dataset, class_subset=test_sets.default_subset("imagenet-a"))
    preprocess = Preprocess(resize_size=256, crop_size=224)
    cache = pixel_cache.PixelCache(tmp / "cache", dataset, preprocess)
    cache.ensure(dataset, preprocess, 1)
    model = getattr(models, args.model)(weights=None).eval()
    numerics = torch_predict.Numerics("cuda" if torch.cuda.is_available() else "cpu")
    numerics.apply()
    member = [torch_predict.Member(args.model, model, preprocess)]

    def one(data) -> float:
        out = torch_predict.predict_group(member, data, numerics, args.batch, 0, 5, cache=cache)[args.model]
        return out["throughput"]["wall_time_s"]

    one(dataset)  # warm-up
    plain, subset = [], []
    for _ in range(args.rounds):
        plain.append(one(dataset))
        subset.append(one(restricted))
    return statistics.median(plain), statistics.median(subset)


def bench_torch_scoring(args: argparse.Namespace) -> tuple[float, float]:
    """The PyTorch post-processing alone, as ``predict_group`` does it, on a batch of logits:
    softmax and top-k, against index_select, softmax, top-k and the index back."""
    import torch

    from imagenet_bench.datasets import test_sets

    logits = torch.randn(args.batch, 1000, generator=torch.Generator().manual_seed(0))
    subset = torch.tensor(test_sets.default_subset("imagenet-a").indices)

    def plain() -> None:
        torch.topk(torch.softmax(logits.float(), dim=1), 5, dim=1)

    def restricted() -> None:
        p = torch.softmax(logits.float().index_select(1, subset), dim=1)
        _, top_i = torch.topk(p, 5, dim=1)
        subset[top_i]

    return _alternating(plain, restricted, args.rounds)


def _alternating(plain, restricted, rounds: int, calls: int = 200) -> tuple[float, float]:
    """Median seconds per call of each, in alternating rounds."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for target, fn in zip(times, (plain, restricted), strict=True):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            target.append((time.perf_counter() - start) / calls)
    return statistics.median(times[0]), statistics.median(times[1])


def bench_keras_scoring(args: argparse.Namespace) -> tuple[float, float]:
    from imagenet_bench.datasets import test_sets
    from imagenet_bench.predict import keras_predict

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (args.batch, 1000))
    probs = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    subset = test_sets.default_subset("imagenet-a")
    return _alternating(
        lambda: keras_predict.scored(probs, 5, None), lambda: keras_predict.scored(probs, 5, subset), args.rounds
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=256, help="0: skip the model pass")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default="mobilenet_v2")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {platform.platform()}")
    if args.images:  # --images 0: the post-processing alone
        with tempfile.TemporaryDirectory() as tmp:
            plain, restricted = bench_torch(args, Path(tmp))
        print(
            f"pytorch {args.model}, {args.images} images, batch {args.batch}, median of {args.rounds} rounds: "
            f"all 1000 classes {plain:.3f} s, ImageNet-A's 200 {restricted:.3f} s, ratio {restricted / plain:.3f}"
        )
    plain, restricted = bench_torch_scoring(args)
    print(
        f"pytorch post-processing of a batch of {args.batch} logits: softmax + top-k {1e3 * plain:.3f} ms, "
        f"restricted (index, softmax, top-k, index back) {1e3 * restricted:.3f} ms"
    )
    plain, restricted = bench_keras_scoring(args)
    print(
        f"keras post-processing of a batch of {args.batch} (numpy): top-k {1e3 * plain:.3f} ms, restricted "
        f"(renormalise, top-k, expand) {1e3 * restricted:.3f} ms"
    )


if __name__ == "__main__":
    main()
