"""Running one built Keras model over a dataset, whichever source built it.

Imports TensorFlow and Keras: only the Keras worker (the child process that runs one
model, ``keras_worker``) and the benchmarks load this module, never the parent script.
It knows no source by name: the worker builds the model through its registry entry
(``entry.build``: ``keras_applications`` for keras.applications, KerasHub's own API for
KerasHub) and gets from the entry the step between pixels and model
(``entry.preprocess_input_function``).

One call for both modes: every batch, of 1 image (the default, one image at a time)
or of N (``-b N``), goes through ``model.predict_on_batch``, i.e. Keras's compiled
predict function (a ``tf.function``; XLA only with ``--jit-compile``, set explicitly,
never Keras's "auto"). The two modes therefore run the same graph and differ only in
the batch size, which is what ``--check-batching`` measures. BatchNorm uses its moving
statistics in both (inference mode). Decoding and the protocol's geometry run in a
few threads ahead of the model; only the top-k of each batch is kept, never an
N x 1000 array, unless all probabilities are asked for.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

import numpy as np

from ..base import test_pause
from ..base.errors import StopsTheRun, UsageError
from ..datasets import class_subset, images
from ..datasets.class_subset import ClassSubset
from ..datasets.preprocessing import Preprocess
from . import runner
from .top_k_rows import TopKRows


def _tf() -> Any:
    import tensorflow as tf

    return tf


def _keras() -> Any:
    import keras

    return keras


def configure(tf32: bool = False) -> dict[str, Any]:
    """Set the numeric switches before any model is built; return what the manifest records.

    TF32: TensorFlow uses it for float32 matmuls/convolutions on Ampere and later GPUs by
    default; here it is off unless asked for. With several GPUs visible (no -g/--gpus), only
    the first is used, so that TensorFlow does not take memory on the others. jit_compile
    is per model: ``set_jit_compile`` returns what the model took.
    """
    keras = _keras()
    if keras.backend.backend() != "tensorflow":
        raise UsageError(
            f"KERAS_BACKEND={keras.backend.backend()}: this script runs Keras on TensorFlow "
            "(its numerics switches are TensorFlow's); unset KERAS_BACKEND"
        )
    tf = _tf()
    tf.config.experimental.enable_tensor_float_32_execution(bool(tf32))
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        tf.config.set_visible_devices(gpus[:1], "GPU")
    return {
        "dtype": "float32",
        "tf32": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
        "call": "model.predict_on_batch (compiled tf.function, inference mode)",
    }


def require_gpu(asked: str) -> None:
    """Refuse to run a model on the CPU when -g/--gpus asked for a GPU and TensorFlow lists
    none: the usual cause is a TensorFlow built for CUDA 12 in the environment of a torch built
    for CUDA 13, whose CUDA 12 libraries are nowhere (README, "GPU"). Every model would meet
    it, so it stops the run. IMAGENET_BENCH_ASSUME_GPUS (the tests' stand-in for GPUs) lets
    the model run on the CPU."""
    tf = _tf()
    if tf.config.list_physical_devices("GPU") or os.environ.get("IMAGENET_BENCH_ASSUME_GPUS"):
        return
    cuda = tf.sysconfig.get_build_info().get("cuda_version") or "none"
    raise StopsTheRun(
        f"-g/--gpus: TensorFlow {tf.__version__} (built for CUDA {cuda}) lists no GPU with "
        f"CUDA_VISIBLE_DEVICES={asked}, so the models would run on the CPU: run the Keras script in "
        "its own environment made with pip install -r requirements-keras-gpu.txt (README, 'GPU'), "
        "or leave out -g/--gpus"
    )


def dtype_of(model: Any) -> str:
    """The compute dtypes the model's layers run in, as the manifest records them: "float32",
    or every one found ("bfloat16, float32"), rather than the float32 asked for."""
    found = {
        str(layer.dtype_policy.compute_dtype)
        for layer in model.layers
        if hasattr(layer, "dtype_policy") and type(layer).__name__ != "InputLayer"  # it computes nothing
    }
    return ", ".join(sorted(found)) or str(model.dtype_policy.compute_dtype)


def framework() -> dict[str, Any]:
    tf, keras = _tf(), _keras()
    return {
        "name": "keras",
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "backend": keras.backend.backend(),
    }


def device() -> dict[str, Any]:
    tf = _tf()
    gpus = tf.config.get_visible_devices("GPU")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not gpus:
        return {"name": "cpu", "model": "cpu", "cuda_visible_devices": visible}
    details = tf.config.experimental.get_device_details(gpus[0])
    return {"name": "/GPU:0", "model": details.get("device_name", "gpu"), "cuda_visible_devices": visible}


def model_input(pixels: np.ndarray, preprocess_input: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """uint8 N x H x W x 3 pixels -> the model's input.

    preprocess_input works in place on float arrays, so it gets a fresh float32 copy,
    once: the pixels themselves are never modified, and no array is normalised twice.
    """
    return preprocess_input(np.array(pixels, dtype=np.float32, copy=True))


def class_probabilities(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's 1000 softmax outputs for a batch (built with a softmax output: keras.applications
    by default, KerasHub with activation="softmax")."""
    return np.asarray(model.predict_on_batch(x), dtype=np.float32)


def set_jit_compile(model: Any, jit_compile: bool) -> bool:
    """Set jit_compile explicitly (Keras's default "auto" turns XLA on where it can).

    Returns the setting the model took: Keras falls back to False, with a warning, for
    a model XLA cannot compile, so the manifest records this, not the request.
    """
    model.jit_compile = bool(jit_compile)
    model.predict_function = None  # rebuilt on the next call with the setting above
    return bool(model.jit_compile)


def scored(probs: np.ndarray, k: int, subset: ClassSubset | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(top-k classes, their probabilities, all probabilities) of a batch of the model's
    softmax outputs; with a class subset, renormalised over it first (``class_subset``:
    the softmax of log p over the subset, i.e. of the logits, up to float error)."""
    if subset is None:
        return (*runner.topk(probs, k), probs)
    restricted = class_subset.restrict_probs(probs, subset)
    return (*class_subset.topk_in_subset(restricted, subset, k), class_subset.expand(restricted, subset))


def predict(
    model: Any,
    paths: Sequence[Path],
    preprocess: Preprocess,
    preprocess_input: Callable[[np.ndarray], np.ndarray],
    batch_size: int,
    k: int,
    save_all_probs: bool = False,
    threads: int = 2,
    desc: str = "",
    position: int | None = None,
    pixel_cache: str | None = None,
    subset: ClassSubset | None = None,
) -> dict[str, Any]:
    """Run ``model`` over ``paths``: top-k preds/probs, optional all probs, timings.

    With ``pixel_cache`` (a pixel cache entry's pixels.npy, filled by the parent) the
    pixels are read from it instead of decoding the images again. With ``subset``, every
    output is restricted to those classes before the top-k (``scored``)."""
    from tqdm import tqdm

    rows = TopKRows(len(paths), save_all_probs)
    model_seconds, first_s, first_n = 0.0, None, 0
    start = time.perf_counter()
    bar = tqdm(
        total=len(paths), desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True, leave=False, position=position
    )
    try:
        batches = (
            images.cached_batches(pixel_cache, len(paths), batch_size)
            if pixel_cache
            else images.decode_batches(paths, preprocess, batch_size, threads)
        )
        for pixels in batches:
            t0 = time.perf_counter()
            p = class_probabilities(model, model_input(pixels, preprocess_input))
            model_seconds += time.perf_counter() - t0
            if first_s is None:  # the predict function traced (and on a GPU, kernels compiled): paid once
                first_s, first_n = model_seconds, len(pixels)
            rows.add(*scored(p, k, subset))
            bar.update(len(pixels))
            if rows.filled == len(pixels):
                test_pause.wait_at("first-batch")
    finally:
        bar.close()
    wall = time.perf_counter() - start
    n = len(paths)
    preds, probs, all_probs = rows.arrays()
    return {
        "preds": preds,
        "probs": probs,
        "all_probs": all_probs,
        "throughput": {
            "wall_time_s": round(wall, 3),
            "images_per_s": round(n / wall, 2),
            "model_time_s": round(model_seconds, 3),
            "model_images_per_s": round(n / model_seconds, 2) if model_seconds else None,
            **runner.warm_up(n, model_seconds, first_s or 0.0, first_n),
            "models_in_pass": 1,
            "ranks": 1,
            "batch_size": batch_size,
        },
    }


def check_batching(
    model: Any,
    paths: Sequence[Path],
    preprocess: Preprocess,
    preprocess_input: Callable[[np.ndarray], np.ndarray],
    batch_size: int,
    threads: int = 2,
) -> dict[str, Any]:
    """Run ``paths`` one image at a time and in batches of ``batch_size``; compare.

    Returns top-1 agreement and the largest absolute difference over all 1000
    probabilities, with the rows (and files) whose top-1 differs.
    """
    agree, max_diff, differing = 0, 0.0, []
    row = 0
    for pixels in images.decode_batches(paths, preprocess, batch_size, threads):
        batched = class_probabilities(model, model_input(pixels, preprocess_input))
        for i in range(len(pixels)):
            single = class_probabilities(model, model_input(pixels[i : i + 1], preprocess_input))[0]
            max_diff = max(max_diff, float(np.max(np.abs(single - batched[i]))))
            if int(np.argmax(single)) == int(np.argmax(batched[i])):
                agree += 1
            else:
                differing.append(
                    {
                        "row": row,
                        "file": Path(paths[row]).name,
                        "one_at_a_time": int(np.argmax(single)),
                        "batched": int(np.argmax(batched[i])),
                        "top2_gap": float(np.diff(np.sort(single)[-2:])[0]),
                    }
                )
            row += 1
    return {
        "images": row,
        "batch_size": batch_size,
        "top1_agree": agree,
        "top1_differ": row - agree,
        "differing": differing[:100],
        "max_abs_prob_diff": max_diff,
    }
