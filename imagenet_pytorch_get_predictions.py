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
    group.add_argument("--source", choices=("torchvision", "timm", "all"), default="torchvision",
                       help="torchvision's weights (default), timm's pre-trained ImageNet-1k models (ids timm.NAME), "
                            "or both")

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

    group = parser.add_argument_group("decode once, run many")
    group.add_argument("--group-size", type=int, default=8, metavar="N",
                       help="models with identical preprocessing share one pass over the data, at most N at a time "
                            "(default 8; 1: one model at a time)")
    group.add_argument("--group-memory", type=float, default=8.0, metavar="GIB",
                       help="and at most this many GiB of float32 parameters per pass (default 8)")
    group.add_argument("--cache-dir", type=Path, metavar="DIR",
                       help="keep decoded, resized, cropped pixels here (keyed by dataset and preprocessing) and "
                            "reuse them across runs, processes and both scripts")
    group.add_argument("--verbose", action="store_true", help="tracebacks for failed models")
    args = parser.parse_args(argv)
    if args.model_spec and not args.name:
        parser.error("--model-spec needs --name ID")
    if args.topk < 5:
        parser.error("-k/--topk must be at least 5 (Acc@5 needs it)")
    if args.group_size < 1:
        parser.error("--group-size must be at least 1")
    return args


def registries(source: str) -> dict[str, object]:
    """id -> entry for the chosen source(s); torchvision first."""
    entries: dict[str, object] = {}
    if source in ("torchvision", "all"):
        from imagenet_bench import torch_registry

        entries.update(torch_registry.by_id())
    if source in ("timm", "all"):
        from imagenet_bench import timm_registry

        entries.update(timm_registry.by_id())
    return entries


def excluded(source: str) -> list[tuple[str, str]]:
    found = []
    if source in ("torchvision", "all"):
        from imagenet_bench import torch_registry

        found += torch_registry.excluded()
    if source in ("timm", "all"):
        from imagenet_bench import timm_registry

        found += timm_registry.excluded()
    return found


def list_models(source: str, protocol: str, part: tuple[int, int] | None) -> None:
    """Metadata only: nothing is built or downloaded."""
    entries = registries(source)
    print(f"{'id':44} {'params(M)':>9} {'GFLOPs':>7} {'Acc@1':>6} {'Acc@5':>6}  preprocessing ({protocol})")
    for model_id in runner.shard(list(entries), part):
        entry = entries[model_id]
        try:
            p = entry.preprocess(protocol)
            prep = f"{p.resize_mode} {p.resize_size} {p.interpolation} / crop {p.crop_size}, mean/std"
        except UsageError as exc:
            prep = f"not run: {exc}"
        params, gflops, published = entry.meta.get("num_params"), entry.meta.get("_ops"), entry.published or {}
        print(f"{entry.id:44} {'' if params is None else f'{params / 1e6:.1f}':>9} "
              f"{'' if gflops is None else gflops:>7} {published.get('acc1', ''):>6} {published.get('acc5', ''):>6}  "
              f"{prep}{'  [quantized, CPU, ' + entry.backend + ']' if entry.quantized else ''}")
    for model_id, reason in excluded(source):
        print(f"{model_id:44} left out: {reason}")


