"""The PyTorch prediction script's work, after argparse: choosing models from the
torchvision and timm registries (or one --model-spec), grouping them into passes
that share one decode, the pixel cache, torchrun, and each model's manifest.
"""
from __future__ import annotations

import argparse
import contextlib
import sys

from . import cli, folder_lock, manifest, output_folder, predfiles, runner, sources
from .errors import EXIT_OK, UsageError


def registries(source: str) -> dict[str, object]:
    """id -> entry for the chosen source(s), in the table's order (torchvision first)."""
    return sources.entries(sources.chosen("pytorch", source))


def excluded(source: str) -> list[tuple[str, str]]:
    return sources.excluded(sources.chosen("pytorch", source))


def list_models(source: str, protocol: str, part: tuple[int, int] | None) -> None:
    """Metadata only: nothing is built or downloaded."""
    entries = registries(source)
    print(f"{'id':44} {'params(M)':>9} {'GFLOPs':>7} {'Acc@1':>6} {'Acc@5':>6}  preprocessing ({protocol})")
    for model_id in runner.shard(list(entries), part):
        entry = entries[model_id]
        try:
            p = entry.preprocess(protocol)
            prep = cli.describe(p)
        except UsageError as exc:
            prep = f"not run: {exc}"
        params, gflops, published = entry.meta.get("num_params"), entry.meta.get("_ops"), entry.published or {}
        print(f"{entry.id:44} {'' if params is None else f'{params / 1e6:.1f}':>9} "
              f"{'' if gflops is None else gflops:>7} {published.get('acc1', ''):>6} {published.get('acc5', ''):>6}  "
              f"{prep}{'  [quantized, CPU, ' + entry.backend + ']' if entry.quantized else ''}")
    for model_id, reason in excluded(source):
        print(f"{model_id:44} left out: {reason}")


