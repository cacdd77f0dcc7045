#!/usr/bin/env python
"""Top-k predictions of Keras's pre-trained classifiers (keras.applications) on the ImageNet val set.

Writes, per model, {model}_keras_imagenet_top5preds.npy / _top5probs.npy and a manifest
(how they were made) into one output folder per dataset and protocol; rank them with
imagenet_benchmarking.py. Each model runs in its own child process; by default one
image at a time, as in 2019 (-b N: batches of N).

Examples:
  python imagenet_keras_get_predictions.py /data/imagenet/val               # every model
  python imagenet_keras_get_predictions.py VAL -m 'efficientnetb*' -b 32
  python imagenet_keras_get_predictions.py VAL -m mobilenetV2 --weights-file mobilenet_v2.h5
  python imagenet_keras_get_predictions.py VAL --protocol seed2019 -o keras_seed2019/
  python imagenet_keras_get_predictions.py --list-models
"""
from __future__ import annotations

import argparse
import dataclasses
import queue
import sys
import threading
from pathlib import Path

from imagenet_bench import keras_registry, layout, manifest, output_folder, pixel_cache, predfiles, runner
from imagenet_bench.errors import EXIT_OK, UsageError, run_main

HERE = Path(__file__).resolve().parent
CHECK_BATCHING_BATCH = 32  # --check-batching's batch size when the run itself is one at a time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Exit status: 0 ok, 1 some model failed (others done), 2 bad input.")
    parser.add_argument("val_dir", nargs="?", type=Path,
                        help="val set: ImageFolder (class folders named by WordNet id) or flat with --val-ground-truth")

    group = parser.add_argument_group("data")
    group.add_argument("--val-ground-truth", type=Path, metavar="FILE",
                       help="labels of a flat val folder: val_full.txt, LOC_val_solution.csv, or the devkit's "
                            "ILSVRC2012_validation_ground_truth.txt (with meta.mat beside it)")
    group.add_argument("--limit", type=int, metavar="N", help="only the first N images (canonical order)")
    group.add_argument("--per-class", type=int, metavar="K", help="only the first K images of each class")

    group = parser.add_argument_group("models")
    group.add_argument("-m", "--model", nargs="+", default=["all"], metavar="ID",
                       help="model ids or glob patterns ('efficientnet*', 'mobilenet_0.25_*'), or all (default)")
    group.add_argument("--exclude", nargs="+", default=[], metavar="ID", help="ids or patterns to leave out")
    group.add_argument("--list-models", action="store_true",
                       help="list ids, input size, parameters, published accuracy and preprocessing; build nothing")
    group.add_argument("--weights-file", action="append", default=[], metavar="PATH|ID=PATH",
                       help="local ImageNet weights (.h5 / .weights.h5) instead of Keras's download, for offline "
                            "machines: PATH with one model, or ID=PATH (repeatable)")
    group.add_argument("--model-shard", metavar="I/N",
                       help="run only part I of N of the model list (default from Slurm array variables)")

    group = parser.add_argument_group("preprocessing")
    group.add_argument("--protocol", choices=keras_registry.PROTOCOLS, default="reference",
                       help="reference: each model's native size, preprocess_input and the resize/crop behind "
                            "Keras's published numbers; seed2019: the 2019 script (load_img squash, nearest; its 13 "
                            "models); common: shorter side to round(size/0.875), PIL bilinear, centre crop")

    group = parser.add_argument_group("running")
    group.add_argument("-o", "--output-dir", type=Path, default=HERE / "keras_imagenet",
                       help="output folder (default: keras_imagenet/ beside this script)")
    group.add_argument("-b", "--batch-size", type=int, default=1,
                       help="images per model call (default 1: one image at a time, as in 2019)")
    group.add_argument("--check-batching", type=int, metavar="K",
                       help="also run the first K images both one at a time and batched (-b, or 32), and record "
                            "top-1 agreement and the largest probability difference in the manifest")
    group.add_argument("-j", "--workers", type=int, default=2, help="image decoding threads (default 2)")
    group.add_argument("-g", "--gpu", type=int, help="GPU index (2019 flag): CUDA_VISIBLE_DEVICES for the model process")
    group.add_argument("--gpus", metavar="I,J,...",
                       help="run models in parallel, one process per GPU (e.g. 0,1,2,3)")
    group.add_argument("--tf32", action="store_true", help="allow TF32 on Ampere+ GPUs (default: off)")
    group.add_argument("--jit-compile", action="store_true",
                       help="XLA-compile the predict function (default: off, set explicitly)")
    group.add_argument("-k", "--topk", type=int, default=5, help="classes kept per image (default 5)")
    group.add_argument("--save-all-probs", action="store_true",
                       help="also write the N x 1000 probabilities ({model}_keras_imagenet_allprobs.npy)")
    group.add_argument("--overwrite", action="store_true", help="redo models whose outputs are complete")
    group.add_argument("--cache-dir", type=Path, metavar="DIR",
                       help="keep decoded, resized, cropped pixels here (keyed by dataset and preprocessing): "
                            "each model's process reads them instead of decoding again; shared with the PyTorch script")
    group.add_argument("--verbose", action="store_true", help="tracebacks for failed models")
    args = parser.parse_args(argv)
    if args.topk < 5:
        parser.error("-k/--topk must be at least 5 (Acc@5 needs it)")
    if args.batch_size < 1:
        parser.error("-b/--batch-size must be at least 1")
    if args.check_batching is not None and args.check_batching < 1:
        parser.error("--check-batching must be at least 1")
    return args


