"""KerasHub's ImageNet-1k image classifiers: one entry per preset, read from the installed package.

KerasHub (the ``keras-hub`` package) is where Keras's pre-trained models went after
keras.applications stopped growing. Its presets are registered in the package itself: each
model folder's ``__init__.py`` calls ``register_presets(<dict>, <Backbone>)`` with a dict
from its ``*_presets.py`` (name -> metadata and Kaggle handle), and ``ImageClassifier.presets``
is the union over the folders that define an ``ImageClassifier`` subclass. This module reads
those same files with ``ast`` (importing KerasHub would import TensorFlow, which the Keras
script's parent process never loads, and ``--list-models`` must work offline); a test checks
the result against the imported ``ImageClassifier.presets``.

Which presets run (``entries``) and which are left out, with the reason (``excluded``), is
decided from the published metadata alone:
  * a preset whose Kaggle handle names another preset's weights (three EfficientNet-EdgeTPU
    presets point at ``efficientnet_b1_ft_imagenet`` in KerasHub 0.32) is reported as
    mislabelled and not run;
  * a description that names ImageNet-1k training runs, unless it names only a larger label
    set (ImageNet-21k/22k/12k) without fine-tuning on ImageNet-1k;
  * everything else (segmentation encoders, the Gemma 3n vision encoder, ImageNet-21k
    backbones) is left out. The child process checks again on the preset itself: a task
    whose head has other than 1000 classes is refused.

Ids: ``keras_hub.<preset>`` (``keras_hub.resnet_50_imagenet``).

A preset's config, converter and weights live in its folder (``save_to_preset``'s layout,
downloaded from Kaggle through ``kagglehub`` or given with ``--weights-file ID=DIR``), so its
input size and its ``reference`` preprocessing are known only once the folder is there:
``PresetFiles`` reads them from the folder's JSON without TensorFlow.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.errors import UsageError
from ..datasets.preprocessing import Preprocess, common

SOURCE = "keras_hub"
PREFIX = "keras_hub."
SEED_2019_IDS: tuple[str, ...] = ()
NUM_CLASSES = 1000
PRESET_FILES = ("config.json", "task.json", "preprocessor.json", "metadata.json")

_ONE_K = re.compile(r"imagenet[- _]?1k|in1k", re.IGNORECASE)
_LARGER = re.compile(r"imagenet[- _]?(12|21|22)k|in(12|21|22)k", re.IGNORECASE)
_FINE_TUNED_1K = re.compile(r"fine[- ]tuned on (the )?imagenet[- _]?1k|_in1k$", re.IGNORECASE)
_SIZE = re.compile(r"(\d{2,3})x\1")


# --- the package's preset registry, read without importing it ------------------------------------


@dataclass(frozen=True)
class PresetInfo:
    """One preset as the installed KerasHub registers it."""

    name: str
    family: str  # keras_hub/src/models/<family>
    description: str
    params: int | None
    handle: str  # "kaggle://keras/resnetv1/keras/resnet_50_imagenet/3"


def package_dir() -> Path:
    spec = importlib.util.find_spec("keras_hub")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("KerasHub is not installed: pip install keras-hub (see requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def _defines_image_classifier(folder: Path) -> bool:
    pattern = re.compile(r"^class \w+\(ImageClassifier\):", re.MULTILINE)
    return any(pattern.search(path.read_text(encoding="utf-8")) for path in folder.glob("*.py"))


def _registered_dicts(init: Path) -> list[tuple[str, str]]:
    """(module, dict name) of each register_presets(<dict>, ...) call in a model folder's __init__.py."""
    tree = ast.parse(init.read_text(encoding="utf-8"))
    imported = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                imported[alias.asname or alias.name] = (node.module, alias.name)
    found = []
    for call in ast.walk(tree):
        if (
            isinstance(call, ast.Call)
            and getattr(call.func, "id", None) == "register_presets"
            and call.args
            and isinstance(call.args[0], ast.Name)
            and call.args[0].id in imported
        ):
            found.append(imported[call.args[0].id])
    return found


def _module_dict(root: Path, module: str, name: str) -> dict[str, Any]:
    """A module-level dict literal, ``**other`` entries (another dict of the module) merged in."""
    path = root.parent / (module.replace(".", "/") + ".py")
    assigned = {
        target.id: node.value
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Dict):
            out: dict[str, Any] = {}
            for key, item in zip(node.keys, node.values, strict=True):  # a key None per **other
                if key is None:  # {**other}
                    out.update(value(assigned[item.id]) if isinstance(item, ast.Name) else {})
                else:
                    out[ast.literal_eval(key)] = ast.literal_eval(item)
            return out
        return ast.literal_eval(node)

    if name not in assigned:
        raise UsageError(f"{path}: no {name} found; is keras-hub 0.32 installed?")
    found: dict[str, Any] = value(assigned[name])
    return found


