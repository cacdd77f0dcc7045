"""Generates the class maps of the test sets of their own classes from the authors' files in a
copy of ../shared/reference/test-sets (see its SOURCE.md):
``python -m tools.test_set_maps TEST_SETS_DIR`` writes imagenet_bench/data/objectnet.json,
imagenet_bench/data/imagenet_9.json (read by ``imagenet_bench.datasets.objectnet`` and ``.imagenet_9``)
and imagenet_bench/data/imagenet_c.json (``imagenet_bench.scoring.corruption_errors``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from imagenet_bench.base import atomic
from imagenet_bench.datasets import imagenet_9, objectnet
from imagenet_bench.datasets.test_set import REGENERATE
from imagenet_bench.models import published
from imagenet_bench.scoring import corruption_errors

# The release's superclass folders (``<variation>/val/<folder>``), in label order: in9_classes.txt
# names the nine (Dog, ..., Vehicle, Instrument, ...) without the folders' longer words.
IN9_FOLDERS = (
    "00_dog",
    "01_bird",
    "02_wheeled vehicle",
    "03_reptile",
    "04_carnivore",
    "05_insect",
    "06_musical instrument",
    "07_primate",
    "08_fish",
)


def _text(about: str, source: str, classes: dict[str, list[int]], ignored: list[str] | None = None) -> str:
    """The map as JSON, one class a line."""
    head: dict[str, Any] = {"about": about, "source": source, "generated_by": REGENERATE}
    lines = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    lines += [' "classes": {', ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in classes.items()), " }"]
    if ignored is not None:
        lines[-1] += ","
        lines.append(f' "ignored": {json.dumps(ignored)}')
    return "{\n" + "\n".join(lines) + "\n}\n"


def objectnet_map(folder: Path) -> str:
    """imagenet-testbed's rule (src/eval_settings/objectnet.py): each ObjectNet class's ImageNet
    names ("; "-joined) to indices through imagenet_to_labels.json, inverted as testbed inverts it
    (a name given twice, 'crane', takes its last index; no ObjectNet class uses it)."""

    def load(name: str) -> dict[str, str]:
        data: dict[str, str] = json.loads((folder / name).read_text(encoding="utf-8"))
        return data

    folder_of = {label: name for name, label in load("folder_to_objectnet_label.json").items()}
    index = {label: int(i) for i, label in load("imagenet_to_labels.json").items()}
    mapped = load("objectnet_to_imagenet_1k.json")
    classes = {folder_of[label]: sorted(index[n] for n in names.split("; ")) for label, names in mapped.items()}
    ignored = sorted(set(folder_of.values()) - set(classes))
    return _text(
        "ObjectNet's scored class folders (label order) -> the ImageNet class indices each accepts; "
        "ignored: its folders that are not scored",
        "modestyachts/imagenet-testbed 0170eec6, src/eval_settings/objectnet_metadata/ (MIT)",
        dict(sorted(classes.items())),
        ignored,
    )


def imagenet_9_map(folder: Path) -> str:
    """The authors' in_to_in9.json inverted: superclass folder -> the ImageNet classes mapped to it
    (-1, none, is left out: always wrong); in9_classes.txt checks the folders' order."""
    names = [line.split()[0].lower() for line in (folder / "in9_classes.txt").read_text().splitlines() if line.strip()]
    if len(names) != len(IN9_FOLDERS) or any(not f.endswith(n) for f, n in zip(IN9_FOLDERS, names, strict=True)):
        raise RuntimeError(f"{folder / 'in9_classes.txt'}: superclasses {names} are not the folders {IN9_FOLDERS}")
    superclass = json.loads((folder / "in_to_in9.json").read_text(encoding="utf-8"))
    classes = {f: sorted(int(c) for c, s in superclass.items() if s == label) for label, f in enumerate(IN9_FOLDERS)}
    return _text(
        "ImageNet-9's superclass folders (label order) -> the ImageNet class indices mapped to each",
        "MadryLab/backgrounds_challenge 46d224bb, in_to_in9.json and in9_classes.txt",
        classes,
    )


def imagenet_c_constants(folder: Path) -> str:
    """AlexNet's error per corruption (alexnet_errors.csv: averaged over severities 1-5, as a
    fraction) and its clean val error, from torchvision's published AlexNet Acc@1 (the
    authors' AlexNet is torchvision's), for relative mCE."""
    rows = (folder / "alexnet_errors.csv").read_text(encoding="utf-8").split()
    if rows[0] != "corruption,alexnet_error":
        raise SystemExit(f"{folder / 'alexnet_errors.csv'}: unexpected header {rows[0]!r}")
    errors = {name: float(value) for name, value in (row.split(",") for row in rows[1:])}
    alexnet = published.lookup("pytorch", "alexnet")
    assert alexnet is not None  # the committed torchvision table has it
    head: dict[str, Any] = {
        "about": "ImageNet-C normalisers: AlexNet's top-1 error per benchmark corruption, averaged over "
        "severities 1-5 (a fraction), and its clean val error in percent",
        "source": "hendrycks/robustness (commit 8190fe32) via ../shared/reference/test-sets/imagenet-c; "
        f"the clean error is 100 - torchvision's published AlexNet Acc@1 ({alexnet.acc1})",
        "generated_by": REGENERATE,
        "alexnet_error": errors,
        "alexnet_clean_error": round(100 - alexnet.acc1, 6),
    }
    return json.dumps(head, indent=1) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tools.test_set_maps TEST_SETS_DIR", file=sys.stderr)
        return 2
    root = Path(argv[0])
    atomic.write_text(objectnet.MAP, objectnet_map(root / "objectnet"))
    atomic.write_text(imagenet_9.MAP, imagenet_9_map(root / "imagenet-9"))
    atomic.write_text(corruption_errors.DATA, imagenet_c_constants(root / "imagenet-c"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
