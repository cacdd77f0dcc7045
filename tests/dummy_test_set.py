"""A test set declared by one module and its data file, added by one ``register`` line
(docs/contributing.md, "Adding a test set"): its own class folders, each accepting several
ImageNet classes (a many-to-one map), two unscored folders, a 2-pixel frame cut off before
preprocessing, outputs restricted to the mapped classes. ObjectNet is declared the same way."""

import functools
import json
from pathlib import Path

from imagenet_bench.base.classes import wnid_to_index
from imagenet_bench.datasets.test_set import BorderCrop, OwnClasses, TestSet

MAP = Path(__file__).resolve().parent / "data" / "toy_objects.json"


@functools.cache
def own_classes() -> OwnClasses:
    data, index = json.loads(MAP.read_text(encoding="utf-8")), wnid_to_index()
    return OwnClasses(
        tuple(data["classes"]),
        tuple(tuple(sorted(index[w] for w in wnids)) for wnids in data["classes"].values()),
        frozenset(data["ignored"]),
        MAP.name,
    )


TEST_SET = TestSet(
    "toy-objects",
    38,
    "toy-objects/",
    "tests/data/toy_objects.json",
    folders="own",
    restrict_to=lambda: own_classes().union(),
    own_classes=own_classes,
    image_step=BorderCrop(2),
)