@functools.cache
def classifier_presets() -> tuple[PresetInfo, ...]:
    """Every preset registered for a backbone with an ImageClassifier, in the package's folder order."""
    root = package_dir()
    found = []
    for folder in sorted((root / "src" / "models").iterdir()):
        init = folder / "__init__.py"
        if not init.is_file() or not _defines_image_classifier(folder):
            continue
        for module, name in _registered_dicts(init):
            for preset, value in _module_dict(root, module, name).items():
                meta = value.get("metadata", {})
                found.append(
                    PresetInfo(
                        preset,
                        folder.name,
                        " ".join(str(meta.get("description", "")).split()),
                        meta.get("params"),
                        value.get("kaggle_handle", ""),
                    )
                )
    if not found:
        raise UsageError(f"{root}: no KerasHub image-classifier presets found; is keras-hub 0.32 installed?")
    return tuple(found)


def mislabelled(info: PresetInfo) -> str | None:
    """The other preset whose weights the handle names, if it names another."""
    parts = info.handle.removeprefix("kaggle://").split("/")
    named = parts[3] if len(parts) >= 4 else None
    return named if named and named != info.name else None


def left_out_reason(info: PresetInfo) -> str | None:
    """Why a registered classifier preset is not run (None: it runs)."""
    other = mislabelled(info)
    if other:
        return (
            f"mislabelled in KerasHub's metadata: its handle {info.handle} is the weights of {other}, "
            "not of this preset; not run (reported)"
        )
    text = f"{info.description} {info.name}"
    if _ONE_K.search(text) and (not _LARGER.search(text) or _FINE_TUNED_1K.search(text)):
        return None
    if _LARGER.search(text):
        return f"not an ImageNet-1k classifier (a larger label set, no 1000-class head): {info.description}"
    return f"not an ImageNet-1k classifier: {info.description or 'no description'}"


# --- a preset's folder --------------------------------------------------------------------------


def kaggle_handle(handle: str) -> str:
    return handle.removeprefix("kaggle://")


