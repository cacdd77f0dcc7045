"""The Keras prediction script's work, after argparse: choosing models, one child
process per model (``keras_worker``), GPU slots, the pixel cache and each model's
manifest. Imports neither TensorFlow nor torch: the children do the TensorFlow work.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import queue
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base import memory
from ..base.errors import UsageError
from ..datasets import test_sets
from ..datasets.layout import Dataset
from ..datasets.preprocessing import Preprocess
from ..models import sources
from ..outputs import manifest, output_folder, predfiles
from . import child_process, cli, cuda_devices, pixel_cache, runner, sweep

KERAS_WEIGHTS_SUFFIXES = (".weights.h5", ".weights.json", ".h5", ".hdf5", ".keras")  # what Model.load_weights reads
CHECK_BATCHING_BATCH = 32  # --check-batching's batch size when the run itself is one at a time


def parse_gpus(gpu: int | None, gpus: str | None) -> Sequence[str | None]:
    """The CUDA_VISIBLE_DEVICES value of each parallel slot ([None]: inherit, one slot)."""
    if gpu is not None and gpus is not None:
        raise UsageError("-g/--gpu and --gpus: use one of them")
    if gpus is not None:
        values = [g.strip() for g in gpus.split(",")]
        if not all(v.isdigit() for v in values) or len(set(values)) != len(values):
            raise UsageError(f"--gpus {gpus!r}: expected distinct GPU indices such as 0,1,2")
        return values
    return [str(gpu)] if gpu is not None else [None]


def validate_gpus(slots: Sequence[str | None], flag: str) -> None:
    """Refuse GPU indices this machine lacks, before any model runs (without it, TensorFlow
    would quietly run on the CPU)."""
    wanted = [int(slot) for slot in slots if slot is not None]
    if not wanted:
        return
    from . import cuda_devices

    devices = cuda_devices.probe()
    if max(wanted) >= devices.count:
        raise UsageError(f"{flag}: {devices.describe()}; leave out -g/--gpus to run on the CPU")


@dataclass(frozen=True)
class KerasOptions(cli.RunOptions):
    """What the Keras run needs of the command line, below the script (built once from argparse)."""

    gpu: int | None
    gpus: str | None
    jit_compile: bool
    check_batching: int | None


class KerasRun:
    """One run's state: the chosen models and their preprocessing, the free GPU slots and the
    pixel cache's lock. ``run_one`` runs one model in its own child process."""

    def __init__(
        self,
        options: KerasOptions,
        dataset: Dataset,
        entries: dict[str, sources.KerasEntryForScript],
        preprocesses: dict[str, Any],  # a Preprocess, or KerasHub's converter (float pixels)
        weights_files: dict[str, Path],
        slots: Sequence[str | None],
    ) -> None:
        self.options, self.dataset, self.entries = options, dataset, entries
        self.preprocesses, self.weights_files, self.slots = preprocesses, weights_files, slots
        self.check_batch = options.batch_size if options.batch_size > 1 else CHECK_BATCHING_BATCH
        self._paths: list[str] | None = None
        self.where = ""  # the test set's path in a sweep (predict.sweep)
        self.free: queue.Queue[tuple[int, str | None]] = queue.Queue()
        for position, gpu in enumerate(slots):
            self.free.put((position, gpu))
        # --gpus: two models of one geometry must not both fill its entry; models of other geometries
        # fill theirs at the same time (one lock for all made every fill wait for the others)
        self.cache_locks: dict[tuple[Any, ...], threading.Lock] = {}
        self.cache_locks_lock = threading.Lock()

    def on(self, target: sweep.Target, dataset: Dataset, preprocesses: dict[str, Any]) -> KerasRun:
        """This run on another test set of a sweep: the same GPU slots and pixel cache locks."""
        other = copy.copy(self)
        other.options = dataclasses.replace(self.options, val_dir=target.val_dir, output_dir=target.output_dir)
        other.dataset, other.preprocesses, other.where = dataset, preprocesses, target.where
        other._paths = None
        return other

    @property
    def check_images(self) -> int | None:
        """--check-batching K: the images it checks of this test set."""
        k = self.options.check_batching
        return min(k, len(self.dataset)) if k else None

    @property
    def paths(self) -> list[str]:
        """The images' resolved paths for the model processes, made at the test set's first model
        (a sweep of ImageNet-C's 75 folders does not resolve 3.75 million paths before it starts)."""
        if self._paths is None:
            self._paths = [str(p.resolve()) for p in self.dataset.paths]
        return self._paths

    def has_check(self, record: dict[str, Any]) -> bool:
        """--check-batching K: complete outputs are reused only if they record that check."""
        check = record.get("check_batching") or {}
        return check.get("images", 0) >= self.check_images and check.get("batch_size") == self.check_batch

    def job(self, model_id: str, request_common: dict[str, Any]) -> runner.Job:
        entry, options = self.entries[model_id], self.options
        request = {
            **entry.request(),
            **request_common,
            "batch_size": options.batch_size,
            "preprocess_input": entry.preprocess_input,
            "jit_compile": options.jit_compile,
        }
        return runner.Job(
            model_id,
            predfiles.model_files(options.output_dir, model_id, "keras"),
            request,
            self.has_check if self.check_images else None,
            cost=entry.gflops(),
            where=self.where,
            before_save=functools.partial(output_folder.claim, options.output_dir, self.dataset, options.protocol),
        )

    def cached_pixels(self, preprocess: object) -> str | None:
        """The pixel cache entry of the model's geometry, filled first where it is not yet."""
        if not self.options.cache_dir or not isinstance(preprocess, Preprocess):  # KerasHub's converter: float pixels
            return None
        with self.cache_locks_lock:
            lock = self.cache_locks.setdefault(preprocess.geometry, threading.Lock())
        with lock:
            cache = pixel_cache.PixelCache(self.options.cache_dir, self.dataset, preprocess).ensure(
                self.dataset, preprocess, max(1, self.options.workers)
            )
        return str(cache.pixels_path)

    def worker_request(self, job: runner.Job, cache_path: str | None, position: int) -> dict[str, Any]:
        """What the child process needs to run one model."""
        entry, options, weights_file = self.entries[job.model], self.options, self.weights_files.get(job.model)
        return {
            "model": job.model,
            "source": entry.source,
            "protocol": options.protocol,
            "preprocess": self.preprocesses[job.model].to_record()
            if isinstance(self.preprocesses[job.model], Preprocess)
            else None,  # with the test set's image step in it; KerasHub's converter is made in the child
            "weights_file": job.request["weights_file"]
            or (None if weights_file is None else str(weights_file.resolve())),
            "weights_folder": entry.weights_folder,
            "paths": self.paths,
            "batch_size": options.batch_size,
            "topk": options.topk,
            "save_all_probs": options.save_all_probs,
            "threads": options.workers,
            "tf32": options.tf32,
            "jit_compile": options.jit_compile,
            "check_batching": self.check_images,
            "check_batch_size": self.check_batch,
            "position": position if len(self.slots) > 1 else None,
            "pixel_cache": cache_path,
            "verbose": options.verbose,
            "class_subset": None if self.dataset.class_subset is None else self.dataset.class_subset.describe(),
        }

    def run_one(self, job: runner.Job) -> runner.Result:
        from . import keras_worker

        entry = self.entries[job.model]
        cache_path = self.cached_pixels(self.preprocesses[job.model])
        if entry.note and self.options.protocol == "reference":
            print(f"note: {job.model}: {entry.note}", file=sys.stderr)
        position, gpu = self.free.get()
        try:
            out = keras_worker.launch(
                self.worker_request(job, cache_path, position), gpu=gpu, verbose=self.options.verbose
            )
        finally:
            self.free.put((position, gpu))
        record = self.manifest(job, out, cache_path)
        if "check_batching" in out:
            cb = out["check_batching"]
            print(
                f"{job.model}: --check-batching: top-1 agrees on {cb['top1_agree']} of {cb['images']} images "
                f"(batches of {cb['batch_size']}), largest probability difference {cb['max_abs_prob_diff']:.2e}",
                file=sys.stderr,
            )
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
        return runner.Result(out["preds"], out["probs"], record, out["all_probs"])

    def manifest(self, job: runner.Job, out: dict[str, Any], cache_path: str | None) -> dict[str, Any]:
        entry, options, preprocess = self.entries[job.model], self.options, self.preprocesses[job.model]
        model_run = manifest.ModelRun(
            framework=out["framework"],
            weights=out["weights"],
            published=entry.published,
            preprocessing={
                **preprocess.to_dict(),
                "preprocess_input": entry.preprocess_input,
                "source": entry.protocol_source(options.protocol),
            },
            device=out["device"],
            numerics=out["numerics"],
            batch_size=options.batch_size,
            workers=options.workers,
            throughput=out["throughput"],
            params=out.get("params"),
            gflops=entry.gflops(),
        )
        extra = {
            "library_versions": sources.versions(sources.find(entry.source)),
            "isolation": "one child process per model",
            "pixel_cache": cache_path,
        }
        if "check_batching" in out:
            extra["check_batching"] = out["check_batching"]
        return manifest.for_model(job.model, "keras", self.dataset, options.protocol, job.request, model_run, extra)


