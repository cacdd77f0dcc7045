"""Where models come from: what a model entry is, the table of sources, and protocols over entries.

A *source* is a library of pre-trained classifiers (torchvision, timm, keras.applications,
KerasHub), read by one registry module. A *platform* is the prediction script that runs it
and the suffix of its files (``pytorch``, ``keras``). Adding a source is one new registry
module (``entries()``, ``excluded()``, entries that satisfy ``ModelEntry``) and one line in
``SOURCES``: ``--source``, ``--list-models``, the left-out list and the manifest's library
versions follow from the table.

Registries are imported only when their source is asked for (``Source.registry``): the
Keras script must never import torch, and ``--list-models --source keras_hub`` must not
import TensorFlow.

The preprocessing of a protocol is decided here, once, for any entry (``preprocess_for``).
"""
from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, Sequence

from .errors import UsageError
from .preprocessing import PROTOCOLS, Preprocess, common

ALL = "all"


class NotReadYet(UsageError):
    """An entry's preprocessing lives in files not read yet (a KerasHub preset's folder, read when
    the model runs); --list-models shows the message instead of the preprocessing."""


class ModelEntry(Protocol):
    """What every registry entry provides (torchvision, timm, keras.applications, KerasHub)."""

    id: str  # unique across sources; the model's file names use it

    @property
    def published(self) -> dict[str, Any] | None:
        """Published Acc@1/Acc@5 and where they are from, or None."""

    def num_params(self) -> int | None:
        """Parameters, where the registry knows them without downloading weights."""

    def reference_preprocess(self) -> Any:
        """The preprocessing the published figures were measured with (a ``Preprocess``, or
        an object of the same shape for a preprocessing our pixel pipeline cannot express)."""

    def seed2019_preprocess(self) -> Preprocess | None:
        """The 2019 script's preprocessing, for the models of 2019 only (else None)."""


@dataclass(frozen=True)
class Source:
    """One line of the table: a source, the script that runs it, its registry module."""

    name: str  # --source value
    platform: str  # the prediction script (and file suffix): "pytorch" or "keras"
    module: str  # registry module in this package, imported on first use
    distributions: tuple[str, ...]  # packages whose versions each manifest records

    def registry(self) -> ModuleType:
        return importlib.import_module(f"{__package__}.{self.module}")


SOURCES: tuple[Source, ...] = (
    Source("torchvision", "pytorch", "torch_registry", ("torch", "torchvision")),
    Source("timm", "pytorch", "timm_registry", ("torch", "timm")),
    Source("keras", "keras", "keras_registry", ("keras", "tensorflow")),
    Source("keras_hub", "keras", "keras_hub_registry", ("keras", "tensorflow", "keras-hub")),
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
            out[entry.id] = entry
    return out


def excluded(sources: Sequence[Source]) -> list[tuple[str, str]]:
    """(id, reason) of what the sources' registries leave out."""
    return [item for source in sources for item in source.registry().excluded()]


def seed_2019_ids(sources: Sequence[Source]) -> tuple[str, ...]:
    return tuple(model_id for source in sources for model_id in getattr(source.registry(), "SEED_2019_IDS", ()))


def find(name: str) -> Source:
    """The table line of a source name (an entry's ``source``)."""
    for source in SOURCES:
        if source.name == name:
            return source
    raise KeyError(name)


def versions(source: Source) -> dict[str, str | None]:
    """The installed version of each package the source depends on (None: not installed)."""
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
