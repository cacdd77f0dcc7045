"""The 1000 ILSVRC2012 classes: WordNet ids in sorted order, and their names.

Class index i is the i-th WordNet id in sorted order: what torchvision's
ImageFolder gives over all 1000 class folders, and what Keras uses. The list is
read from the data files timm ships (located with importlib, so timm, which
imports torch, is never imported).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from .errors import UsageError

NUM_CLASSES = 1000
FULL_VAL_SIZE = 50_000  # images in the ILSVRC2012 val set


def timm_info_dir() -> Path:
    """Folder of timm's bundled dataset-info files, found without importing timm."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            "timm is not installed (its data files hold the ImageNet class list and ReaL "
            "labels): pip install -r requirements.txt"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "_info"


@functools.cache
def wnids() -> tuple[str, ...]:
    """The 1000 WordNet ids in class-index order (sorted)."""
    ids = tuple((timm_info_dir() / "imagenet_synsets.txt").read_text().split())
    if len(ids) != NUM_CLASSES or list(ids) != sorted(ids):
        raise RuntimeError("timm's imagenet_synsets.txt is not 1000 sorted WordNet ids")
    return ids


@functools.cache
def wnid_to_index() -> dict[str, int]:
    return {wnid: i for i, wnid in enumerate(wnids())}


@functools.cache
def class_names() -> tuple[str, ...]:
    """Human-readable name of each class (the first WordNet lemma)."""
    lemmas: dict[str, str] = {}
    with open(timm_info_dir() / "imagenet_synset_to_lemma.txt", encoding="utf-8") as handle:
        for line in handle:
            wnid, _, lemma = line.rstrip("\n").partition("\t")
            lemmas[wnid] = lemma
    return tuple(lemmas[w].split(",")[0].strip() for w in wnids())


def real_labels_path() -> Path:
    """The ImageNet-ReaL labels file timm ships (read as a file, timm not imported)."""
    return timm_info_dir() / "imagenet_real_labels.json"
