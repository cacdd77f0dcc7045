"""Building PyTorch models: torchvision's with their weights (downloaded or from a file),
and --model-spec models; running them is ``predict.torch_predict``'s."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import pickle
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..base.errors import UsageError
from ..datasets.preprocessing import Preprocess

# Leading bytes of weights files of other kinds: refused by name, not by the loader's text.
FOREIGN_WEIGHTS = {b"\x89HDF\r\n\x1a\n": "an HDF5 file (Keras weights, .h5)", b"\x93NUMPY": "a NumPy .npy array"}
WEIGHTS_WANTED = "a PyTorch state dict saved by torch.save (.pth, .pt)"


def refuse_foreign_weights(path: Path, wanted: str = WEIGHTS_WANTED) -> None:
    """UsageError for a --weights-file of another framework, named by its leading bytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise UsageError(f"{path}: --weights-file cannot be read ({exc.strerror})") from None
    for magic, kind in FOREIGN_WEIGHTS.items():
        if head.startswith(magic):
            raise UsageError(f"{path}: --weights-file is {kind}, not {wanted}")


def load_state_dict_file(path: Path) -> dict[str, Any]:
    if not Path(path).is_file():
        raise UsageError(f"{path}: --weights-file does not exist")
    refuse_foreign_weights(path)
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # torch's text advises weights_only=False: the one thing not to do
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        what = next((lines[i + 1] for i, line in enumerate(lines[:-1]) if line.endswith("error:")), "")
        raise UsageError(
            f"{path}: --weights-file holds more than tensors ({what or 'a pickled object'}), which loading could run "
            "as code, so it is refused; if you trust it, load it yourself and save its state_dict() with torch.save"
        ) from None
    except Exception as exc:  # torch's text runs to several lines: keep the first
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"{path}: --weights-file is not {WEIGHTS_WANTED} ({type(exc).__name__}: {first})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def model_from_spec(spec: str) -> tuple[torch.nn.Module, Preprocess]:
    """Call ``MODULE:FUNCTION`` or ``file.py:FUNCTION``: (model, its Preprocess)."""
    target, _, function = spec.rpartition(":")
    if not target or not function:
        raise UsageError(f"--model-spec {spec!r}: expected MODULE:FUNCTION or path/to/file.py:FUNCTION")
    try:
        if target.endswith(".py"):
            module_spec = importlib.util.spec_from_file_location(Path(target).stem, target)
            if module_spec is None or module_spec.loader is None or not Path(target).exists():
                raise FileNotFoundError(target)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_spec.name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        made = getattr(module, function)()
    except Exception as exc:  # the user's code may fail in any way
        raise UsageError(f"--model-spec {spec!r}: cannot load ({type(exc).__name__}: {exc})") from None
    if (
        not isinstance(made, tuple)
        or len(made) != 2
        or not isinstance(made[0], torch.nn.Module)
        or not isinstance(made[1], Preprocess)
    ):
        raise UsageError(
            f"--model-spec {spec!r}: {function}() must return (torch.nn.Module, "
            "imagenet_bench.datasets.preprocessing.Preprocess)"
        )
    return made


def _key_mismatch(exc: RuntimeError, shown: int = 3) -> str:
    """torch's load_state_dict error on one line, naming the keys: for each kind (missing,
    unexpected) the count and the first few, then the first size mismatches."""
    parts, mismatches = [], []
    for line in (line.strip() for line in str(exc).splitlines()[1:]):
        kind, sep, keys = line.partition(" in state_dict: ")
        if sep:
            names = re.findall(r'"([^"]+)"', keys)
            more = f", ... ({len(names)} in all)" if len(names) > shown else ""
            parts.append(f"{kind}: {', '.join(names[:shown])}{more}")
        elif line:
            mismatches.append(line.rstrip("."))
    parts += mismatches[:shown] + ([f"... ({len(mismatches)} size mismatches)"] if len(mismatches) > shown else [])
    return "; ".join(parts) or str(exc).splitlines()[0]


@contextlib.contextmanager
def _local_state_dict(weights: Any, state: dict[str, Any]) -> Iterator[None]:
    """Make ``weights.get_state_dict()`` return ``state`` instead of downloading.

    The builder is then called with the weights object itself, so everything it
    derives from them (ViT's image size, GoogLeNet/Inception's transform_input and
    aux-logit removal, quantization) is the same as for a download, and the
    builder's own strict load checks that the file fits.
    """
    cls = type(weights)
    original = cls.get_state_dict
    cls.get_state_dict = lambda self, *args, **kwargs: state
    try:
        yield
    finally:
        cls.get_state_dict = original


def build_torchvision(entry: Any, weights_file: Path | None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build a registry entry with its weights: torchvision's download, or a local state dict.

    Returns the model and the manifest's ``weights`` record (id, source, sha256).
    """
    from torchvision import models  # type: ignore[import-untyped]  # torchvision ships no py.typed marker

    from ..outputs.predfiles import sha256_unchanged

    if entry.quantized:
        torch.backends.quantized.engine = entry.backend
    kwargs = {"quantize": True} if entry.quantized else {}
    record: dict[str, Any] = {"id": entry.weights_name, "url": entry.weights.url}
    if weights_file is not None:
        state = load_state_dict_file(weights_file)
        try:
            with _local_state_dict(entry.weights, state):
                model = models.get_model(entry.builder, weights=entry.weights, **kwargs)
        except RuntimeError as exc:
            raise UsageError(f"{weights_file}: does not fit {entry.id} ({_key_mismatch(exc)})") from None
        record.update(source="file", path=str(weights_file), sha256=sha256_unchanged(weights_file))
        return model, record
    try:
        model = models.get_model(entry.builder, weights=entry.weights, **kwargs)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a bad hash is a RuntimeError
        checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
        raise RuntimeError(
            f"cannot download {entry.weights.url} ({exc}); put that file in {checkpoints} "
            "(TORCH_HOME) or pass --weights-file"
        ) from None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(entry.weights.url).name
    record.update(
        source="torchvision download", path=str(cached), sha256=sha256_unchanged(cached) if cached.exists() else None
    )
    return model, record
