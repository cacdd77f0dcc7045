"""Building one Keras application with its weights and running it over a dataset.

Imports TensorFlow and Keras: only the Keras worker (the child process that runs one
model, ``keras_worker``) and the benchmark load this module, never the parent script.

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

import contextlib
import functools
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

import numpy as np  # noqa: E402

from . import class_subset, images, runner  # noqa: E402
from .class_subset import ClassSubset  # noqa: E402
from .errors import UsageError  # noqa: E402
from .keras_registry import KerasEntry  # noqa: E402
from .predfiles import sha256_file  # noqa: E402
from .preprocessing import Preprocess  # noqa: E402

def _tf():
    import tensorflow as tf

    return tf


def _keras():
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
        raise UsageError(f"KERAS_BACKEND={keras.backend.backend()}: this script runs Keras on TensorFlow "
                         "(its numerics switches are TensorFlow's); unset KERAS_BACKEND")
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


def framework() -> dict[str, Any]:
    tf, keras = _tf(), _keras()
    return {"name": "keras", "keras": keras.__version__, "tensorflow": tf.__version__,
            "backend": keras.backend.backend()}


def device() -> dict[str, Any]:
    tf = _tf()
    gpus = tf.config.get_visible_devices("GPU")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not gpus:
        return {"name": "cpu", "model": "cpu", "cuda_visible_devices": visible}
    details = tf.config.experimental.get_device_details(gpus[0])
    return {"name": "/GPU:0", "model": details.get("device_name", "gpu"), "cuda_visible_devices": visible}


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: $KERAS_HOME/models, default ~/.keras/models."""
    try:
        from keras.src.backend.config import keras_home

        home = keras_home()
    except ImportError:  # pragma: no cover - private path moved in another Keras
        home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


@contextlib.contextmanager
def _recording_downloads() -> Iterator[list[dict[str, Any]]]:
    """Record each weights download Keras attempts (file, URL, cached path or error).

    Keras applications fetch their weights through keras.src.utils.file_utils.get_file;
    wrapping it for the duration of one build tells the manifest which file was used and
    lets a failed download name its URL. Nothing else changes.
    """
    calls: list[dict[str, Any]] = []
    try:
        from keras.src.utils import file_utils
    except ImportError:  # pragma: no cover
        yield calls
        return
    original = file_utils.get_file

    @functools.wraps(original)
    def spy(fname=None, origin=None, *args, **kwargs):
        call: dict[str, Any] = {"file": fname, "url": origin}
        calls.append(call)
        try:
            call["path"] = original(fname, origin, *args, **kwargs)
        except BaseException as exc:
            call["error"] = " ".join(str(exc).split()) or type(exc).__name__
            raise
        return call["path"]

    file_utils.get_file = spy
    try:
        yield calls
    finally:
        file_utils.get_file = original


def _with_imagenet_rescaling(model: Any) -> Any:
    """EfficientNet B0-B7: add the Rescaling layer that weights="imagenet" adds.

    keras/src/applications/efficientnet.py, built with weights="imagenet", puts
    Rescaling(1 / sqrt(IMAGENET_STDDEV_RGB)) right after its Normalization layer (the
    original implementation divides by the variance, tensorflow/tensorflow#49930); built
    with weights=None it does not, and loading the ImageNet weights from a file then
    gives another network. The layer has no weights, so the file loads either way.
    """
    keras = _keras()
    try:
        from keras.src.applications.efficientnet import IMAGENET_STDDEV_RGB as stddev
    except ImportError:  # pragma: no cover
        stddev = [0.229, 0.224, 0.225]
    normalizations = [layer for layer in model.layers if isinstance(layer, keras.layers.Normalization)]
    if len(normalizations) != 1:
        raise RuntimeError(f"{model.name}: expected one Normalization layer, found {len(normalizations)}")

    def call(layer, *args, **kwargs):  # ``layer`` is the clone: match by name
        out = layer(*args, **kwargs)
        if isinstance(layer, keras.layers.Normalization) and layer.name == normalizations[0].name:
            out = keras.layers.Rescaling([1.0 / math.sqrt(s) for s in stddev])(out)
        return out

    clone = keras.models.clone_model(model, call_function=call)
    if len(clone.layers) != len(model.layers) + 1:
        raise RuntimeError(f"{model.name}: could not add the ImageNet Rescaling layer")
    return clone


