"""The PyTorch prediction script's work, after argparse: choosing models from the
torchvision and timm registries (or one --model-spec), grouping them into passes
that share one decode, the pixel cache, torchrun, and each model's manifest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from ..base import memory
from ..base.errors import EXIT_OK, UsageError, shown
from ..datasets import test_sets
from ..datasets.layout import Dataset
from ..datasets.preprocessing import Preprocess
from ..models import sources
from ..outputs import manifest, output_folder, predfiles
from . import cli, runner, sweep

if TYPE_CHECKING:
    import torch

    from . import torch_distributed, torch_predict
    from .pixel_cache import PixelCache


class TorchEntry(sources.PytorchEntry, Protocol):
    """A PyTorch registry entry (torchvision, timm): both registries know every model's parameters."""

    def num_params(self) -> int: ...


@dataclass(frozen=True)
class TorchOptions(cli.RunOptions):
    """What the PyTorch run needs of the command line, below the script (built once from argparse)."""

    model_spec: str | None
    name: str | None
    device: str | None
    gpu: int | None
    amp: str | None  # "bf16", "fp16" or None (float32)
    channels_last: bool
    group_size: int
    group_memory: float  # GiB


@dataclass
class TorchRun:
    """One run's state: the chosen models, their preprocessing and numerics, the torchrun
    process group. Its methods build a group of models and run one pass over the data."""

    options: TorchOptions
    dataset: Dataset
    entries: dict[str, TorchEntry]  # id -> registry entry; empty for --model-spec
    preprocesses: dict[str, Preprocess]
    weights_files: dict[str, Path]
    numerics: torch_predict.Numerics
    dist: torch_distributed.ProcessGroup | None
    spec_model: torch.nn.Module | None = None  # the --model-spec model, built once
    params: dict[str, int] = dataclasses.field(default_factory=dict)  # id -> parameters of the model built

    @property
    def is_main(self) -> bool:
        return self.dist is None or self.dist.is_main

    def job_numerics(self, model_id: str) -> torch_predict.Numerics:
        from . import torch_predict

        entry = self.entries.get(model_id)
        if entry is not None and entry.quantized and self.numerics.device != "cpu":
            return torch_predict.Numerics("cpu")  # quantized kernels run on the CPU only
        return self.numerics

    def model_spec_model(self) -> torch.nn.Module:
        """The --model-spec model; a run of registry models has none."""
        if self.spec_model is None:
            raise RuntimeError("no --model-spec model: this run's models come from the registries")
        return self.spec_model

    def job(self, model_id: str, request_common: dict[str, Any], where: str = "") -> runner.Job:
        """``where``: the test set's path in a sweep (``predict.sweep``)."""
        entry, options = self.entries.get(model_id), self.options
        model = {"source": "model-spec", "model_spec": options.model_spec, "weights": None}
        request = {
            **(model if entry is None else entry.request()),
            **request_common,
            # the kind alone (cpu, cuda): a resume from torchrun's cuda:3 in one process's cuda is the same
            # request; the index is the manifest's device name
            "device": self.job_numerics(model_id).device.partition(":")[0],
            "amp": options.amp,
            "channels_last": options.channels_last,
        }
        return runner.Job(
            model_id,
            predfiles.model_files(options.output_dir, model_id, "pytorch"),
            request,
            cost=None if entry is None else entry.gflops(),
            where=where,
            before_save=functools.partial(output_folder.claim, options.output_dir, self.dataset, options.protocol),
        )

    def pass_key(self, job: runner.Job) -> tuple[tuple[Any, ...], str]:
        """Models that share this key share one pass (one decode)."""
        return self.preprocesses[job.model].geometry, self.job_numerics(job.model).device

    def param_bytes(self, job: runner.Job) -> int:
        entry = self.entries.get(job.model)
        return 4 * (
            entry.num_params() if entry is not None else sum(p.numel() for p in self.model_spec_model().parameters())
        )

    def build(
        self, group: list[runner.Job]
    ) -> tuple[list[torch_predict.Member], dict[str, dict[str, Any]], dict[str, Exception]]:
        """The group's models; one that fails to build fails alone."""
        from . import torch_predict

        members: list[torch_predict.Member] = []
        records: dict[str, dict[str, Any]] = {}
        failures: dict[str, Exception] = {}
        for job in group:
            try:
                if self.options.model_spec:
                    model = self.model_spec_model()
                    records[job.model] = {"id": self.options.name, "source": f"--model-spec {self.options.model_spec}"}
                else:
                    model, records[job.model] = self.entries[job.model].build(self.weights_files.get(job.model))
                known = self.entries[job.model].num_params() if job.model in self.entries else None
                self.params[job.model] = known if known is not None else sum(p.numel() for p in model.parameters())
                members.append(torch_predict.Member(job.model, model, self.preprocesses[job.model]))
            except Exception as exc:  # this model fails; the rest of the group runs
                failures[job.model] = exc
        return members, records, failures

    def pixel_cache(self, geometry: Preprocess) -> tuple[PixelCache | None, Exception | None]:
        """The pass's pixel cache (rank 0 fills it) and the error that stops the pass, if any."""
        from . import pixel_cache, torch_distributed

        if not self.options.cache_dir:
            return None, None
        cache, error = pixel_cache.PixelCache(self.options.cache_dir, self.dataset, geometry), None
        if self.is_main:
            try:
                cache.ensure(self.dataset, geometry, max(1, self.options.workers))
            except Exception as exc:  # e.g. a corrupt image: every model of the pass stops
                error = torch_distributed.portable(exc)
        return cache, torch_distributed.broadcast(error, self.dist)

    def predict(
        self, members: list[torch_predict.Member], numerics: torch_predict.Numerics, cache: PixelCache | None
    ) -> dict[str, dict[str, Any] | Exception]:
        """This rank's rows through the group's models: name -> output or exception."""
        from . import torch_distributed, torch_predict

        options, rows, offset = self.options, self.dataset, 0
        if self.dist is not None:
            offset, stop = torch_distributed.block(len(self.dataset), self.dist)
            rows = torch_distributed.rows(self.dataset, offset, stop)
        try:
            return torch_predict.predict_group(
                members,
                rows,
                numerics,
                options.batch_size,
                options.workers,
                options.topk,
                options.save_all_probs,
                cache,
                offset,
            )
        except Exception as exc:  # e.g. a corrupt image: every model of the pass stops
            return {m.name: exc for m in members}

    def gathered(
        self, group: list[runner.Job], results: dict[str, dict[str, Any] | Exception]
    ) -> dict[str, dict[str, Any] | Exception] | None:
        """Every rank's results merged in row order on rank 0 (None on the others)."""
        from . import torch_distributed

        if self.dist is None:
            return results
        parts = torch_distributed.gather(
            {name: torch_distributed.portable(r) if isinstance(r, Exception) else r for name, r in results.items()},
            self.dist,
        )
        if parts is None:  # not rank 0 (gather returns the parts on rank 0 alone)
            return None
        return {
            job.model: torch_distributed.merge([part[job.model] for part in parts], len(self.dataset)) for job in group
        }

    def run_group(self, group: list[runner.Job]) -> dict[str, runner.Result | Exception]:
        """One pass over the data for the group. Under torchrun every rank reaches the same
        collectives (broadcast, gather) whatever fails locally, so none waits forever."""
        from . import torch_distributed

        memory.give_back_freed_memory()  # what the pass before left
        members, weights_records, failures = torch_distributed.local_leaders_first(
            self.dist, functools.partial(self.build, group)
        )
        results: dict[str, dict[str, Any] | Exception] = dict(failures)
        pass_numerics = self.job_numerics(group[0].model)
        settings = pass_numerics.apply()
        cache, cache_error = self.pixel_cache(self.preprocesses[group[0].model])
        quantized_on_cpu = pass_numerics.device == "cpu" and self.numerics.device != "cpu"
        with _cpu_threads(quantized_threads(os.cpu_count() or 1, os.environ) if quantized_on_cpu else None) as threads:
            if threads is not None:
                settings = {**settings, "cpu_threads": threads}
            if cache_error is not None:
                results.update({m.name: cache_error for m in members})
            elif members:
                results.update(self.predict(members, pass_numerics, cache))
        merged = self.gathered(group, results)
        if merged is None:
            return {}
        outcome: dict[str, runner.Result | Exception] = {}
        for job in group:
            out = merged[job.model]
            if isinstance(out, Exception):
                outcome[job.model] = out
                continue
            record = self.manifest(job, out, weights_records[job.model], pass_numerics, settings)
            print(
                runner.accuracy_line(
                    job.key,
                    out["preds"],
                    self.dataset.labels,
                    out["throughput"]["images_per_s"],
                    self.dataset.class_subset,
                    self.dataset.accepts(),
                    test_sets.TEST_SETS[self.dataset.test_set].columns,
                ),
                file=sys.stderr,
            )
            outcome[job.model] = runner.Result(out["preds"], out["probs"], record, out["all_probs"])
        return outcome

    def manifest(
        self,
        job: runner.Job,
        out: dict[str, Any],
        weights_record: dict[str, Any],
        numerics: torch_predict.Numerics,
        settings: dict[str, Any],
    ) -> dict[str, Any]:
        import torch
        import torchvision  # type: ignore[import-untyped]  # torchvision ships no py.typed marker

        entry, options, dist = self.entries.get(job.model), self.options, self.dist
        # the packages each source depends on come from the table of sources (sources.SOURCES)
        library_versions = sources.versions(sources.find(entry.source)) if entry else {}
        framework = {
            "name": entry.source if entry else "pytorch",
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
        }
        for name, version in library_versions.items():
            framework.setdefault(name, version)
        model_run = manifest.ModelRun(
            framework=framework,
            weights=weights_record,
            published=entry.published if entry else None,
            preprocessing=self.preprocesses[job.model].to_dict(),
            device={"name": numerics.device, "model": numerics.device_name()},
            numerics=settings,
            batch_size=out["batch_size"],  # the size used: lower than asked after an out-of-memory error
            workers=options.workers,
            throughput=out["throughput"],
            params=self.params.get(job.model),
            gflops=entry.gflops() if entry else None,
        )
        return manifest.for_model(
            job.model,
            "pytorch",
            self.dataset,
            options.protocol,
            job.request,
            model_run,
            {
                "library_versions": library_versions,
                "pass": out["pass"],
                "nonfinite_rows": out["nonfinite_rows"],  # 0: a model with any fails (torch_predict)
                "distributed": None if dist is None else {"world_size": dist.world, "backend": dist.backend},
                "quantized": bool(entry and entry.quantized),
            },
        )