def run(args: argparse.Namespace, part: tuple[int, int] | None) -> int:
    """Run the chosen models over the val set in grouped passes (one decode per pass),
    across torchrun processes when there are several; the exit status."""
    from . import pixel_cache, torch_distributed, torch_predict

    dataset = cli.load_dataset(args)
    device = torch_predict.resolve_device(args.device, args.gpu)
    dist = torch_distributed.init(device)
    if dist is not None and len(dataset) < dist.world:
        raise UsageError(f"{len(dataset)} images for {dist.world} torchrun processes: use fewer processes")
    device = torch_distributed.rank_device(dist, device)
    numerics = torch_predict.Numerics(device, args.amp, args.channels_last, args.tf32)
    is_main = dist is None or dist.is_main

    if args.model_spec:
        spec_model, spec_preprocess = torch_predict.model_from_spec(args.model_spec)
        chosen, entries = [args.name], {}
    else:
        from .torch_registry import SEED_2019_IDS

        entries = registries(args.source)
        chosen = cli.choose_models(list(entries), args, SEED_2019_IDS, part)
    weights_files = runner.parse_weights_files(args.weights_file, chosen)
    preprocesses = {m: spec_preprocess if args.model_spec else entries[m].preprocess(args.protocol) for m in chosen}
    output_folder.check(args.output_dir, dataset, args.protocol)
    if args.cache_dir:
        pixel_cache.check_root(args.cache_dir)
    lock = contextlib.ExitStack()  # rank 0's lock on the output folder, held to the end (folder_lock)

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
            **cli.request_common(args, preprocesses[model_id], dataset, weights_file),
            "device": job_numerics(model_id).device,
            "amp": args.amp, "channels_last": args.channels_last,
        }
        jobs.append(runner.Job(model_id, predfiles.model_files(args.output_dir, model_id, "pytorch"), request,
                               cost=None if entry is None else entry.meta.get("_ops")))

    def plan() -> tuple[list[runner.Job], list[str]] | UsageError:
        try:
            lock.enter_context(folder_lock.hold(args.output_dir, part))
            return runner.pending(jobs, args.overwrite)
        except UsageError as exc:  # every rank must hear of it, or the others wait forever
            return exc

    planned = torch_distributed.broadcast(plan() if is_main else None, dist)
    if isinstance(planned, UsageError):
        lock.close()
        torch_distributed.finish(dist)
        raise planned
    pending, skipped = planned

    def pass_key(job: runner.Job) -> tuple:
        return preprocesses[job.model].geometry, job_numerics(job.model).device

    def param_bytes(job: runner.Job) -> int:
        entry = entries.get(job.model)
        return 4 * (entry.num_params() if entry is not None else sum(p.numel() for p in spec_model.parameters()))

    groups = runner.group(pending, pass_key, args.group_size, param_bytes, int(args.group_memory * 2**30))

    def build(group: list[runner.Job]) -> tuple[list, dict, dict[str, Exception]]:
        """The group's models; one that fails to build fails alone."""
        members, records, failures = [], {}, {}
        for job in group:
            try:
                if args.model_spec:
                    model, records[job.model] = spec_model, {"id": args.name, "source": f"--model-spec {args.model_spec}"}
                else:
                    model, records[job.model] = entries[job.model].build(weights_files.get(job.model))
                members.append(torch_predict.Member(job.model, model, preprocesses[job.model]))
            except Exception as exc:  # this model fails; the rest of the group runs
                failures[job.model] = exc
        return members, records, failures

    def run_group(group: list[runner.Job]) -> dict[str, runner.Result | Exception]:
        """One pass over the data for the group. Under torchrun every rank reaches the same
        collectives (broadcast, gather) whatever fails locally, so none waits forever."""
        import torch
        import torchvision

        members, weights_records, results = torch_distributed.local_leaders_first(dist, lambda: build(group))
        pass_numerics = job_numerics(group[0].model)
        settings = pass_numerics.apply()
        geometry = preprocesses[group[0].model]
        cache, cache_error = None, None
        if args.cache_dir:
            cache = pixel_cache.PixelCache(args.cache_dir, dataset, geometry)
            if is_main:
                try:
                    cache.ensure(dataset, geometry, max(1, args.workers))
                except Exception as exc:  # e.g. a corrupt image: every model of the pass stops
                    cache_error = torch_distributed.portable(exc)
            cache_error = torch_distributed.broadcast(cache_error, dist)
        rows, offset = dataset, 0
        if dist is not None:
            offset, stop = torch_distributed.block(len(dataset), dist)
            rows = torch_distributed.rows(dataset, offset, stop)
        if cache_error is not None:
            results.update({m.name: cache_error for m in members})
        elif members:
            try:
                results.update(torch_predict.predict_group(members, rows, pass_numerics, args.batch_size, args.workers,
                                                           args.topk, args.save_all_probs, cache, offset))
            except Exception as exc:  # e.g. a corrupt image: every model of the pass stops
                results.update({m.name: exc for m in members})
        if dist is not None:
            parts = torch_distributed.gather({name: torch_distributed.portable(r) if isinstance(r, Exception) else r
                                              for name, r in results.items()}, dist)
            if not is_main:
                return {}
            results = {job.model: torch_distributed.merge([part[job.model] for part in parts], len(dataset))
                       for job in group}
        outcome: dict[str, runner.Result | Exception] = {}
        for job in group:
            out = results[job.model]
            if isinstance(out, Exception):
                outcome[job.model] = out
                continue
            entry = entries.get(job.model)
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
                "preprocessing": preprocesses[job.model].to_dict(),
                "device": {"name": pass_numerics.device, "model": pass_numerics.device_name()},
                "numerics": settings,
                "batch_size": args.batch_size, "workers": args.workers,
                "throughput": out["throughput"],
                "pass": out["pass"],
                "distributed": None if dist is None else {"world_size": dist.world, "backend": dist.backend},
                "quantized": bool(entry and entry.quantized),
            })
            print(runner.accuracy_line(job.model, out["preds"], dataset.labels, out["throughput"]["images_per_s"],
                                       dataset.class_subset), file=sys.stderr)
            outcome[job.model] = runner.Result(out["preds"], out["probs"], record, out["all_probs"])
        return outcome

    try:
        if not is_main:
            for group in groups:
                run_group(group)
            return EXIT_OK
        return runner.run_groups(groups, run_group, lambda: output_folder.claim(args.output_dir, dataset, args.protocol),
                                 skipped, verbose_errors=args.verbose)
    finally:
        lock.close()
        torch_distributed.finish(dist)