def build(entry: KerasEntry, weights_file: str | Path | None = None,
          weights: str | None = "imagenet") -> tuple[Any, dict[str, Any]]:
    """Build a registry entry at its native input size with its ImageNet weights.

    weights_file: a local copy of the weights (offline machines); the network is the
    one weights="imagenet" builds. weights=None with no file: random weights (tests).
    Returns the model and the manifest's ``weights`` record.
    """
    keras = _keras()
    constructor = getattr(keras.applications, entry.application)
    shape = (entry.input_size, entry.input_size, 3)
    record: dict[str, Any] = {"id": entry.id, "application": entry.application, "kwargs": entry.kwargs}
    if weights_file is not None:
        model = constructor(weights=None, input_shape=shape, **entry.kwargs)
        if entry.extra_rescaling:
            model = _with_imagenet_rescaling(model)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.load_weights(str(weights_file))
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UsageError(f"{weights_file}: does not fit {entry.id} ({first})") from None
        # Keras warns, rather than fails, when parts of a file match nothing (those layers keep
        # their random initial weights): that is a file of another network too.
        skipped = [str(w.message) for w in caught if "Skipping" in str(w.message) or "not be loaded" in str(w.message)]
        if skipped:
            raise UsageError(f"{weights_file}: does not fit {entry.id} ({skipped[0].splitlines()[0]})")
        record.update(source="file", path=str(Path(weights_file).resolve()), sha256=sha256_file(weights_file),
                      extra_rescaling_added=entry.extra_rescaling)
        return model, record
    if weights is None:
        model = constructor(weights=None, input_shape=shape, **entry.kwargs)
        record.update(source="random (weights=None)")
        return model, record
    with _recording_downloads() as calls:
        try:
            model = constructor(weights=weights, input_shape=shape, **entry.kwargs)
        except Exception:
            failed = [call for call in calls if "error" in call]
            if not failed:
                raise
            call = failed[-1]
            raise RuntimeError(
                f"cannot download {call['url']} ({call['error']}); Keras caches weights in "
                f"{keras_cache_dir()} (set KERAS_HOME to move it): put {call['file']} there, "
                "or pass --weights-file") from None
    record.update(source="keras download")
    if calls:
        path = calls[-1].get("path")
        record.update(url=calls[-1]["url"], path=path,
                      sha256=sha256_file(path) if path and os.path.isfile(path) else None)
    return model, record


def preprocess_input_function(entry: KerasEntry) -> Callable[[np.ndarray], np.ndarray]:
    """The family module's own preprocess_input (keras.applications.<family>)."""
    import importlib

    return importlib.import_module(f"keras.applications.{entry.family}").preprocess_input


def model_input(pixels: np.ndarray, preprocess_input: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """uint8 N x H x W x 3 pixels -> the model's input.

    preprocess_input works in place on float arrays, so it gets a fresh float32 copy,
    once: the pixels themselves are never modified, and no array is normalised twice.
    """
    return preprocess_input(np.array(pixels, dtype=np.float32, copy=True))


def class_probabilities(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's 1000 softmax outputs for a batch (Keras applications end in softmax)."""
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


def predict(model: Any, paths: Sequence[Path], preprocess: Preprocess,
            preprocess_input: Callable[[np.ndarray], np.ndarray], batch_size: int, k: int,
            save_all_probs: bool = False, threads: int = 2, desc: str = "",
            position: int | None = None, pixel_cache: str | None = None,
            subset: ClassSubset | None = None) -> dict[str, Any]:
    """Run ``model`` over ``paths``: top-k preds/probs, optional all probs, timings.

    With ``pixel_cache`` (a pixel cache entry's pixels.npy, filled by the parent) the
    pixels are read from it instead of decoding the images again. With ``subset``, every
    output is restricted to those classes before the top-k (``scored``)."""
    from tqdm import tqdm

    preds, probs, all_probs = [], [], []
    model_seconds = 0.0
    start = time.perf_counter()
    bar = tqdm(total=len(paths), desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True, leave=False,
               position=position)
    try:
        batches = (images.cached_batches(pixel_cache, len(paths), batch_size) if pixel_cache
                   else images.decode_batches(paths, preprocess, batch_size, threads))
        for pixels in batches:
            t0 = time.perf_counter()
            p = class_probabilities(model, model_input(pixels, preprocess_input))
            model_seconds += time.perf_counter() - t0
            top_i, top_p, p = scored(p, k, subset)
            preds.append(top_i)
            probs.append(top_p)
            if save_all_probs:
                all_probs.append(p)
            bar.update(len(pixels))
    finally:
        bar.close()
    wall = time.perf_counter() - start
    n = len(paths)
    return {
        "preds": np.concatenate(preds).astype(np.int64),
        "probs": np.concatenate(probs).astype(np.float32),
        "all_probs": np.concatenate(all_probs) if save_all_probs else None,
        "throughput": {"wall_time_s": round(wall, 3), "images_per_s": round(n / wall, 2),
                       "model_time_s": round(model_seconds, 3),
                       "model_images_per_s": round(n / model_seconds, 2) if model_seconds else None},
    }


def check_batching(model: Any, paths: Sequence[Path], preprocess: Preprocess,
                   preprocess_input: Callable[[np.ndarray], np.ndarray], batch_size: int,
                   threads: int = 2) -> dict[str, Any]:
    """Run ``paths`` one image at a time and in batches of ``batch_size``; compare.

    Returns top-1 agreement and the largest absolute difference over all 1000
    probabilities, with the rows (and files) whose top-1 differs.
    """
    agree, max_diff, differing = 0, 0.0, []
    row = 0
    for pixels in images.decode_batches(paths, preprocess, batch_size, threads):
        batched = class_probabilities(model, model_input(pixels, preprocess_input))
        for i in range(len(pixels)):
            single = class_probabilities(model, model_input(pixels[i:i + 1], preprocess_input))[0]
            max_diff = max(max_diff, float(np.max(np.abs(single - batched[i]))))
            if int(np.argmax(single)) == int(np.argmax(batched[i])):
                agree += 1
            else:
                differing.append({"row": row, "file": Path(paths[row]).name,
                                  "one_at_a_time": int(np.argmax(single)), "batched": int(np.argmax(batched[i])),
                                  "top2_gap": float(np.diff(np.sort(single)[-2:])[0])})
            row += 1
    return {"images": row, "batch_size": batch_size, "top1_agree": agree, "top1_differ": row - agree,
            "differing": differing[:100], "max_abs_prob_diff": max_diff}
