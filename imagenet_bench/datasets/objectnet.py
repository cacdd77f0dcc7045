"""ObjectNet (Barbu et al. 2019): objects in unusual poses, backgrounds and viewpoints, scored as
imagenet-testbed scores it (its ``objectnet-1.0-beta`` setting). Its 113 scored classes each accept
a set of ImageNet classes (125 in all); the other 200 of its 313 folders are left out and counted.
Each image loses a 2-pixel border (the frame of the release) before the model's preprocessing, the
outputs are restricted to the 125 classes before the softmax, and an image is right when a top-k
class is one its folder accepts. The map is ``data/objectnet.json``, from testbed's metadata."""

from __future__ import annotations

import functools

from .test_set import DATA_DIR, BorderCrop, OwnClasses, TestSet, read_map

MAP = DATA_DIR / "objectnet.json"


@functools.cache
def own_classes() -> OwnClasses:
    return read_map(MAP)


TEST_SET = TestSet(
    "objectnet",
    18_514,  # images in its 113 scored folders, of 50,000
    "objectnet-1.0/images/, 313 class folders (113 scored)",
    "Barbu et al. 2019, objectnet.dev (its licence: not redistributable, not for training)",
    folders="own",
    restrict_to=lambda: own_classes().union(),
    own_classes=own_classes,
    image_step=BorderCrop(2),
)
