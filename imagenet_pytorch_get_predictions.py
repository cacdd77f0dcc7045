#!/usr/bin/env python
"""Top-k predictions of torchvision's pre-trained classifiers on the ImageNet val set.

Writes, per model, {model}_pytorch_imagenet_top5preds.npy / _top5probs.npy and a
manifest (how they were made) into one output folder per dataset and protocol;
rank them with imagenet_benchmarking.py.

Examples:
  python imagenet_pytorch_get_predictions.py /data/imagenet/val            # every model
  python imagenet_pytorch_get_predictions.py VAL -m 'resnet*' --exclude '*.IMAGENET1K_V2'
  python imagenet_pytorch_get_predictions.py VAL -m mobilenet_v2 --weights-file mnv2.pth
  python imagenet_pytorch_get_predictions.py --list-models
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imagenet_bench import layout, manifest, output_folder, predfiles, runner
from imagenet_bench.errors import EXIT_OK, UsageError, run_main

HERE = Path(__file__).resolve().parent


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
                       help="model ids or glob patterns (resnet*), or all (default)")
    group.add_argument("--exclude", nargs="+", default=[], metavar="ID", help="ids or patterns to leave out")
    group.add_argument("--list-models", action="store_true",
                       help="list ids, parameters, GFLOPs, published accuracy and preprocessing; run nothing")
    group.add_argument("--weights-file", action="append", default=[], metavar="PATH|ID=PATH",
                       help="local state dict instead of downloading: PATH with one model, or ID=PATH (repeatable)")
    group.add_argument("--model-spec", metavar="MODULE:FUNCTION",
                       help="benchmark any classifier: FUNCTION() returns (model, imagenet_bench.preprocessing."
                            "Preprocess); needs --name")
    group.add_argument("--name", metavar="ID", help="model id for --model-spec")
    group.add_argument("--model-shard", metavar="I/N",
                       help="run only part I of N of the model list (default from Slurm array variables)")

    group = parser.add_argument_group("preprocessing")
    group.add_argument("--protocol", choices=("reference", "seed2019", "common"), default="reference",
                       help="reference: each weight set's transforms(); seed2019: the 2019 script (its 21 models); "
                            "common: shorter side to round(size/0.875), PIL bilinear, centre crop")

    group = parser.add_argument_group("running")
    group.add_argument("-o", "--output-dir", type=Path, default=HERE / "pytorch_imagenet",
                       help="output folder (default: pytorch_imagenet/ beside this script)")
    group.add_argument("-b", "--batch-size", type=int, default=64)
    group.add_argument("-j", "--workers", type=int, default=2, help="DataLoader worker processes")
    group.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    group.add_argument("-g", "--gpu", type=int, help="GPU index (2019 flag; same as --device cuda:N)")
    group.add_argument("--amp", choices=("bf16", "fp16"), help="autocast to this dtype (default: float32)")
    group.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    group.add_argument("--tf32", action="store_true", help="allow TF32 on Ampere+ GPUs (default: off)")
    group.add_argument("-k", "--topk", type=int, default=5, help="classes kept per image (default 5)")
    group.add_argument("--save-all-probs", action="store_true",
                       help="also write the N x 1000 probabilities ({model}_pytorch_imagenet_allprobs.npy)")
    group.add_argument("--save-labels", action="store_true",
                       help="2019 flag, kept for compatibility: labels are always written (dataset_labels.npy)")
    group.add_argument("--overwrite", action="store_true", help="redo models whose outputs are complete")
    group.add_argument("--verbose", action="store_true", help="tracebacks for failed models")
    args = parser.parse_args(argv)
    if args.model_spec and not args.name:
        parser.error("--model-spec needs --name ID")
    if args.topk < 5:
        parser.error("-k/--topk must be at least 5 (Acc@5 needs it)")
    return args


def parse_weights_files(values: list[str], models: list[str]) -> dict[str, Path]:
    """PATH (with exactly one model) or ID=PATH pairs -> {id: path}."""
    files: dict[str, Path] = {}
    for value in values:
        model, sep, path = value.partition("=")
        if not sep:
            if len(models) != 1 or len(values) != 1:
                raise UsageError(f"--weights-file {value}: a bare PATH needs exactly one model; use ID=PATH")
            model, path = models[0], value
        if model not in models:
            raise UsageError(f"--weights-file {value}: {model} is not among the selected models")
        if not Path(path).is_file():
            raise UsageError(f"--weights-file {value}: {path} does not exist")
        files[model] = Path(path)
    return files


def list_models(protocol: str, part: tuple[int, int] | None) -> None:
    from imagenet_bench import torch_registry

    entries = torch_registry.by_id()
    print(f"{'id':44} {'params(M)':>9} {'GFLOPs':>7} {'Acc@1':>6} {'Acc@5':>6}  preprocessing ({protocol})")
    for model_id in runner.shard(list(entries), part):
        entry = entries[model_id]
        try:
            p = entry.preprocess(protocol)
            prep = f"{p.resize_mode} {p.resize_size} {p.interpolation} / crop {p.crop_size}, mean/std"
        except UsageError as exc:
            prep = f"not run: {exc}"
        gflops = entry.meta.get("_ops")
        print(f"{entry.id:44} {entry.meta['num_params'] / 1e6:9.1f} {gflops if gflops is not None else '':>7} "
              f"{entry.published['acc1']:6.2f} {entry.published['acc5']:6.2f}  "
              f"{prep}{'  [quantized, CPU, ' + entry.backend + ']' if entry.quantized else ''}")
    for model_id, reason in torch_registry.excluded():
        print(f"{model_id:44} left out: {reason}")


def main() -> int:
    args = parse_args()
    part = runner.parse_shard(args.model_shard)
    if args.list_models:
        list_models(args.protocol, part)
        return EXIT_OK
    if args.val_dir is None:
        raise UsageError("VAL_DIR is required (the val folder), unless --list-models")

    from imagenet_bench import torch_predict, torch_registry

    dataset = layout.select(layout.scan(args.val_dir, args.val_ground_truth), args.limit, args.per_class)
    numerics = torch_predict.Numerics(torch_predict.resolve_device(args.device, args.gpu), args.amp,
                                      args.channels_last, args.tf32)

    if args.model_spec:
        spec_model, spec_preprocess = torch_predict.load_model_spec(args.model_spec)()
        chosen, entries = [args.name], {}
    else:
        entries = torch_registry.by_id()
        chosen = runner.select_models(list(entries), args.model, args.exclude)
        if args.protocol == "seed2019":
            refused = [m for m in chosen if m not in torch_registry.SEED_2019_IDS]
            if refused and args.model != ["all"]:
                raise UsageError(f"--protocol seed2019 covers only the 21 models of 2019, not {', '.join(refused[:5])}")
            chosen = [m for m in chosen if m in torch_registry.SEED_2019_IDS]
        chosen = runner.shard(chosen, part)
    if not chosen:
        raise UsageError("no models selected (check -m/--exclude/--model-shard)")
    weights_files = parse_weights_files(args.weights_file, chosen)
    preprocesses = {m: spec_preprocess if args.model_spec else entries[m].preprocess(args.protocol) for m in chosen}
    output_folder.check(args.output_dir, dataset, args.protocol)

    jobs = []
    for model_id in chosen:
        weights_file = weights_files.get(model_id)
        request = {
            "source": "model-spec" if args.model_spec else "torchvision",
            "model_spec": args.model_spec,
            "weights": None if args.model_spec else entries[model_id].weights_name,
            "weights_file": str(weights_file.resolve()) if weights_file else None,
            "preprocess": preprocesses[model_id].to_dict(),
            "dataset": dataset.fingerprint,
            "topk": args.topk,
            "amp": args.amp, "channels_last": args.channels_last, "tf32": args.tf32,
        }
        jobs.append(runner.Job(model_id, predfiles.model_files(args.output_dir, model_id, "pytorch"), request))

    def run_one(job: runner.Job) -> runner.Result:
        import torch
        import torchvision

        entry = entries.get(job.model)
        preprocess = preprocesses[job.model]
        if entry is None:
            model, weights_record = spec_model, {"id": args.name, "source": f"--model-spec {args.model_spec}"}
        else:
            model, weights_record = torch_predict.build_torchvision(entry, weights_files.get(job.model))
        job_numerics = numerics
        if entry is not None and entry.quantized and numerics.device != "cpu":
            job_numerics = torch_predict.Numerics("cpu")  # quantized kernels run on the CPU only
        record = manifest.new(job.model, "pytorch", dataset, args.protocol, job.request)
        record["numerics"] = job_numerics.apply()
        out = torch_predict.predict(model, dataset, preprocess, job_numerics, args.batch_size, args.workers,
                                    args.topk, args.save_all_probs, desc=job.model)
        record.update({
            "framework": {"name": "torchvision" if entry else "pytorch", "torch": torch.__version__,
                          "torchvision": torchvision.__version__},
            "weights": weights_record,
            "published": entry.published if entry else None,
            "preprocessing": preprocess.to_dict(),
            "device": {"name": job_numerics.device, "model": job_numerics.device_name()},
            "batch_size": args.batch_size, "workers": args.workers,
            "throughput": out["throughput"],
            "quantized": bool(entry and entry.quantized),
        })
        print(runner.accuracy_line(job.model, out["preds"], dataset.labels, out["throughput"]["images_per_s"]),
              file=sys.stderr)
        return runner.Result(out["preds"], out["probs"], record, out["all_probs"])

    return runner.run_jobs(jobs, run_one, lambda: output_folder.claim(args.output_dir, dataset, args.protocol),
                           overwrite=args.overwrite, verbose_errors=args.verbose)


if __name__ == "__main__":
    run_main(main)
