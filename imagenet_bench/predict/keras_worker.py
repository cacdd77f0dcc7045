"""Running one Keras model in its own process.

TensorFlow never gives GPU memory back and keeps global state (graphs, XLA caches,
Keras's name counters), so the Keras script runs every model in a fresh child
process: nothing leaks from one model into the next, and a crash (out of memory, a
segfault) costs one model only. The parent, which must not import TensorFlow, writes
the job as JSON into a temporary folder and starts::

    python -m imagenet_bench.keras_worker FOLDER/job.json

(``imagenet_bench.keras_worker`` is a shim beside this subpackage, so the command line stays as it was).

The child writes its results into the same folder: preds.npy, probs.npy (and
all_probs.npy), result.json (what the manifest records about the run), or
error.json when it fails: the error as a record (``errors.to_record``: kind "image"
with the file and reason, "no space" with the folder, file and bytes, "usage" or "error"
with a message) and the traceback. A full disk in the job folder (the temporary folder's)
is named by the parent as TMPDIR; where even the record cannot be written, the exit status
``EXIT_NO_SPACE`` says it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..base import atomic, errors, memory
from ..datasets.path_list import PathList
from . import child_process

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the repository, on the child's PYTHONPATH
# The model process's exit status when its job folder's disk is full and even the error record
# cannot be written (errno ENOSPC's number; a Python process exits 1 on an exception).
EXIT_NO_SPACE = 28


class WorkerError(RuntimeError):
    """A model failed in its child process; the message is the child's one-line reason."""


# --- parent side (no TensorFlow) --------------------------------------------------------------


def launch(job: dict[str, Any], gpu: str | None = None, verbose: bool = False) -> dict[str, Any]:
    """Run one job in a child process; return its arrays and result record.

    gpu: the CUDA_VISIBLE_DEVICES value for the child (None: inherit). The child's
    progress bar and messages go straight to this process's stderr. A failure in the
    child is raised here: ImageError for an image that cannot be decoded, UsageError for
    other bad input (a weights file that does not fit), WorkerError otherwise.
    """
    with child_process.job_folder(job["model"]) as folder:
        return _launched(folder, job, gpu, verbose)


CUDA_CACHE_MAXSIZE = 4 * 2**30  # bytes: the driver's default (256 MiB) holds few models' kernels


def child_env(gpu: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """A model process's environment: its GPU, and a persistent, large compiled-kernel cache.
    TensorFlow 2.21 ships H100/H200 (sm_90) kernels only as PTX, which the driver compiles at
    a model's first use, for minutes; every model is a fresh process, so without a cache that
    outlives it (and holds them all) each model would compile again. The caller's settings win."""
    env = dict(environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("CUDA_CACHE_MAXSIZE", str(CUDA_CACHE_MAXSIZE))
    cache_home = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    env.setdefault("CUDA_CACHE_PATH", str(cache_home / "imagenet_bench" / "cuda-kernels"))
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


def _launched(folder: Path, job: dict[str, Any], gpu: str | None, verbose: bool) -> dict[str, Any]:
    job_path = folder / "job.json"
    data = json.dumps({**job, "out": str(folder), "gpu": gpu}).encode()
    try:
        with atomic.full_disk_reported(job_path, len(data)):
            job_path.write_bytes(data)
    except errors.NoSpaceError as exc:
        raise child_process.temporary_folder_full(exc, f"the job file for {job['model']}", job["model"]) from None
    returncode = child_process.run(
        [sys.executable, "-m", "imagenet_bench.keras_worker", str(job_path)], child_env(gpu, os.environ)
    )
    error_path = folder / "error.json"
    if error_path.exists():
        error = json.loads(error_path.read_text())
        if verbose and error.get("traceback"):
            print(error["traceback"], file=sys.stderr, end="")
        raised = errors.from_record(error, WorkerError)
        if isinstance(raised, errors.NoSpaceError) and Path(raised.folder) == folder:  # its job folder
            writing = f"{raised.writing} of the model process for {job['model']}"
            raise child_process.temporary_folder_full(raised, writing, job["model"])
        raise raised
    result_path = folder / "result.json"
    if returncode == EXIT_NO_SPACE and not result_path.exists():  # no space even for the error record
        raise child_process.temporary_folder_full(
            errors.NoSpaceError(folder, "", free=errors.free_bytes(folder)),
            f"the outputs or the error record of the model process for {job['model']}",
            job["model"],
        )
    if returncode != 0 or not result_path.exists():
        raise WorkerError(
            f"worker process for {job['model']} exited with status {returncode} "
            "without a result (killed, out of memory, or crashed)"
        )
    result: dict[str, Any] = json.loads(result_path.read_text())
    result["preds"] = np.load(folder / "preds.npy", allow_pickle=False)
    result["probs"] = np.load(folder / "probs.npy", allow_pickle=False)
    all_probs = folder / "all_probs.npy"
    result["all_probs"] = np.load(all_probs, allow_pickle=False) if all_probs.exists() else None
    return result


# --- child side ------------------------------------------------------------------------------

# TensorFlow's start-up lines that TF_CPP_MIN_LOG_LEVEL cannot silence (absl's INFO and WARNING,
# written before its log is set up), and its cuInit failure on a machine without a GPU.
START_UP_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\)|[IW]\d{4} \d\d:\d\d:\d\d"
    rb"|E\d{4} .*failed call to cuInit)"
)


