"""The Keras prediction script's work, after argparse: choosing models, one child
process per model (``keras_worker``), GPU slots, the pixel cache and each model's
manifest. Imports neither TensorFlow nor torch: the children do the TensorFlow work.
"""
from __future__ import annotations

import argparse
import dataclasses
import queue
import sys
import threading

from . import cli, child_process, folder_lock, manifest, output_folder, pixel_cache, predfiles, runner, sources
from .errors import UsageError
from .preprocessing import Preprocess

KERAS_WEIGHTS_SUFFIXES = (".weights.h5", ".weights.json", ".h5", ".hdf5", ".keras")  # what Model.load_weights reads
CHECK_BATCHING_BATCH = 32  # --check-batching's batch size when the run itself is one at a time


def parse_gpus(gpu: int | None, gpus: str | None) -> list[str | None]:
    """The CUDA_VISIBLE_DEVICES value of each parallel slot ([None]: inherit, one slot)."""
    if gpu is not None and gpus is not None:
        raise UsageError("-g/--gpu and --gpus: use one of them")
    if gpus is not None:
        values = [g.strip() for g in gpus.split(",")]
        if not all(v.isdigit() for v in values) or len(set(values)) != len(values):
            raise UsageError(f"--gpus {gpus!r}: expected distinct GPU indices such as 0,1,2")
        return values
    return [str(gpu)] if gpu is not None else [None]


def check_gpus_exist(slots: list[str | None], flag: str) -> None:
    """Refuse GPU indices this machine lacks, before any model runs (without it, TensorFlow
    would quietly run on the CPU)."""
    wanted = [int(slot) for slot in slots if slot is not None]
    if not wanted:
        return
    from . import cuda_devices

    devices = cuda_devices.probe()
    if max(wanted) >= devices.count:
        raise UsageError(f"{flag}: {devices.describe()}; leave out -g/--gpus to run on the CPU")


def _listed_preprocess(entry, protocol: str) -> str:
    try:
        return cli.describe(entry.preprocess(protocol))
    except sources.NotReadYet as exc:  # a KerasHub preset's converter is in its folder
        return str(exc)
    except UsageError as exc:
        return f"not run: {exc}"


def list_models(source: str, protocol: str, part: tuple[int, int] | None) -> None:
    """Metadata only: no model is built, TensorFlow is not imported."""
    chosen_sources = sources.chosen("keras", source)
    entries = sources.entries(chosen_sources)
    print(f"{'id':30} {'size':>4} {'params(M)':>9} {'Acc@1':>6} {'Acc@5':>6}  preprocessing ({protocol})")
    for model_id in runner.shard(list(entries), part):
        entry = entries[model_id]
        prep = _listed_preprocess(entry, protocol)
        published = entry.published or {}
        acc1, acc5 = published.get("acc1"), published.get("acc5")
        note = f"  [{entry.note}]" if entry.note else ""
        print(f"{entry.id:30} {entry.input_size or '?':>4} {entry.params_m or float('nan'):9.1f} "
              f"{'' if acc1 is None else f'{acc1:.1f}':>6} {'' if acc5 is None else f'{acc5:.1f}':>6}  {prep}{note}")
    for model_id, reason in sources.excluded(chosen_sources):
        print(f"{model_id:30} left out: {reason}")