def parse_gpus(gpu: int | None, gpus: str | None) -> list[str | None]:
    """The CUDA_VISIBLE_DEVICES value of each parallel slot ([None]: inherit, one slot)."""
    if gpu is not None and gpus:
        raise UsageError("-g/--gpu and --gpus: use one of them")
    if gpus:
        values = [g.strip() for g in gpus.split(",")]
        if not all(v.isdigit() for v in values) or len(set(values)) != len(values):
            raise UsageError(f"--gpus {gpus!r}: expected distinct GPU indices such as 0,1,2")
        return values
    return [str(gpu)] if gpu is not None else [None]


def list_models(protocol: str, part: tuple[int, int] | None) -> None:
    entries = keras_registry.by_id()
    print(f"{'id':30} {'size':>4} {'params(M)':>9} {'Acc@1':>6} {'Acc@5':>6}  preprocessing ({protocol})")
    for model_id in runner.shard(list(entries), part):
        entry = entries[model_id]
        try:
            p = entry.preprocess(protocol)
            if p.resize_mode == "crop_fraction":
                prep = f"centre {p.crop_size}/{p.crop_size + 32} of shorter side, {p.interpolation} to {p.crop_size}"
            else:
                prep = f"{p.resize_mode} {p.resize_size} {p.interpolation} / crop {p.crop_size}"
            prep += f", {p.normalization}"
        except UsageError as exc:
            prep = f"not run: {exc}"
        published = entry.published or {}
        acc1, acc5 = published.get("acc1"), published.get("acc5")
        note = "  [published at 299; run at 224]" if entry.family == "resnet_v2" else ""
        print(f"{entry.id:30} {entry.input_size:4d} {entry.params_m or float('nan'):9.1f} "
              f"{'' if acc1 is None else f'{acc1:.1f}':>6} {'' if acc5 is None else f'{acc5:.1f}':>6}  {prep}{note}")
    for model_id, reason in keras_registry.excluded():
        print(f"{model_id:30} left out: {reason}")


