"""Running a list of models: selection, resume, failure isolation, summary.

Shared by both prediction scripts. Each model's outputs are written atomically
(preds, probs, then the manifest that marks them complete), so a kill at any
point leaves no half-written file and a rerun continues with the next model.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..base import test_pause
from ..base.errors import (
    EXIT_OK,
    EXIT_PARTIAL_FAILURE,
    EXIT_USAGE,
    ImageError,
    NoSpaceError,
    StopsTheRun,
    UsageError,
    one_line,
    shown,
)
from ..outputs import predfiles
from .progress import Progress


def select_models(available: Sequence[str], patterns: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """Ids matching any pattern (exact id, glob, or ``all``), minus ``exclude``, in registry order."""
    chosen: set[str] = set()
    for pattern in patterns:
        if pattern == "all":
            chosen.update(available)
            continue
        matched = [m for m in available if fnmatch.fnmatchcase(m, pattern)]
        if not matched:
            raise UsageError(f"-m/--model {pattern!r}: no such model; see --list-models")
        chosen.update(matched)
    for pattern in exclude:
        chosen.difference_update(fnmatch.filter(list(chosen), pattern))
    return [m for m in available if m in chosen]


def parse_shard(spec: str | None, environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """``I/N`` from --model-shard, else from a Slurm job array, else None."""
    environ = os.environ if environ is None else environ
    if spec is None:
        if "SLURM_ARRAY_TASK_ID" in environ and "SLURM_ARRAY_TASK_COUNT" in environ:
            try:
                index = int(environ["SLURM_ARRAY_TASK_ID"]) - int(environ.get("SLURM_ARRAY_TASK_MIN", "0"))
                count = int(environ["SLURM_ARRAY_TASK_COUNT"])
            except ValueError:
                raise UsageError("SLURM_ARRAY_TASK_* variables are not integers; pass --model-shard I/N") from None
            if not 0 <= index < count:  # e.g. a stepped array (--array=0-15:2)
                raise UsageError(
                    f"Slurm array task {index} of {count}: use a contiguous array (--array=0-{count - 1}) "
                    "or pass --model-shard I/N"
                )
            return index, count
        return None
    try:
        index, count = (int(x) for x in spec.split("/"))
    except ValueError:
        raise UsageError(f"--model-shard {spec!r}: expected I/N, e.g. 0/4") from None
    if count < 1:
        raise UsageError(f"--model-shard {spec!r}: N must be at least 1")
    if not 0 <= index < count:
        raise UsageError(f"--model-shard {spec!r}: I must be in 0..N-1")
    return index, count


T = TypeVar("T")


def shard(items: list[T], part: tuple[int, int] | None) -> list[T]:
    """Every N-th item (model, or a sweep's (test set, model) pair) from the I-th: deterministic,
    disjoint, and covering."""
    return items if part is None else items[part[0] :: part[1]]


def parse_weights_files(
    values: Sequence[str], models: Sequence[str], folders: Sequence[str] = (), other_shards: Sequence[str] = ()
) -> dict[str, Path]:
    """--weights-file values, PATH (with exactly one model) or ID=PATH pairs -> {id: path}.

    ``folders``: the models whose weights are a folder (a KerasHub preset), not a file.
    ``other_shards``: selected models that other --model-shard jobs run; their ID=PATH
    values are passed over, so one command line serves every job of an array."""
    files: dict[str, Path] = {}
    for value in values:
        model, sep, path = value.partition("=")
        if not sep:
            if len(models) != 1 or len(values) != 1:
                raise UsageError(f"--weights-file {value}: a bare PATH needs exactly one model; use ID=PATH")
            model, path = models[0], value
        if model in other_shards:
            continue
        if model not in models:
            raise UsageError(f"--weights-file {value}: {model} is not among the selected models")
        if model in folders:
            if Path(path).exists() and not Path(path).is_dir():
                raise UsageError(f"--weights-file {value}: {path} is not a folder; {model} takes its preset folder")
        elif Path(path).is_dir():
            raise UsageError(f"--weights-file {value}: {path} is a folder; give the weights file itself")
        if not Path(path).exists():
            raise UsageError(f"--weights-file {value}: {path} does not exist")
        files[model] = Path(path)
    return files


def topk(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k classes of each row, most probable first (ties: lower class first)."""
    k = min(k, probs.shape[1])
    idx = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return idx.astype(np.int64), np.take_along_axis(probs, idx, axis=1).astype(np.float32)


@dataclass
class Result:
    preds: np.ndarray
    probs: np.ndarray
    manifest: dict[str, Any]
    all_probs: np.ndarray | None = None


@dataclass
class Job:
    """One model to run: where its files go and what a reusable output must match."""

    model: str
    files: predfiles.ModelFiles
    request: dict[str, Any]
    # What else a reusable manifest must hold, for asks that do not change the outputs
    # (the Keras script's --check-batching): False reruns the model.
    also_needs: Callable[[dict[str, Any]], bool] | None = None
    cost: float | None = None  # GFLOPs per image where the registry knows them: weights the time estimate
    # Why the model cannot run, known before the run (a KerasHub preset that cannot be downloaded):
    # it fails alone when its turn comes, and its request is not known, so it is never skipped.
    unavailable: Exception | None = None
    # In a sweep over many test sets (predict.sweep): the test set's path below the sweep's root.
    where: str = ""
    # Runs before its outputs are saved: the claim of its output folder (its dataset files), so a
    # run that fails on bad input leaves nothing behind.
    before_save: Callable[[], None] | None = None

    @property
    def key(self) -> str:
        """The job's name in lines and the estimate: the model, on its test set in a sweep."""
        return f"{self.model} on {shown(self.where)}" if self.where else self.model  # a folder's name, escaped


class _Ledger:
    """Saves each finished model, reports each failure, and ends with the summary.

    One model's failure does not stop the others, except an error that every model would
    meet (``StopsTheRun``: an image that cannot be decoded, a full disk): then the ledger is
    ``stopped``, the models not yet started are not run, and the error is reported once.
    """

    def __init__(self, skipped: list[str], verbose_errors: bool, progress: Progress | None = None) -> None:
        self.verbose_errors = verbose_errors
        self.progress = progress if progress is not None else Progress([])
        self.done: list[str] = []
        self.skipped = list(skipped)
        self.failed: list[str] = []
        self.not_run: list[str] = []
        self.usage_failure = False
        self.stopped_by: list[StopsTheRun] = []

    def finish(self, job: Job, outcome: Result | Exception, seconds: float, trace: str = "") -> None:
        if isinstance(outcome, Exception):
            self.usage_failure |= isinstance(outcome, UsageError)
            self.failed.append(job.key)
            if isinstance(outcome, StopsTheRun):
                if any(type(outcome) is type(cause) for cause in self.stopped_by):
                    return  # what stopped the run (that image, the full disk) is reported already
                self.stopped_by.append(outcome)
            # An image error names the file, the same line in both scripts: the file is at fault, not the model.
            line = f"error: {outcome}" if isinstance(outcome, StopsTheRun) else f"error: {job.key} failed: {outcome}"
            print(one_line(line), file=sys.stderr)  # a library's message may carry ANSI codes or line breaks
            if self.verbose_errors and not isinstance(outcome, UsageError):
                print(trace or "".join(traceback.format_exception(outcome)), file=sys.stderr, end="")
            return
        try:
            self.save(job, outcome)
        except NoSpaceError as exc:  # every later model would meet the same full disk
            self.finish(job, exc.named("-o/--output-dir", _left_by_full_disk(job.files, exc.writing)), seconds)
            return
        self.done.append(job.key)
        print(f"{job.key}: wrote {job.files.preds_path.name} in {seconds:.1f} s", file=sys.stderr)
        test_pause.wait_at("saved")

    def save(self, job: Job, outcome: Result) -> None:
        if job.before_save is not None:
            job.before_save()
        if outcome.all_probs is not None:
            from ..base import atomic

            # the old manifest goes first, so a kill here never leaves it beside new all-probs
            job.files.manifest_path.unlink(missing_ok=True)
            atomic.save_npy(job.files.all_probs_path, outcome.all_probs)
        predfiles.save(job.files, outcome.preds, outcome.probs, outcome.manifest)

    @property
    def stopped(self) -> bool:
        """An error that every model would meet ended the run (an image, a full disk)."""
        return bool(self.stopped_by)

    def status(self) -> int:
        """Print the summary; exit status 0 all done, 1 some model failed to load or
        run, 2 a failure was bad input (for example a corrupt image)."""
        summary = f"{len(self.done)} done, {len(self.skipped)} skipped (already complete), {len(self.failed)} failed"
        summary += f": {', '.join(self.failed)}" if self.failed else ""
        if self.not_run:
            cause = self.stopped_by[0]
            why = (
                "a disk is full: free space"
                if isinstance(cause, NoSpaceError)
                else "an image cannot be decoded: fix it"
                if isinstance(cause, ImageError)
                else "see the error above: fix it"
            )
            summary += f"; {len(self.not_run)} not run ({why} and run again)"
        print(f"{summary}; {self.progress.total_time()} in all", file=sys.stderr)
        if not self.failed:
            return EXIT_OK
        return EXIT_USAGE if self.usage_failure else EXIT_PARTIAL_FAILURE


def _left_by_full_disk(files: predfiles.ModelFiles, writing: str) -> str:
    """What a save that met a full disk left of the model (for its error line): the files are
    each complete or absent (atomic), but a model may have some without its manifest, which
    the table then leaves out and a rerun redoes."""
    from ..outputs import output_folder

    if files.manifest_path.exists():
        left = f"{files.model}'s earlier complete outputs are kept"
    else:
        written = [p.name for p in (files.preds_path, files.probs_path, files.all_probs_path) if p.exists()]
        left = (
            f"{files.model} is left incomplete ({', '.join(written)} but no manifest): the table leaves it "
            "out, and a rerun redoes it"
            if written
            else f"nothing of {files.model} was written"
        )
    if writing in output_folder.DATASET_FILE_NAMES:
        left += "; the folder's dataset files are completed by the rerun"
    return left


def request_changes(manifest: dict[str, Any], request: dict[str, Any]) -> list[str]:
    """The request keys (compared as JSON) in which ``request`` differs from the one a
    manifest records; [] for the same request. A source renamed since
    (``predfiles.RENAMED_SOURCES``) is the same source."""
    before, now = manifest.get("request"), json.loads(json.dumps(request))
    if not isinstance(before, dict):
        return ["request (not recorded)"]
    before = predfiles.current_request(before)
    return [
        _change(key, before.get(key), now.get(key))
        for key in sorted(set(before) | set(now))
        if before.get(key) != now.get(key)
    ]


def _change(key: str, before: Any, now: Any) -> str:
    """``topk 10 there, 5 asked`` when both values are short, else the key alone."""
    before_text, now_text = json.dumps(before), json.dumps(now)
    return f"{key} {before_text} there, {now_text} asked" if len(before_text) + len(now_text) <= 40 else key


CONFLICTS_SHOWN = 3


def pending(jobs: list[Job], overwrite: bool) -> tuple[list[Job], list[str]]:
    """(jobs to run, ids skipped because their complete outputs exist).

    Complete outputs made for another request (other options: -k, --amp, weights...)
    are never replaced silently: without --overwrite that is bad input, reported for
    every such model in one line before anything runs. Outputs of the same request are
    reused (resume), unless ``job.also_needs`` asks for what they lack: then they are redone.
    """
    to_run, skipped, conflicts = [], [], []
    for job in jobs:
        if job.unavailable is not None:
            to_run.append(job)
            continue
        manifest = None if overwrite else predfiles.outputs_complete(job.files)
        changes = None if manifest is None else request_changes(manifest, job.request)
        if changes:
            conflicts.append((job.files.folder, f"{job.key} ({', '.join(changes)})"))
        elif changes == [] and manifest is not None and (job.also_needs is None or job.also_needs(manifest)):
            print(
                f"{job.key}: complete outputs exist in {job.files.folder}, skipped (--overwrite redoes it)",
                file=sys.stderr,
            )
            skipped.append(job.key)
        else:
            to_run.append(job)
    if conflicts:
        more = f" and {len(conflicts) - CONFLICTS_SHOWN} more" if len(conflicts) > CONFLICTS_SHOWN else ""
        raise UsageError(
            f"{conflicts[0][0]}: holds complete outputs made with other options: "
            f"{'; '.join(text for _, text in conflicts[:CONFLICTS_SHOWN])}{more}; pass --overwrite to replace them, "
            "or another -o/--output-dir"
        )
    return to_run, skipped


def group(
    jobs: list[Job], key: Callable[[Job], Any], max_size: int, size_of: Callable[[Job], int], max_bytes: int
) -> list[list[Job]]:
    """Jobs with equal ``key`` in passes of at most ``max_size`` jobs and ``max_bytes``
    (by ``size_of``; a job larger than that alone gets a pass of its own), in job order."""
    by_key: dict[Any, list[list[Job]]] = {}
    sizes: dict[int, int] = {}
    for job in jobs:
        passes = by_key.setdefault(key(job), [])
        size = size_of(job) if max_size > 1 else 0
        current = passes[-1] if passes else None
        if current is None or len(current) >= max_size or sizes[id(current)] + size > max_bytes:
            current = []
            passes.append(current)
            sizes[id(current)] = 0
        current.append(job)
        sizes[id(current)] += size
    return [p for passes in by_key.values() for p in passes]


def run_groups(
    groups: list[list[Job]],
    run_group: Callable[[list[Job]], dict[str, Result | Exception]],
    skipped: list[str],
    verbose_errors: bool = False,
) -> int:
    """Run each group (one pass over the data for all its models) and save its models'
    outputs; a model missing from the answer, or a group that raised, counts as failed."""
    ledger = _Ledger(skipped, verbose_errors, Progress.of([job for jobs in groups for job in jobs], skipped))
    for jobs in groups:
        if ledger.stopped:
            ledger.not_run += [job.key for job in jobs]
            continue
        models = [job.key for job in jobs]
        on = f" on {shown(jobs[0].where)}" if jobs[0].where else ""  # a pass is over one test set
        label = models[0] if len(models) == 1 else f"a pass of {len(models)}{on}: {', '.join(j.model for j in jobs)}"
        ledger.progress.start(models, label)
        start = time.perf_counter()
        try:
            outcomes = run_group(jobs)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            outcomes = {job.model: exc for job in jobs}
        seconds = time.perf_counter() - start
        for job in jobs:
            ledger.finish(job, outcomes.get(job.model, RuntimeError("no result")), seconds)
        ledger.progress.finish(ran=any(model in ledger.done for model in models))
    return ledger.status()


def run_jobs(
    jobs: list[Job],
    run_one: Callable[[Job], Result],
    overwrite: bool = False,
    verbose_errors: bool = False,
    parallel: int = 1,
    first_alone: bool = False,
) -> int:
    """Run each job unless complete; isolate failures; print a summary; return the exit status.

    ``parallel`` > 1 runs that many jobs at once, in threads (the Keras script's
    --gpus: each ``run_one`` call drives its own child process); outputs are saved
    by this thread, each as soon as its job ends. ``first_alone``: the first job to run runs
    before the others start (it fills a cache they then read: the Keras script's CUDA kernels).
    """
    to_run, skipped = pending(jobs, overwrite)
    ledger = _Ledger(skipped, verbose_errors, Progress.of(jobs, skipped, parallel))
    if first_alone and parallel > 1 and len(to_run) > 1:
        ledger.finish(to_run[0], *_attempt(run_one, to_run[0], ledger.progress))
        ledger.progress.finish(ran=to_run[0].key in ledger.done, models=[to_run[0].key])
        to_run = to_run[1:]
        if ledger.stopped:
            ledger.not_run, to_run = [job.key for job in to_run], []
    if parallel <= 1:
        for job in to_run:
            if ledger.stopped:
                ledger.not_run.append(job.key)
            else:
                ledger.finish(job, *_attempt(run_one, job, ledger.progress))
                ledger.progress.finish(ran=job.key in ledger.done)
    elif to_run:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        pool = ThreadPoolExecutor(max_workers=parallel)
        try:
            futures = {pool.submit(_attempt, run_one, job, ledger.progress): job for job in to_run}
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                job = futures[future]
                ledger.finish(job, *future.result())
                ledger.progress.finish(ran=job.key in ledger.done, models=[job.key])
                if ledger.stopped and not ledger.not_run:  # running jobs finish and are saved; the rest never start
                    ledger.not_run = [job.key for f, job in futures.items() if not f.done() and f.cancel()]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return ledger.status()


def _attempt(
    run_one: Callable[[Job], Result], job: Job, progress: Progress | None = None
) -> tuple[Result | Exception, float, str]:
    """run_one(job), or the exception it raised (and its traceback); with the time it took.
    ``progress`` hears of the start (jobs side by side start in their own threads)."""
    if progress is not None:
        progress.start([job.key])
    if job.unavailable is not None:
        return job.unavailable, 0.0, ""
    start = time.perf_counter()
    try:
        outcome: Result | Exception = run_one(job)
        trace = ""
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        outcome, trace = exc, traceback.format_exc()
    return outcome, time.perf_counter() - start, trace


def warm_up(n: int, seconds: float, first_s: float, first_n: int) -> dict[str, Any]:
    """The first batch's model time apart, and the rate after it: the overnight estimate's,
    since a model's warm-up is paid once, not per image."""
    steady = seconds - first_s
    return {
        "first_batch_s": round(first_s, 3),
        "first_batch_images": first_n,
        "steady_images_per_s": round((n - first_n) / steady, 2) if n > first_n and steady > 0 else None,
    }


def accuracy_line(
    model: str,
    preds: np.ndarray,
    labels: np.ndarray,
    images_per_s: float,
    subset: Any = None,
    accepts: np.ndarray | None = None,
    columns: tuple[str, ...] = ("acc1", "acc5"),
) -> str:
    """The closing line per model: Acc@1/Acc@5 on this dataset and throughput, and the
    class subset (a ``class_subset.ClassSubset``) the outputs were restricted to. ``accepts``
    (own classes x 1000): a test set with its own classes, scored by what each accepts;
    ``columns``: the accuracies that score the test set (ImageNet-9: Acc@1 only)."""
    right = (preds[:, :5] == labels[:, None]) if accepts is None else accepts[labels[:, None], preds[:, :5]]
    acc1 = 100.0 * float(np.mean(right[:, 0]))
    acc5 = 100.0 * float(np.mean(right.any(axis=1)))
    restricted = "" if subset is None else f", restricted to {subset.short()}"
    top5 = f"  Acc@5 {acc5:.2f}" if "acc5" in columns else ""
    return f"{model}: Acc@1 {acc1:.2f}{top5}  ({len(labels)} images{restricted}, {images_per_s:.1f} images/s)"
