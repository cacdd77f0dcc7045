"""Building a keras.applications model with its ImageNet weights (imports Keras).

The keras.applications side of the Keras script: what only this source needs to build a
model (its constructor by name, EfficientNet's missing Rescaling layer, Keras's weight
download and cache, a local weights file checked to fit) and its families' own
``preprocess_input``. ``keras_registry.KerasEntry.build`` calls it in the model's child
process; ``keras_predict`` runs any built model and knows no source by name.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..base.errors import UsageError
from ..outputs.predfiles import sha256_file


class Application(Protocol):
    """What building needs of a ``keras_registry.KerasEntry`` (the registry imports this module)."""

    @property
    def id(self) -> str: ...

    @property
    def application(self) -> str: ...

    @property
    def family(self) -> str: ...

    @property
    def input_size(self) -> int: ...

    @property
    def kwargs(self) -> dict[str, Any]: ...

    @property
    def extra_rescaling(self) -> bool: ...


def _keras() -> Any:
    import keras

    return keras


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
    def spy(fname: str | None = None, origin: str | None = None, *args: Any, **kwargs: Any) -> Any:
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

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:  # ``layer`` is the clone: match by name
        out = layer(*args, **kwargs)
        if isinstance(layer, keras.layers.Normalization) and layer.name == normalizations[0].name:
            out = keras.layers.Rescaling([1.0 / math.sqrt(s) for s in stddev])(out)
        return out

    clone = keras.models.clone_model(model, call_function=call)
    if len(clone.layers) != len(model.layers) + 1:
        raise RuntimeError(f"{model.name}: could not add the ImageNet Rescaling layer")
    return clone


def build(
    entry: Application, weights_file: str | Path | None = None, weights: str | None = "imagenet"
) -> tuple[Any, dict[str, Any]]:
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
        record.update(
            source="file",
            path=str(Path(weights_file).resolve()),
            sha256=sha256_file(weights_file),
            extra_rescaling_added=entry.extra_rescaling,
        )
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
                "or pass --weights-file"
            ) from None
    record.update(source="keras download")
    if calls:
        path = calls[-1].get("path")
        record.update(
            url=calls[-1]["url"], path=path, sha256=sha256_file(path) if path and os.path.isfile(path) else None
        )
    return model, record


def preprocess_input_function(entry: Application) -> Callable[[np.ndarray], np.ndarray]:
    """The family module's own preprocess_input (keras.applications.<family>)."""
    function: Callable[[np.ndarray], np.ndarray] = importlib.import_module(
        f"keras.applications.{entry.family}"
    ).preprocess_input
    return function