def main() -> int:
    args = parse_args()
    part = runner.parse_shard(args.model_shard)
    if args.list_models:
        list_models(args.source, args.protocol, part)
        return EXIT_OK
    if args.val_dir is None:
        raise UsageError("VAL_DIR is required (the val folder), unless --list-models")

    from imagenet_bench import pixel_cache, torch_distributed, torch_predict

    dataset = layout.select(layout.scan(args.val_dir, args.val_ground_truth), args.limit, args.per_class)
    device = torch_predict.resolve_device(args.device, args.gpu)
    dist = torch_distributed.init(device)
    device = torch_distributed.rank_device(dist, device)
    numerics = torch_predict.Numerics(device, args.amp, args.channels_last, args.tf32)
    is_main = dist is None or dist.is_main

    if args.model_spec:
        spec_model, spec_preprocess = torch_predict.load_model_spec(args.model_spec)()
        chosen, entries = [args.name], {}
    else:
        entries = registries(args.source)
        chosen = runner.select_models(list(entries), args.model, args.exclude)
        if args.protocol == "seed2019":
            from imagenet_bench.torch_registry import SEED_2019_IDS

            refused = [m for m in chosen if m not in SEED_2019_IDS]
            if refused and args.model != ["all"]:
                raise UsageError(f"--protocol seed2019 covers only the 21 models of 2019, not {', '.join(refused[:5])}")
            chosen = [m for m in chosen if m in SEED_2019_IDS]
        chosen = runner.shard(chosen, part)
    if not chosen:
        raise UsageError("no models selected (check -m/--exclude/--model-shard)")
    weights_files = runner.parse_weights_files(args.weights_file, chosen)
    preprocesses = {m: spec_preprocess if args.model_spec else entries[m].preprocess(args.protocol) for m in chosen}
    output_folder.check(args.output_dir, dataset, args.protocol)

    def job_numerics(model_id: str) -> "torch_predict.Numerics":
        entry = entries.get(model_id)
        if entry is not None and entry.quantized and numerics.device != "cpu":
            return torch_predict.Numerics("cpu")  # quantized kernels run on the CPU only
        return numerics

    jobs = []
    for model_id in chosen:
        weights_file = weights_files.get(model_id)
        entry = entries.get(model_id)
        request = {
            "source": "model-spec" if args.model_spec else entry.framework,
            "model_spec": args.model_spec,
            "weights": None if args.model_spec else entry.weights_name,
            "weights_file": str(weights_file.resolve()) if weights_file else None,
            "preprocess": preprocesses[model_id].to_dict(),
            "dataset": dataset.fingerprint,
            "topk": args.topk,
            "amp": args.amp, "channels_last": args.channels_last, "tf32": args.tf32,
        }
        jobs.append(runner.Job(model_id, predfiles.model_files(args.output_dir, model_id, "pytorch"), request))

    pending, skipped = torch_distributed.broadcast(runner.pending(jobs, args.overwrite) if is_main else None, dist)

    def pass_key(job: runner.Job) -> tuple:
        return preprocesses[job.model].geometry, job_numerics(job.model).device

    def param_bytes(job: runner.Job) -> int:
        entry = entries.get(job.model)
        return 4 * (entry.num_params() if entry is not None else sum(p.numel() for p in spec_model.parameters()))

    groups = runner.group(pending, pass_key, args.group_size, param_bytes, int(args.group_memory * 2**30))

    def run_group(group: list[runner.Job]) -> dict[str, runner.Result | Exception]:
        import torch
        import torchvision

        outcome: dict[str, runner.Result | Exception] = {}
        members, weights_records = [], {}
        for job in group:
            try:
                if args.model_spec:
                    model, weights_records[job.model] = spec_model, {"id": args.name,
                                                                     "source": f"--model-spec {args.model_spec}"}
                else:
                    entry = entries[job.model]
                    if entry.quantized:
                        torch.backends.quantized.engine = entry.backend
                    model, weights_records[job.model] = entry.build(weights_files.get(job.model))
                members.append(torch_predict.Member(job.model, model, preprocesses[job.model]))
            except Exception as exc:  # this model fails; the rest of the group runs
                outcome[job.model] = exc
        if not members:
            return outcome
        pass_numerics = job_numerics(members[0].name)
        settings = pass_numerics.apply()
        geometry = members[0].preprocess
        cache = None
        if args.cache_dir:
            cache = pixel_cache.PixelCache(args.cache_dir, dataset, geometry)
            if is_main:
                cache.ensure(dataset, geometry, max(1, args.workers))
            torch_distributed.barrier(dist)
        rows, offset = dataset, 0
        if dist is not None:
            offset, stop = torch_distributed.block(len(dataset), dist)
            rows = torch_distributed.rows(dataset, offset, stop)
        try:
            results = torch_predict.predict_group(members, rows, pass_numerics, args.batch_size, args.workers,
                                                  args.topk, args.save_all_probs, cache, offset)
        except Exception as exc:  # e.g. a corrupt image: every model of the pass stops
            results = {m.name: exc for m in members}
        if dist is not None:
            parts = torch_distributed.gather(results, dist)
            if not is_main:
                return {}
            results = {m.name: torch_distributed.merge([part[m.name] for part in parts], len(dataset))
                       for m in members}
        for member in members:
            out = results[member.name]
            if isinstance(out, Exception):
                outcome[member.name] = out
                continue
            entry = entries.get(member.name)
            job = next(j for j in group if j.model == member.name)
            record = manifest.new(job.model, "pytorch", dataset, args.protocol, job.request)
            framework = {"name": entry.framework if entry else "pytorch", "torch": torch.__version__,
                         "torchvision": torchvision.__version__}
            if entry is not None and entry.framework == "timm":
                import timm

                framework["timm"] = timm.__version__
            record.update({
                "framework": framework,
                "weights": weights_records[job.model],
                "published": entry.published if entry else None,
                "preprocessing": member.preprocess.to_dict(),
                "device": {"name": pass_numerics.device, "model": pass_numerics.device_name()},
                "numerics": settings,
                "batch_size": args.batch_size, "workers": args.workers,
                "throughput": out["throughput"],
                "pass": out["pass"],
                "distributed": None if dist is None else {"world_size": dist.world, "backend": dist.backend},
                "quantized": bool(entry and entry.quantized),
            })
            print(runner.accuracy_line(job.model, out["preds"], dataset.labels, out["throughput"]["images_per_s"]),
                  file=sys.stderr)
            outcome[member.name] = runner.Result(out["preds"], out["probs"], record, out["all_probs"])
        return outcome

    if not is_main:
        for group in groups:
            run_group(group)
        return EXIT_OK
    return runner.run_groups(groups, run_group, lambda: output_folder.claim(args.output_dir, dataset, args.protocol),
                             skipped, verbose_errors=args.verbose)


if __name__ == "__main__":
    run_main(main)
