#!/usr/bin/env python
"""Images/s of Keras MobileNetV2 (alpha 1.0, 224): one image at a time against batched.

One process, one model, the same images, the prediction script's own code path
(imagenet_bench.keras_predict.predict: threaded decoding, preprocess_input, the
compiled predict function, streaming top-k). For context it also times the two
per-image calls the script does not use: model.predict(x) (what a 2019-style loop
calls) and the eager model(x, training=False).

  python bench/bench_keras_batching.py                      # 200 images of ../shared/data/imagenet-val-500
  python bench/bench_keras_batching.py --images 500 --batch-size 64
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = ROOT.parent / "shared"
VAL500 = SHARED / "data" / "imagenet-val-500"
WEIGHTS = SHARED / "weights" / "keras_mobilenetv2_alpha1.0_224.weights.h5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--val-dir", type=Path, default=VAL500)
    parser.add_argument("--images", type=int, default=200, help="images per measurement (default 200)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--per-image-calls", type=int, default=30,
                        help="images for the model.predict / eager per-image timings (slow; default 30)")
    parser.add_argument("--random-weights", action="store_true", help="weights=None even if the real file exists")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    import numpy as np

    from imagenet_bench import keras_predict, keras_registry, layout

    dataset = layout.select(layout.scan(args.val_dir), limit=args.images)
    paths = list(dataset.paths)
    entry = keras_registry.by_id()["mobilenetV2"]
    preprocess = entry.preprocess("common")
    numerics = keras_predict.configure(tf32=False, jit_compile=False)
    weights_file = None if args.random_weights or not WEIGHTS.exists() else WEIGHTS
    model, weights = keras_predict.build(entry, weights_file, weights=None)
    keras_predict.set_jit_compile(model, False)
    preprocess_input = keras_predict.preprocess_input_function(entry)

    def run(batch_size: int) -> dict:
        # warm-up: trace the predict function for this batch shape (and the last, smaller one)
        keras_predict.predict(model, paths[:batch_size], preprocess, preprocess_input, batch_size, 5)
        out = keras_predict.predict(model, paths, preprocess, preprocess_input, batch_size, 5)
        return {**out["throughput"], "top1": out["preds"][:, 0]}

    one = run(1)
    batched = run(args.batch_size)
    agree = int(np.sum(one.pop("top1") == batched.pop("top1")))

    pixels = np.stack([keras_predict.images.load_pixels(p, preprocess) for p in paths[:args.per_image_calls]])
    x = keras_predict.model_input(pixels, preprocess_input)
    model.predict(x[:1], verbose=0)
    model(x[:1], training=False)
    t0 = time.perf_counter()
    for i in range(len(x)):
        model.predict(x[i:i + 1], verbose=0)
    predict_per_image = len(x) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(len(x)):
        model(x[i:i + 1], training=False)
    eager_per_image = len(x) / (time.perf_counter() - t0)

    figures = {
        "model": "keras MobileNetV2 alpha 1.0, 224 (mobilenetV2)", "weights": weights["source"],
        "images": len(paths), "batch_size": args.batch_size, "cpus": os.cpu_count(),
        "framework": keras_predict.framework(), "numerics": numerics,
        "one_at_a_time": one, "batched": batched,
        "ratio_end_to_end": round(batched["images_per_s"] / one["images_per_s"], 2),
        "ratio_model_only": round(batched["model_images_per_s"] / one["model_images_per_s"], 2),
        "top1_agree": f"{agree}/{len(paths)}",
        "context_per_image_model_predict_images_per_s": round(predict_per_image, 2),
        "context_per_image_eager_call_images_per_s": round(eager_per_image, 2),
        "ratio_batched_vs_model_predict_per_image": round(batched["images_per_s"] / predict_per_image, 2),
        "ratio_batched_vs_eager_per_image": round(batched["images_per_s"] / eager_per_image, 2),
    }
    print(f"MobileNetV2 1.0/224, {len(paths)} images, {os.cpu_count()} CPUs, weights: {weights['source']}")
    print(f"  one at a time (predict_on_batch, batch 1): {one['images_per_s']:8.1f} images/s "
          f"(model only {one['model_images_per_s']:.1f})")
    print(f"  batched (predict_on_batch, batch {args.batch_size}):     {batched['images_per_s']:8.1f} images/s "
          f"(model only {batched['model_images_per_s']:.1f})")
    print(f"  ratio batched / one at a time: {figures['ratio_end_to_end']}x end to end, "
          f"{figures['ratio_model_only']}x model only; top-1 agrees on {figures['top1_agree']} images")
    print(f"  context, per image: model.predict(x) {predict_per_image:.1f} images/s "
          f"(batched is {figures['ratio_batched_vs_model_predict_per_image']}x), eager model(x) "
          f"{eager_per_image:.1f} images/s (batched is {figures['ratio_batched_vs_eager_per_image']}x)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
