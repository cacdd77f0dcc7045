"""ImageNet-9 and its background variations (Xiao et al. 2020, "Noise or Signal: The Role of Image
Backgrounds in Object Recognition"), scored as the authors' in9_eval.py scores a 1000-class model:
the top-1 over all 1000 classes is mapped to one of nine superclasses (a class of none is wrong)
and compared with the image's superclass folder. Each variation (original, mixed_same, ...) is a
test set named by its folder, all with one class map, ``data/imagenet_9.json``; BG-Gap is
Mixed-Same's Acc@1 minus Mixed-Rand's. The authors feed the 224 x 224 images unresized
(``--authors-rule``); without it each model's own resize and crop runs, and the manifest says which."""

from __future__ import annotations

import functools

from .test_set import DATA_DIR, Figure, Gap, NoResize, OwnClasses, TestSet, read_map

MAP = DATA_DIR / "imagenet_9.json"
NAME = "imagenet-9"  # --test-set imagenet-9: the variation its folder names, else this (unknown variation)
VARIATIONS = ("original", "only_bg_b", "only_bg_t", "no_fg", "only_fg", "mixed_same", "mixed_rand", "mixed_next")
IMAGES = 4_050  # each variation's test images, 450 per superclass
SOURCE = "Xiao et al. 2020, github.com/MadryLab/backgrounds_challenge (release archives)"
README = "backgrounds_challenge README, ImageNet-trained torchvision models, unresized 224 x 224 (--authors-rule)"
PUBLISHED_VARIATIONS = ("original", "mixed_same", "mixed_rand")  # the README table's columns
PUBLISHED = {  # the README's table, by torchvision model id (the builder name: its first weights, V1)
    "vgg16_bn": (94.3, 83.6, 73.4),
    "resnet50": (95.6, 86.2, 78.9),
    "resnet152": (96.7, 89.3, 83.5),
}


@functools.cache
def own_classes() -> OwnClasses:
    return read_map(MAP)


def _figures(variation: str) -> tuple[Figure, ...]:
    if variation not in PUBLISHED_VARIATIONS:
        return ()
    column = PUBLISHED_VARIATIONS.index(variation)
    return tuple(Figure("pytorch", model, accs[column], README) for model, accs in PUBLISHED.items())


def _declare(variation: str | None) -> TestSet:
    return TestSet(
        NAME if variation is None else f"{NAME}-{variation}",
        IMAGES,
        f"{variation or '<variation>'}/val/, folders 00_dog ... 08_fish",
        SOURCE,
        folders="own",
        own_classes=own_classes,
        columns=("acc1",),
        named_by=() if variation is None else (variation,),
        authors_step=NoResize(),
        variant_of=None if variation is None else NAME,
        complete=True,
        gap=Gap("BG-Gap", f"{NAME}-mixed_rand") if variation == "mixed_same" else None,
        published=() if variation is None else _figures(variation),
    )


TEST_SETS = (_declare(None), *(_declare(v) for v in VARIATIONS))