def quantized_threads(cpus: int, environ: Mapping[str, str]) -> int:
    """Threads for a quantized model's pass (int8 kernels run on the CPU) in a GPU run: torchrun
    gives each rank one thread (OMP_NUM_THREADS=1), so the machine's cores are shared among
    the ranks on it instead."""
    return max(1, cpus // max(1, int(environ.get("LOCAL_WORLD_SIZE", "1") or 1)))


@contextlib.contextmanager
def _cpu_threads(threads: int | None) -> Iterator[int | None]:
    """torch's intra-op threads set to ``threads`` for the block (None: left as they are)."""
    if threads is None:
        yield None
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


def _plan(
    states: list[TorchRun], jobs: list[list[runner.Job]], lock: contextlib.ExitStack, part: tuple[int, int] | None
) -> tuple[list[list[str]], list[str]] | UsageError:
    """Rank 0 locks the output folders and finds the pending jobs of each test set (by key: the
    jobs themselves are built alike on every rank); an error is returned, not raised, so that every
    rank hears of it (or the others wait forever)."""
    try:
        lock.enter_context(sweep.hold([state.options.output_dir for state in states], part))
        pending, skipped = [], []
        for state_jobs in jobs:
            to_run, done = runner.pending(state_jobs, states[0].options.overwrite)
            pending.append([job.key for job in to_run])
            skipped += done
        return pending, skipped
    except UsageError as exc:
        return exc


def _setup(options: TorchOptions, part: tuple[int, int] | None) -> tuple[list[TorchRun], list[list[runner.Job]]]:
    """The run's state of each test set (one, or each of a sweep's) and its jobs, from the options:
    the models, their preprocessing and requests, the device and the torchrun process group (one
    for the whole run). Bad input raises UsageError."""
    from . import pixel_cache, torch_distributed, torch_predict

    targets = sweep.targets(options.val_dir, options.output_dir)
    spec_model = spec_preprocess = None
    if options.model_spec:
        from ..models import torch_build

        spec_model, spec_preprocess = torch_build.model_from_spec(options.model_spec)
        assert options.name is not None, "parse_args refuses --model-spec without --name"
        chosen, entries = [options.name], {}
    else:
        chosen_sources = sources.chosen("pytorch", options.source)
        entries = sources.entries(chosen_sources)
        chosen = cli.choose_models(list(entries), options, sources.seed_2019_ids(chosen_sources))
    shares, mine, elsewhere = sweep.this_job(len(targets), chosen, part)
    datasets = sweep.load_datasets(options, targets, shares)
    device = torch_predict.resolve_device(options.device, options.gpu)
    dist = torch_distributed.init(device)
    for target, dataset in zip(targets, datasets, strict=True):
        if dist is not None and dataset is not None and len(dataset) < dist.world:
            where = f" in {shown(target.where)}" if target.where else ""
            raise UsageError(f"{len(dataset)} images{where} for {dist.world} torchrun processes: use fewer processes")
    device = torch_distributed.rank_device(dist, device)
    numerics = torch_predict.Numerics(device, options.amp, options.channels_last, options.tf32)
    weights_files = runner.parse_weights_files(options.weights_file, mine, other_shards=elsewhere)
    states, jobs = [], []
    for target, dataset, models in zip(targets, datasets, shares, strict=True):
        if dataset is None:  # every pair of this test set is another shard's
            continue
        declared = test_sets.TEST_SETS[dataset.test_set]  # its image step goes in front of each model's own
        preprocesses = {
            m: declared.prepare(
                spec_preprocess if options.model_spec else entries[m].preprocess(options.protocol),
                options.authors_rule,
            )
            for m in models
        }
        output_folder.validate(target.output_dir, dataset, options.protocol)
        here = dataclasses.replace(options, val_dir=target.val_dir, output_dir=target.output_dir)
        state = TorchRun(here, dataset, entries, preprocesses, weights_files, numerics, dist, spec_model)
        states.append(state)
        jobs.append(
            [
                state.job(m, cli.request_common(options, preprocesses[m], dataset, weights_files.get(m)), target.where)
                for m in models
            ]
        )
    if options.cache_dir:
        pixel_cache.validate_root(options.cache_dir)
    return states, jobs


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(options: TorchOptions, part: tuple[int, int] | None) -> int:
    """Run the chosen models over the val set in grouped passes (one decode per pass),
    across torchrun processes when there are several; the exit status. SIGTERM ends it
    through its cleanup (status 143, as the Keras script): the lock, the data-loading
    workers and their temporary folder go, where the default action left them behind."""
    memory.keep_large_blocks_out_of_the_heap()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main else None
    try:
        return _run(options, part)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(options: TorchOptions, part: tuple[int, int] | None) -> int:
    from . import torch_distributed

    states, jobs = _setup(options, part)
    dist = states[0].dist
    lock = contextlib.ExitStack()  # rank 0's locks on the output folders, held to the end (folder_lock)
    planned = torch_distributed.broadcast(_plan(states, jobs, lock, part) if states[0].is_main else None, dist)
    if isinstance(planned, UsageError):
        lock.close()
        torch_distributed.finish(dist)
        raise planned
    pending, skipped = planned
    groups: list[tuple[TorchRun, list[runner.Job]]] = []
    for state, state_jobs, keys in zip(states, jobs, pending, strict=True):
        to_run = [job for job in state_jobs if job.key in keys]
        memory_cap = int(options.group_memory * 2**30)
        groups += [
            (state, group)
            for group in runner.group(to_run, state.pass_key, options.group_size, state.param_bytes, memory_cap)
        ]
    try:
        # Every rank runs the groups that rank 0 runs, as rank 0 announces them: after an error
        # that stops the run (an image, a full disk) none goes on alone to wait on the others.
        if not states[0].is_main:
            while (index := torch_distributed.broadcast(None, dist)) is not None:
                state, group = groups[index]
                state.run_group(group)
            return EXIT_OK

        def run_group(group: list[runner.Job]) -> dict[str, runner.Result | Exception]:
            index = next(i for i, (_, g) in enumerate(groups) if g is group)
            torch_distributed.broadcast(index, dist)
            return groups[index][0].run_group(group)

        status = runner.run_groups(
            [group for _, group in groups],
            run_group,
            skipped,
            verbose_errors=options.verbose,
        )
        torch_distributed.broadcast(None, dist)  # no more groups
        return status
    finally:
        lock.close()
        torch_distributed.finish(dist)