def folder_digest(folder: Path) -> str:
    """sha256 over the folder's files (relative name and content), in name order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class PresetFiles:
    """What a preset folder (as ``save_to_preset`` writes it) says, read as JSON."""

    folder: Path
    task: dict[str, Any] = field(repr=False)
    converter: dict[str, Any] = field(repr=False)

    @classmethod
    def read(cls, folder: Path, model_id: str) -> PresetFiles:
        folder = Path(folder)
        if not folder.is_dir():
            raise UsageError(
                f"--weights-file {folder}: not a folder; {model_id} takes a KerasHub preset folder "
                "(config.json, task.json, preprocessor.json, model.weights.h5, as save_to_preset writes)"
            )
        missing = [name for name in ("task.json", "preprocessor.json") if not (folder / name).is_file()]
        if missing:
            raise UsageError(
                f"--weights-file {folder}: no {', '.join(missing)}; {model_id} needs a preset with its "
                "classifier task and preprocessor (ImageClassifier.save_to_preset writes both)"
            )
        try:
            task = json.loads((folder / "task.json").read_text(encoding="utf-8"))
            preprocessor = json.loads((folder / "preprocessor.json").read_text(encoding="utf-8"))
            converter = preprocessor["config"]["image_converter"]
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"--weights-file {folder}: unreadable preset files ({type(exc).__name__}: {exc})"
            ) from None
        return cls(folder, task, converter)

    @property
    def num_classes(self) -> int | None:
        num_classes: int | None = self.task.get("config", {}).get("num_classes")
        return num_classes

    @property
    def converter_config(self) -> dict[str, Any]:
        config = dict(self.converter.get("config", {}))
        config.pop("dtype", None)
        config.pop("trainable", None)
        config.pop("name", None)
        return {"class_name": self.converter.get("class_name"), **config}


# --- preprocessing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConverterPreprocess:
    """The ``reference`` preprocessing of a KerasHub preset: its own ImageConverter, run by KerasHub.

    The converter resizes the whole decoded image with TensorFlow's ``tf.image.resize``
    (optionally cropping or padding to the aspect ratio first, antialiasing only when its
    config says so), then computes ``x * scale + offset``. Our pixel pipeline resizes with PIL,
    which antialiases when it shrinks and uses other kernels: it cannot express this exactly,
    so the child process runs KerasHub's converter itself on each decoded image (float pixels,
    so no pixel cache). Same shape as ``Preprocess`` where the scripts read one: ``geometry``,
    ``to_dict``, ``pixels``, ``crop_size``.
    """

    folder: str
    image_size: tuple[int, int]
    converter: tuple[tuple[str, Any], ...]  # the converter's config, as sorted items

    resize_mode = "keras_hub converter"
    normalization = "keras_hub converter: x * scale + offset"
    mean = None
    std = None

    @property
    def crop_size(self) -> int:
        return self.image_size[0]

    @property
    def resize_size(self) -> int:
        return self.image_size[0]

    @property
    def interpolation(self) -> str:
        return str(dict(self.converter).get("interpolation"))

    @property
    def geometry(self) -> tuple[Any, ...]:
        return ("keras_hub converter", self.converter)

    def to_dict(self) -> dict[str, Any]:
        config = dict(self.converter)
        return {
            "run_by": "keras_hub ImageConverter (the preset's own)",
            "converter": config,
            "antialias": bool(config.get("antialias")),
            "library": "tf.image.resize via keras.ops.image.resize",
            "why": "PIL's resize (our pipeline) antialiases and uses other kernels: not expressible exactly",
        }

    def pixels(self, image: Any) -> Any:
        """The converter's float32 output for one decoded RGB image (imports KerasHub).

        The image goes in as float32, as ``ImageClassifier.predict`` feeds it: the converter
        given uint8 resizes to other values (up to half a grey level apart)."""
        import numpy as np

        return np.asarray(_converter(self.folder)(np.asarray(image, dtype=np.float32)), dtype=np.float32)


@functools.cache
def _converter(folder: str) -> Any:
    import keras_hub

    return keras_hub.layers.ImageConverter.from_preset(folder)


# --- entries ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KerasHubEntry:
    """One KerasHub preset; with ``files`` (its folder read) it knows its size and converter."""

    id: str
    preset: str
    family: str
    description: str
    params: int | None
    handle: str
    files: PresetFiles | None = None

    source = SOURCE
    note = ""
    weights_in_folder = True  # --weights-file ID=DIR: the preset folder

    @property
    def published(self) -> dict[str, Any] | None:
        """KerasHub's package publishes no accuracy for its presets."""
        return None

    def num_params(self) -> int | None:
        """KerasHub's metadata figure (the backbone's parameters, without the classifier head)."""
        return self.params

    @property
    def input_size(self) -> int | None:
        """From the preset's converter when its folder is read, else from its description."""
        if self.files is not None:
            return int(self.files.converter_config["image_size"][0])
        found = _SIZE.search(self.description) or re.search(r"_(\d{3})(_|$)", self.preset)
        return int(found.group(1)) if found else None

    def with_files(self, folder: Path) -> KerasHubEntry:
        files = PresetFiles.read(folder, self.id)
        if files.num_classes != NUM_CLASSES:
            raise UsageError(
                f"{folder}: {self.id}'s classifier has {files.num_classes} classes, not {NUM_CLASSES} "
                "(not an ImageNet-1k classifier; its metadata mislabels it)"
            )
        return KerasHubEntry(self.id, self.preset, self.family, self.description, self.params, self.handle, files)

    @property
    def weights_folder(self) -> str | None:
        """The preset folder read (given or downloaded), for the model's process."""
        return None if self.files is None else str(self.files.folder)

    def _needs_files(self) -> PresetFiles:
        if self.files is None:
            from .sources import NotReadYet

            raise NotReadYet("the preset's own ImageConverter (read from the preset folder when it runs)")
        return self.files

    def reference_preprocess(self) -> ConverterPreprocess:
        files = self._needs_files()
        config = files.converter_config
        height, width = (int(v) for v in config["image_size"])
        size = (height, width)
        if height != width:
            raise UsageError(f"{self.id}: non-square image size {size} (the protocols crop squares only)")
        frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in config.items()))
        return ConverterPreprocess(str(files.folder), size, frozen)

    def seed2019_preprocess(self) -> Preprocess | None:
        return None

    def common_preprocess(self) -> Preprocess:
        """The common rule at the converter's size; the converter's own scale and offset."""
        config = self._needs_files().converter_config
        return common(
            int(config["image_size"][0]), f"keras_hub:x*{config.get('scale')}+{config.get('offset')}", None, None
        )

    def preprocess(self, protocol: str) -> Any:
        """This preset's preprocessing under a protocol (decided in sources.preprocess_for)."""
        from . import sources

        return sources.preprocess_for(self, protocol)

    def reference_source(self) -> str:
        return (
            f"the preset's own {self._needs_files().converter_config.get('class_name')} run by KerasHub "
            "(keras_hub.layers.ImageConverter.from_preset on the preset folder)"
        )

    @property
    def preprocess_input(self) -> str:
        """What the script applies to the pixels before the model (manifest, --list-models)."""
        return "the preset's ImageConverter (reference) or its scale and offset (common)"

    def protocol_source(self, protocol: str) -> str:
        if protocol == "reference":
            return self.reference_source()
        if protocol == "common":
            return (
                "common: shorter side to round(size/0.875), PIL bilinear, centre crop (as the PyTorch script), "
                "then the preset converter's x * scale + offset"
            )
        return "seed2019: not for KerasHub presets"

    def gflops(self) -> float | None:
        return None  # KerasHub's preset metadata gives parameters only

    def request(self) -> dict[str, Any]:
        """What the outputs must have been made from to be reused (resume)."""
        files = self._needs_files()
        return {
            "source": SOURCE,
            "preset": self.preset,
            "handle": self.handle,
            "input_size": self.input_size,
            "preset_folder_sha256": folder_digest(files.folder),
        }

    def with_weights(self, folder: str | Path | None = None) -> KerasHubEntry:
        """This entry with its preset folder read: ``folder`` (--weights-file ID=DIR), else the download."""
        if self.files is not None:
            return self
        return self.with_files(Path(folder) if folder else download(self))

    def build(self, weights_file: str | Path | None = None) -> tuple[Any, dict[str, Any]]:
        """The preset's classifier (softmax outputs, no preprocessor: the script feeds it converted
        pixels) and the manifest's ``weights`` record. Imports KerasHub (TensorFlow)."""
        import keras_hub

        files = self._needs_files()
        # float32 asked, not left to the preset's config (a preset saved in bfloat16 would run in it)
        model = keras_hub.models.ImageClassifier.from_preset(
            str(files.folder), preprocessor=None, activation="softmax", dtype="float32"
        )
        if int(model.num_classes) != NUM_CLASSES:
            raise UsageError(f"{files.folder}: {self.id} has {model.num_classes} classes, not {NUM_CLASSES}")
        record = {
            "id": self.id,
            "preset": self.preset,
            "handle": self.handle,
            "task": type(model).__name__,
            "source": "file" if weights_file else "kagglehub download",
            "path": str(Path(files.folder).resolve()),
            "sha256": folder_digest(files.folder),
            "keras_hub": keras_hub.__version__,
        }
        if getattr(model, "activation", None) != "softmax":  # MobileNetImageClassifier takes no activation: logits
            import keras

            model = keras.Model(
                model.inputs, keras.layers.Softmax(name="softmax", dtype="float32")(model.outputs[0]), name=model.name
            )
            record["softmax"] = "added by the script: the classifier ignores activation='softmax'"
        return model, record

    def preprocess_input_function(self, preprocess: Any) -> Any:
        """The step between the pixels and the model: none after the converter (its output is the
        input); on common's uint8 pixels, the converter's own x * scale + offset, in float32."""
        import numpy as np

        if isinstance(preprocess, ConverterPreprocess):
            return lambda x: x
        config = self._needs_files().converter_config
        scale, offset = config.get("scale"), config.get("offset")

        def scale_offset(x: Any) -> Any:
            if scale is not None:
                x = x * np.asarray(scale, dtype=np.float32)
            if offset is not None:
                x = x + np.asarray(offset, dtype=np.float32)
            return x

        return scale_offset