def run(args: argparse.Namespace, part: tuple[int, int] | None) -> int:
    """Run the chosen models over the val set, each in its own child process; the exit status."""
    from . import keras_worker

    dataset = cli.load_dataset(args)
    slots = parse_gpus(args.gpu, args.gpus)
    check_gpus_exist(slots, f"-g {args.gpu}" if args.gpu is not None else f"--gpus {args.gpus}")
    chosen_sources = sources.chosen("keras", args.source)
    entries = sources.entries(chosen_sources)
    chosen = cli.choose_models(list(entries), args, sources.seed_2019_ids(chosen_sources), part)
    weights_files = runner.parse_weights_files(args.weights_file, chosen,
                                               [m for m in chosen if entries[m].weights_in_folder])
    for model_id, path in weights_files.items():
        if not entries[model_id].weights_in_folder and not path.name.endswith(KERAS_WEIGHTS_SUFFIXES):
            raise UsageError(f"--weights-file {path}: Keras reads weights only from {', '.join(KERAS_WEIGHTS_SUFFIXES)} files")
    # A KerasHub preset's converter and size are in its folder: read it (or download it) now.
    entries = {m: entries[m].with_weights(weights_files.get(m)) for m in chosen}
    preprocesses = {m: entries[m].preprocess(args.protocol) for m in chosen}
    output_folder.check(args.output_dir, dataset, args.protocol)
    if args.cache_dir:
        pixel_cache.check_root(args.cache_dir)
    check_batch = args.batch_size if args.batch_size > 1 else CHECK_BATCHING_BATCH
    check_images = min(args.check_batching, len(dataset)) if args.check_batching else None

    def has_check(record: dict) -> bool:
        """--check-batching K: complete outputs are reused only if they record that check."""
        check = record.get("check_batching") or {}
        return check.get("images", 0) >= check_images and check.get("batch_size") == check_batch

    jobs = []
    for model_id in chosen:
        entry, weights_file = entries[model_id], weights_files.get(model_id)
        request = {
            **entry.request(),
            **cli.request_common(args, preprocesses[model_id], dataset,
                                 None if weights_file is not None and weights_file.is_dir() else weights_file),
            "batch_size": args.batch_size,
            "preprocess_input": entry.preprocess_input,
            "jit_compile": args.jit_compile,
        }
        jobs.append(runner.Job(model_id, predfiles.model_files(args.output_dir, model_id, "keras"), request,
                               has_check if check_images else None))

    paths = [str(p.resolve()) for p in dataset.paths]
    free = queue.Queue()
    for position, gpu in enumerate(slots):
        free.put((position, gpu))

    cache_lock = threading.Lock()  # --gpus: two models of one geometry must not both fill its entry

    def cached_pixels(preprocess) -> str | None:
        if not args.cache_dir or not isinstance(preprocess, Preprocess):  # KerasHub's converter: float pixels
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
                "model": job.model, "source": entry.source, "protocol": args.protocol,
                "weights_file": job.request["weights_file"] or (str(weights_files[job.model].resolve())
                                                                if job.model in weights_files else None),
                "weights_folder": entry.weights_folder,
                "preprocess": dataclasses.asdict(preprocess),
                "paths": paths, "batch_size": args.batch_size, "topk": args.topk,
                "save_all_probs": args.save_all_probs, "threads": args.workers,
                "tf32": args.tf32, "jit_compile": args.jit_compile,
                "check_batching": check_images,
                "check_batch_size": check_batch, "position": position if len(slots) > 1 else None,
                "pixel_cache": cache_path, "verbose": args.verbose,
                "class_subset": None if dataset.class_subset is None else dataset.class_subset.describe(),
            }, gpu=gpu, verbose=args.verbose)
        finally:
            free.put((position, gpu))
        record = manifest.new(job.model, "keras", dataset, args.protocol, job.request)
        record.update({
            "framework": out["framework"],
            "weights": out["weights"],
            "published": entry.published,
            "library_versions": sources.versions(sources.find(entry.source)),
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
        print(runner.accuracy_line(job.model, out["preds"], dataset.labels, out["throughput"]["images_per_s"],
                                   dataset.class_subset), file=sys.stderr)
        return runner.Result(out["preds"], out["probs"], record, out["all_probs"])

    with folder_lock.hold(args.output_dir, part), child_process.supervise():
        return runner.run_jobs(jobs, run_one, lambda: output_folder.claim(args.output_dir, dataset, args.protocol),
                               overwrite=args.overwrite, verbose_errors=args.verbose, parallel=len(slots))