def main() -> int:
    args = parse_args()
    part = runner.parse_shard(args.model_shard)
    if args.list_models:
        list_models(args.protocol, part)
        return EXIT_OK
    if args.val_dir is None:
        raise UsageError("VAL_DIR is required (the val folder), unless --list-models")

    from imagenet_bench import keras_worker

    dataset = layout.select(layout.scan(args.val_dir, args.val_ground_truth), args.limit, args.per_class)
    slots = parse_gpus(args.gpu, args.gpus)
    entries = keras_registry.by_id()
    chosen = runner.select_models(list(entries), args.model, args.exclude)
    if args.protocol == "seed2019":
        refused = [m for m in chosen if m not in keras_registry.SEED_2019_IDS]
        if refused and args.model != ["all"]:
            raise UsageError(f"--protocol seed2019 covers only the 13 Keras models of 2019, not {', '.join(refused[:5])}")
        chosen = [m for m in chosen if m in keras_registry.SEED_2019_IDS]
    chosen = runner.shard(chosen, part)
    if not chosen:
        raise UsageError("no models selected (check -m/--exclude/--model-shard)")
    weights_files = runner.parse_weights_files(args.weights_file, chosen)
    preprocesses = {m: entries[m].preprocess(args.protocol) for m in chosen}
    output_folder.check(args.output_dir, dataset, args.protocol)
    check_batch = args.batch_size if args.batch_size > 1 else CHECK_BATCHING_BATCH

    jobs = []
    for model_id in chosen:
        entry, weights_file = entries[model_id], weights_files.get(model_id)
        request = {
            "source": "keras.applications",
            "application": entry.application, "kwargs": entry.kwargs, "input_size": entry.input_size,
            "weights": "imagenet",
            "weights_file": str(weights_file.resolve()) if weights_file else None,
            "preprocess": preprocesses[model_id].to_dict(),
            "preprocess_input": entry.preprocess_input,
            "dataset": dataset.fingerprint,
            "topk": args.topk,
            "tf32": args.tf32, "jit_compile": args.jit_compile,
        }
        jobs.append(runner.Job(model_id, predfiles.model_files(args.output_dir, model_id, "keras"), request))

    paths = [str(p.resolve()) for p in dataset.paths]
    free = queue.Queue()
    for position, gpu in enumerate(slots):
        free.put((position, gpu))

    cache_lock = threading.Lock()  # --gpus: two models of one geometry must not both fill its entry

    def cached_pixels(preprocess) -> str | None:
        if not args.cache_dir:
            return None
        with cache_lock:
            cache = pixel_cache.PixelCache(args.cache_dir, dataset, preprocess).ensure(dataset, preprocess,
                                                                                       max(1, args.workers))
        return str(cache.pixels_path)

    def run_one(job: runner.Job) -> runner.Result:
        entry, preprocess = entries[job.model], preprocesses[job.model]
        cache_path = cached_pixels(preprocess)
        if entry.note and args.protocol == "reference":
            print(f"note: {job.model}: {entry.note}", file=sys.stderr)
        position, gpu = free.get()
        try:
            out = keras_worker.launch({
                "model": job.model, "weights_file": job.request["weights_file"],
                "preprocess": dataclasses.asdict(preprocess),
                "paths": paths, "batch_size": args.batch_size, "topk": args.topk,
                "save_all_probs": args.save_all_probs, "threads": args.workers,
                "tf32": args.tf32, "jit_compile": args.jit_compile,
                "check_batching": min(args.check_batching, len(paths)) if args.check_batching else None,
                "check_batch_size": check_batch, "position": position if len(slots) > 1 else None,
                "pixel_cache": cache_path,
            }, gpu=gpu, verbose=args.verbose)
        finally:
            free.put((position, gpu))
        record = manifest.new(job.model, "keras", dataset, args.protocol, job.request)
        record.update({
            "framework": out["framework"],
            "weights": out["weights"],
            "published": entry.published,
            "preprocessing": {**preprocess.to_dict(), "preprocess_input": entry.preprocess_input,
                              "source": entry.protocol_source(args.protocol)},
            "numerics": out["numerics"],
            "device": out["device"],
            "batch_size": args.batch_size, "workers": args.workers,
            "isolation": "one child process per model",
            "pixel_cache": cache_path,
            "throughput": out["throughput"],
        })
        if "check_batching" in out:
            record["check_batching"] = out["check_batching"]
            cb = out["check_batching"]
            print(f"{job.model}: --check-batching: top-1 agrees on {cb['top1_agree']} of {cb['images']} images "
                  f"(batches of {cb['batch_size']}), largest probability difference {cb['max_abs_prob_diff']:.2e}",
                  file=sys.stderr)
        print(runner.accuracy_line(job.model, out["preds"], dataset.labels, out["throughput"]["images_per_s"]),
              file=sys.stderr)
        return runner.Result(out["preds"], out["probs"], record, out["all_probs"])

    return runner.run_jobs(jobs, run_one, lambda: output_folder.claim(args.output_dir, dataset, args.protocol),
                           overwrite=args.overwrite, verbose_errors=args.verbose, parallel=len(slots))


if __name__ == "__main__":
    run_main(main)