@functools.cache
def _scan() -> tuple[tuple[KerasHubEntry, ...], tuple[tuple[str, str], ...]]:
    entries, excluded = [], []
    for info in classifier_presets():
        model_id = PREFIX + info.name
        reason = left_out_reason(info)
        if reason:
            excluded.append((model_id, reason))
        else:
            entries.append(KerasHubEntry(model_id, info.name, info.family, info.description, info.params, info.handle))
    return tuple(entries), tuple(excluded)


def entries() -> tuple[KerasHubEntry, ...]:
    """Every ImageNet-1k classifier preset of the installed KerasHub, in its registry's order."""
    return _scan()[0]


def excluded() -> tuple[tuple[str, str], ...]:
    """(id, reason) of registered classifier presets that are not run."""
    return _scan()[1]


def by_id() -> dict[str, KerasHubEntry]:
    return {entry.id: entry for entry in entries()}


def download(entry: KerasHubEntry) -> Path:
    """The preset's folder from Kaggle (kagglehub's cache), or UsageError naming the handle."""
    try:
        import kagglehub  # type: ignore[import-untyped]  # kagglehub ships no py.typed marker

        return Path(kagglehub.model_download(kaggle_handle(entry.handle)))
    except Exception as exc:  # kagglehub raises its own, requests' and OS errors
        first = (" ".join(str(exc).split()) or type(exc).__name__)[:200]
        cache = os.environ.get("KAGGLEHUB_CACHE") or "~/.cache/kagglehub"
        raise UsageError(
            f"{entry.id}: cannot download the preset {entry.handle} ({type(exc).__name__}: {first}); "
            f"kagglehub caches presets under {cache}: download the preset folder elsewhere and pass "
            f"--weights-file {entry.id}=DIR"
        ) from None