@contextlib.contextmanager
def _start_up_noise_held_back(verbose: bool) -> Iterator[None]:
    """Without -v, hold back what TensorFlow writes to stderr (file descriptor 2, below Python)
    while it starts, and pass on only the lines that are not start-up noise; with -v, all.

    The cuInit line is noise only when no GPU was asked for: with -g/--gpus (the parent
    checked that the GPU exists) a failed cuInit means the model would run on the CPU.
    """
    gpu_asked = bool(os.environ.get("CUDA_VISIBLE_DEVICES"))
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in held:
                if not START_UP_NOISE.match(line) or (gpu_asked and b"cuInit" in line):
                    os.write(2, line)


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Build the model, run it over the job's images, return arrays and the result record."""
    import time

    from ..datasets.class_subset import ClassSubset
    from ..datasets.preprocessing import Preprocess
    from ..models import sources
    from . import keras_predict

    entry = sources.find(job["source"]).registry().by_id()[job["model"]]
    entry = entry.with_weights(job.get("weights_folder") or job.get("weights_file"))
    # the parent's preprocessing, with the test set's image step in it; else the entry's own (KerasHub's converter)
    preprocess = (
        Preprocess.from_record(job["preprocess"])
        if job.get("preprocess")
        else sources.preprocess_for(entry, job["protocol"])
    )
    paths = PathList(Path(p) for p in job.pop("paths"))  # compact: kept to the end (path_list)
    with _start_up_noise_held_back(job.get("verbose", False)):
        numerics = keras_predict.configure(job["tf32"])  # imports TensorFlow, finds the GPUs
    if job.get("gpu") is not None:
        keras_predict.require_gpu(job["gpu"])
    start = time.perf_counter()
    model, weights = entry.build(job.get("weights_file"))
    numerics["jit_compile"] = keras_predict.set_jit_compile(model, job["jit_compile"])
    numerics["dtype"] = keras_predict.dtype_of(model)  # what the layers run in, not what was asked
    build_s = time.perf_counter() - start
    preprocess_input = entry.preprocess_input_function(preprocess)
    out = keras_predict.predict(
        model,
        paths,
        preprocess,
        preprocess_input,
        job["batch_size"],
        job["topk"],
        job["save_all_probs"],
        job["threads"],
        desc=job["model"],
        position=job.get("position"),
        pixel_cache=job.get("pixel_cache"),
        subset=ClassSubset.from_record(job.get("class_subset")),
    )
    result = {
        "framework": keras_predict.framework(),
        "weights": weights,
        "params": int(model.count_params()),
        "numerics": numerics,
        "device": keras_predict.device(),
        "throughput": {**out["throughput"], "build_s": round(build_s, 3)},
        "preds": out["preds"],
        "probs": out["probs"],
        "all_probs": out["all_probs"],
    }
    if job.get("check_batching"):
        result["check_batching"] = keras_predict.check_batching(
            model, paths[: job["check_batching"]], preprocess, preprocess_input, job["check_batch_size"], job["threads"]
        )
    return result


OUTPUT_FILES = ("preds.npy", "probs.npy", "all_probs.npy", "result.json")


def main(argv: list[str]) -> int:
    child_process.end_with_parent()
    memory.keep_large_blocks_out_of_the_heap()
    job_path = Path(argv[0])
    job = json.loads(job_path.read_text())
    errors.install_warning_display()
    errors.show_library_messages(job.get("verbose", False))
    out = Path(job["out"])
    try:
        result = run(job)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return _report(out, exc, traceback.format_exc())
    try:
        _save(out, result)
    except errors.NoSpaceError as exc:  # the job folder's disk is full: the parent names it
        for name in OUTPUT_FILES:  # what was written frees the space the error record needs
            (out / name).unlink(missing_ok=True)
        free = None if exc.quota else errors.free_bytes(out)  # now that the partial outputs are gone
        return _report(out, errors.NoSpaceError(out, exc.writing, exc.needed, exc.quota, free=free), "")
    return 0


def _save(out: Path, result: dict[str, Any]) -> None:
    """The outputs into the job folder, result.json last (the parent reads them only then)."""
    for name in ("preds", "probs", "all_probs"):
        array = result.pop(name)
        if array is not None:
            path = out / f"{name}.npy"
            with atomic.full_disk_reported(path, atomic.npy_bytes(array)), open(path, "wb") as handle:
                atomic.write_npy(handle, array)
    atomic.write_text(out / "result.json", json.dumps(result))


def _report(out: Path, exc: BaseException, trace: str) -> int:
    """Write the error record the parent reads (exit status 1); with no space even for that,
    the exit status says it (EXIT_NO_SPACE), so the parent still names the cause."""
    if isinstance(exc, OSError) and errors.full_disk(exc) and isinstance(exc.filename, str):
        exc = errors.NoSpaceError.of(exc, Path(exc.filename).parent, Path(exc.filename).name)  # e.g. a download
    record = {**errors.to_record(exc), "traceback": trace}
    try:
        atomic.write_text(out / "error.json", json.dumps(record))
    except errors.NoSpaceError:
        try:  # without the traceback, the record may fit
            atomic.write_text(out / "error.json", json.dumps(errors.to_record(exc)))
        except errors.NoSpaceError:
            return EXIT_NO_SPACE
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