def _read_first(
    entries: dict[str, sources.KerasEntryForScript], chosen: list[str], weights_files: dict[str, Path]
) -> tuple[dict[str, sources.KerasEntryForScript], dict[str, UsageError]]:
    """Each chosen entry with what it reads before it runs (a KerasHub preset's converter and size
    are in its folder: read it, or download it, now). A download that fails makes that model fail
    alone when it is one of several; a folder named by --weights-file that cannot be read is bad
    input, refused before anything runs."""
    ready, unavailable = {}, {}
    for model_id in chosen:
        try:
            ready[model_id] = entries[model_id].with_weights(weights_files.get(model_id))
        except UsageError as exc:
            if model_id in weights_files or len(chosen) == 1:
                raise
            unavailable[model_id] = exc
    return ready, unavailable


def _setup(options: KerasOptions, part: tuple[int, int] | None) -> tuple[dict[str, KerasRun], list[runner.Job]]:
    """The run's state of each test set (one, or each of a sweep's; by ``where``) and the jobs
    of all of them, from the options; bad input raises UsageError."""
    targets = sweep.targets(options.val_dir, options.output_dir)
    slots = parse_gpus(options.gpu, options.gpus)
    validate_gpus(slots, f"-g {options.gpu}" if options.gpu is not None else f"--gpus {options.gpus}")
    slots = cuda_devices.visible_slots(slots)  # an index into the caller's CUDA_VISIBLE_DEVICES, as PyTorch's
    chosen_sources = sources.chosen("keras", options.source)
    entries = sources.entries(chosen_sources)
    chosen = cli.choose_models(list(entries), options, sources.seed_2019_ids(chosen_sources))
    shares, mine, elsewhere = sweep.this_job(len(targets), chosen, part)
    datasets = sweep.load_datasets(options, targets, shares)
    folders = [m for m in mine if entries[m].weights_in_folder]
    weights_files = runner.parse_weights_files(options.weights_file, mine, folders, elsewhere)
    for model_id, path in weights_files.items():
        if not entries[model_id].weights_in_folder and not path.name.endswith(KERAS_WEIGHTS_SUFFIXES):
            raise UsageError(
                f"--weights-file {path}: Keras reads weights only from {', '.join(KERAS_WEIGHTS_SUFFIXES)} files"
            )
    ready, unavailable = _read_first(entries, mine, weights_files)
    first: KerasRun | None = None
    states: dict[str, KerasRun] = {}
    jobs = []
    for target, dataset, models in zip(targets, datasets, shares, strict=True):
        if dataset is None:  # every pair of this test set is another shard's
            continue
        declared = test_sets.TEST_SETS[dataset.test_set]  # its image step goes in front of each model's own
        rule = options.authors_rule
        preprocesses = {m: declared.prepare(ready[m].preprocess(options.protocol), rule) for m in models if m in ready}
        output_folder.validate(target.output_dir, dataset, options.protocol)
        if first is None:
            here = dataclasses.replace(options, val_dir=target.val_dir, output_dir=target.output_dir)
            first = KerasRun(here, dataset, ready, preprocesses, weights_files, slots)
        state = states[target.where] = first.on(target, dataset, preprocesses)
        for model_id in models:
            if model_id in unavailable:
                jobs.append(
                    runner.Job(
                        model_id,
                        predfiles.model_files(target.output_dir, model_id, "keras"),
                        {"source": entries[model_id].source},
                        unavailable=unavailable[model_id],
                        where=target.where,
                    )
                )
                continue
            weights_file = weights_files.get(model_id)
            if weights_file is not None and weights_file.is_dir():  # a preset folder: recorded by the entry
                weights_file = None
            request = cli.request_common(options, preprocesses[model_id], dataset, weights_file)
            jobs.append(state.job(model_id, request))
    if options.cache_dir:
        pixel_cache.validate_root(options.cache_dir)
    return states, jobs


def warms_kernels_first(slots: Sequence[str | None]) -> bool:
    """--gpus with several GPUs: the first model runs alone, so that the CUDA kernels TensorFlow
    compiles from PTX (sm_90: minutes) are compiled once, into the shared kernel cache
    (``keras_worker.child_env``), and not by every GPU's first model at the same time."""
    return len(slots) > 1 and any(slot is not None for slot in slots)


def run(options: KerasOptions, part: tuple[int, int] | None) -> int:
    """Run the chosen models over the val set (or each test set of a sweep), each in its own
    child process; the exit status."""
    memory.keep_large_blocks_out_of_the_heap()
    states, jobs = _setup(options, part)
    slots = next(iter(states.values())).slots
    first_alone = warms_kernels_first(slots)
    if first_alone:
        print(
            "note: --gpus: the first model runs alone, to fill the CUDA kernel cache the others read", file=sys.stderr
        )
    folders = [state.options.output_dir for state in states.values()]
    with sweep.hold(folders, part), child_process.supervise():
        return runner.run_jobs(
            jobs,
            lambda job: states[job.where].run_one(job),
            overwrite=options.overwrite,
            verbose_errors=options.verbose,
            parallel=len(slots),
            first_alone=first_alone,
        )
