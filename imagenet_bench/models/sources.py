"""Where models come from: what a model entry is, the table of sources, and protocols over entries.

The words, one per idea, as every module, manifest and table uses them:

* *source*: a library of pre-trained classifiers, read by one registry module, named as in
  ``SOURCES``: ``torchvision``, ``timm``, ``keras`` (keras.applications), ``keras_hub``. An
  entry's ``source``, the ``--source`` values, a manifest's ``request.source`` and the HTML
  report's source filter all use these names (``request.source`` is ``model-spec`` for a
  PyTorch ``--model-spec`` model, which has no source).
* *platform*: the prediction script that runs a source and the suffix of its files
  (``pytorch``, ``keras``); a manifest's ``platform``.
* *framework*: only the manifest's record of the numeric libraries that ran the model and
  their versions (torch, TensorFlow, Keras): a field of the file format, not a kind of model.
  (Its ``name`` key is the source in PyTorch manifests and ``keras`` in Keras ones, as
  manifests have always said; readers should use ``request.source``.)

A source is read by one registry module, which provides ``entries()`` (entries that satisfy
``ModelEntry``, and their platform's protocol), ``excluded()`` ((id, reason) of what it leaves
out), ``by_id()`` (id -> entry: the Keras model process finds its entry by it) and, if some of
its models are the 2019 project's, ``SEED_2019_IDS``. Adding a source is one such module and
one line in ``SOURCES``: ``--source``, ``--list-models``, the left-out list, the manifest's
library versions and the source of a prediction file (by its id prefix) follow from the table.

Registries are imported only when their source is asked for (``Source.registry``): the
Keras script must never import torch, and ``--list-models --source keras_hub`` must not
import TensorFlow.

The preprocessing of a protocol is decided here, once, for any entry (``preprocess_for``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from ..base.errors import UsageError

if TYPE_CHECKING:  # imported where used: the table script reads this table without PIL
    from ..datasets.preprocessing import Preprocess

ALL = "all"


class NotReadYet(UsageError):
    """An entry's preprocessing lives in files not read yet (a KerasHub preset's folder, read when
    the model runs); --list-models shows the message instead of the preprocessing."""


class ModelEntry(Protocol):
    """What every registry entry provides (torchvision, timm, keras.applications, KerasHub).

    The listing, grouping, resume, manifests and the runner use only these members and those
    of the entry's platform (``PytorchEntry``, ``KerasEntryForScript``). Its data members are
    read-only (properties): entries are frozen dataclasses, some members computed."""

    @property
    def id(self) -> str: ...  # unique across sources; the model's file names use it

    @property
    def source(self) -> str: ...  # its line of SOURCES

    @property
    def note(self) -> str: ...  # a caveat --list-models shows beside the entry, or ""

    @property
    def published(self) -> dict[str, Any] | None:
        """Published Acc@1/Acc@5 and where they are from, or None."""

    def num_params(self) -> int | None:
        """Parameters, where the registry knows them without building the model or downloading weights."""

    def gflops(self) -> float | None:
        """GFLOPs (multiply-adds, as torchvision's metadata counts them) per image at the reference
        input size, where the registry knows them without building the model; else None."""

    def reference_preprocess(self) -> Any:
        """The preprocessing the published figures were measured with (a ``Preprocess``, or
        an object of the same shape for a preprocessing our pixel pipeline cannot express)."""

    def seed2019_preprocess(self) -> Preprocess | None:
        """The 2019 script's preprocessing, for the models of 2019 only (else None)."""

    def preprocess(self, protocol: str) -> Any:
        """The preprocessing under a protocol: ``sources.preprocess_for(self, protocol)``, always (an
        entry whose normalisation runs differently on the common protocol's pixels also has
        ``common_preprocess()``, which ``preprocess_for`` asks for)."""

    def request(self) -> dict[str, Any]:
        """What the manifest records of the model itself and resume compares (its source, weights...)."""

    def build(self, weights_file: Any = None) -> tuple[Any, dict[str, Any]]:
        """The model with its pre-trained weights (from ``weights_file`` when given: a file, or a
        folder for sources whose weights are one), and the manifest's ``weights`` record."""


class PytorchEntry(ModelEntry, Protocol):
    """What the PyTorch script needs besides ``ModelEntry``."""

    @property
    def quantized(self) -> bool: ...  # runs on the CPU only, with ``backend``'s kernels

    @property
    def backend(self) -> str | None: ...


class KerasEntryForScript(ModelEntry, Protocol):
    """What the Keras script needs besides ``ModelEntry``: the parent never builds the model, so
    it asks the entry what to read first, and the child asks it for the step before the model."""

    @property
    def input_size(self) -> int | None: ...  # None until a folder that says it is read

    @property
    def weights_in_folder(self) -> bool: ...  # --weights-file ID=DIR (a folder) rather than ID=FILE

    @property
    def weights_folder(self) -> str | None: ...  # the folder read, if any

    @property
    def preprocess_input(self) -> str: ...  # what the manifest calls the step between pixels and model

    def with_weights(self, weights_file: Any = None, /) -> KerasEntryForScript:
        """This entry with what it must read before it is built (a KerasHub preset folder)."""

    def preprocess_input_function(self, preprocess: Any) -> Any:
        """The function from uint8 pixels (as float32) to the model's input."""

    def protocol_source(self, protocol: str) -> str:
        """Where the protocol's preprocessing of this model comes from, for the manifest."""


@dataclass(frozen=True)
class Source:
    """One line of the table: a source, the script that runs it, its registry module."""

    name: str  # --source value
    platform: str  # the prediction script (and file suffix): "pytorch" or "keras"
    module: str  # registry module, imported on first use: ".name" in this package, or an absolute name
    distributions: tuple[str, ...]  # packages whose versions each manifest records
    id_prefix: str = ""  # how its model ids begin ("": the platform's first source, ids of 2019 style)

    def registry(self) -> ModuleType:
        return importlib.import_module(self.module, __package__)


SOURCES: tuple[Source, ...] = (
    Source("torchvision", "pytorch", ".torch_registry", ("torch", "torchvision")),
    Source("timm", "pytorch", ".timm_registry", ("torch", "timm"), "timm."),
    Source("keras", "keras", ".keras_registry", ("keras", "tensorflow")),
    Source("keras_hub", "keras", ".keras_hub_registry", ("keras", "tensorflow", "keras-hub"), "keras_hub."),
)


def names(platform: str) -> tuple[str, ...]:
    """The --source choices of a platform's script: its sources, then "all"."""
    return tuple(source.name for source in SOURCES if source.platform == platform) + (ALL,)


def chosen(platform: str, name: str) -> tuple[Source, ...]:
    """The sources a --source value means, in table order."""
    found = tuple(s for s in SOURCES if s.platform == platform and name in (s.name, ALL))
    if not found:
        raise UsageError(f"--source {name!r}: expected one of {', '.join(names(platform))}")
    return found


def entries(sources: Sequence[Source]) -> dict[str, Any]:
    """id -> entry over the sources, in table order."""
    out: dict[str, Any] = {}
    for source in sources:
        for entry in source.registry().entries():
            if entry.id in out:
                raise UsageError(
                    f"model id {entry.id!r} is in two sources ({out[entry.id].source}, {source.name}): "
                    "ids must be unique across sources"
                )
            out[entry.id] = entry
    return out


def excluded(sources: Sequence[Source]) -> list[tuple[str, str]]:
    """(id, reason) of what the sources' registries leave out."""
    return [item for source in sources for item in source.registry().excluded()]


def seed_2019_ids(sources: Sequence[Source]) -> tuple[str, ...]:
    return tuple(model_id for source in sources for model_id in getattr(source.registry(), "SEED_2019_IDS", ()))


def of_model(platform: str, model_id: str) -> Source | None:
    """The source of a prediction file's model (files name platform and id only): the platform's
    source whose id prefix the id has, else its first source without a prefix."""
    candidates = [s for s in SOURCES if s.platform == platform and model_id.startswith(s.id_prefix)]
    return max(candidates, key=lambda s: len(s.id_prefix), default=None)


def find(name: str) -> Source:
    """The table line of a source name (an entry's ``source``)."""
    for source in SOURCES:
        if source.name == name:
            return source
    raise KeyError(name)


def versions(source: Source) -> dict[str, str | None]:
    """The installed version of each package the source depends on (None: not installed)."""
    import importlib.metadata  # here: the table script imports this module for its names only

    out: dict[str, str | None] = {}
    for distribution in source.distributions:
        try:
            out[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            out[distribution] = None
    return out


def preprocess_for(entry: Any, protocol: str) -> Any:
    """An entry's preprocessing under a protocol; UsageError if the protocol excludes it.

    reference: the entry's own; seed2019: the 2019 script's, for the models of 2019;
    common: one rule for every model (shorter side to round(size / 0.875), PIL bilinear,
    centre crop to the reference's size) with the reference's normalisation, unless the
    entry says how its normalisation runs on common pixels (``common_preprocess``).
    """
    from ..datasets.preprocessing import PROTOCOLS, common

    if protocol == "reference":
        return entry.reference_preprocess()
    if protocol == "seed2019":
        found = entry.seed2019_preprocess()
        if found is None:
            raise UsageError(f"{entry.id}: --protocol seed2019 covers only the models of 2019")
        return found
    if protocol == "common":
        if hasattr(entry, "common_preprocess"):
            return entry.common_preprocess()
        reference = entry.reference_preprocess()
        return common(reference.crop_size, reference.normalization, reference.mean, reference.std)
    raise UsageError(f"--protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
