"""ImageNet-C regenerated from the val images, for those without the released 75 x 50,000 files:
the authors' steps (Resize(256), CenterCrop(224), corrupt, JPEG quality 85) with the corruption
functions of ``imagecorruptions-imaug``, written as the release lays them out
(``<corruption>/<severity>/<wnid>/<name>.JPEG``, the test sets of ``imagenet_c``).

Every image has its own seed, from its file name, the corruption and the severity (``image_seed``),
set with ``np.random.seed`` before each call and passed as ``seed=`` to the two functions that draw
from a generator of their own (impulse noise, glass blur): the bytes do not depend on the order, the
number of workers or the machine (given the same package, numpy, scikit-image and PIL, which
``corruption.json`` records). Files are written atomically, so a killed run leaves whole files only
and a rerun writes just the missing ones. Only this module imports the package.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import multiprocessing
import signal
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..base import atomic
from ..base.classes import wnids
from ..base.errors import UsageError, shown
from . import imagenet_c, images, layout
from .preprocessing import Preprocess

PACKAGE = "imagecorruptions-imaug"
OWN_GENERATOR = frozenset({"impulse_noise", "glass_blur"})  # they ignore np.random.seed; seed= reaches them
SEED_RULE = (
    "seed = first 4 bytes (big-endian) of sha256('<file name>/<corruption>/<severity>'), e.g. "
    "'ILSVRC2012_val_00000293.JPEG/glass_blur/3'; np.random.seed(seed) before each call, and seed=seed "
    "for impulse_noise and glass_blur"
)
CROP = Preprocess(imagenet_c.SIZE, 256)  # torchvision's Resize(256) + CenterCrop(224) on PIL, bilinear
QUALITY = 85
RECORD = imagenet_c.RECORD
LIBRARIES = ("numpy", "scikit-image", "scipy", "pillow", "numba")  # what the bytes also depend on


def image_seed(file_name: str, corruption: str, severity: int) -> int:
    """The seed of one output image (``SEED_RULE``): a function of its name alone, so any worker
    on any machine draws the same noise for it."""
    digest = hashlib.sha256(f"{file_name}/{corruption}/{severity}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def corrupted(pixels: np.ndarray, corruption: str, severity: int, seed: int) -> np.ndarray:
    """The package's corruption of 224 x 224 uint8 pixels, seeded (``image_seed``)."""
    import imagecorruptions  # the command's own dependency: nothing else loads it

    np.random.seed(seed)
    kwargs = {"seed": seed} if corruption in OWN_GENERATOR else {}
    result: np.ndarray = imagecorruptions.corrupt(pixels, severity, corruption_name=corruption, **kwargs)
    return result


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=QUALITY)
    return buffer.getvalue()


@dataclass(frozen=True)
class Task:
    """One val image and the outputs still missing for it: decoded and cropped once for them all."""

    source: Path
    outputs: tuple[tuple[str, int, Path], ...]  # (corruption, severity, target file)


def run_task(task: Task) -> int:
    """Write a task's images; the number written."""
    pixels = images.load_pixels(task.source, CROP)
    for corruption, severity, target in task.outputs:
        seed = image_seed(task.source.name, corruption, severity)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(target, jpeg(corrupted(pixels, corruption, severity, seed)))
    return len(task.outputs)


def parse_severities(text: str) -> tuple[int, ...]:
    """``--severities``: ``1-5``, ``3`` or ``1,3,5``, each in 1..5."""
    try:
        chosen: set[int] = set()
        for part in text.split(","):
            first, _, last = part.partition("-")
            chosen.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise UsageError(f"--severities {text!r}: expected a range like 1-5, or numbers like 1,3,5") from None
    if not chosen or not chosen <= set(imagenet_c.SEVERITIES):
        raise UsageError(f"--severities {text!r}: severities are 1 to 5 (e.g. 1-5 or 1,3)")
    return tuple(sorted(chosen))


def parse_corruptions(names: Sequence[str] | None) -> tuple[str, ...]:
    """``--corruptions``: names of ``imagenet_c.CORRUPTIONS``, ``benchmark`` (the 15, the default),
    ``extra`` (the 4) or ``all``; in the authors' order."""
    groups = {"benchmark": imagenet_c.BENCHMARK, "extra": imagenet_c.EXTRA, "all": imagenet_c.CORRUPTIONS}
    chosen: set[str] = set()
    for name in names or ["benchmark"]:
        if name not in groups and name not in imagenet_c.CORRUPTIONS:
            raise UsageError(
                f"--corruptions {name!r}: expected benchmark, extra, all or one of {', '.join(imagenet_c.CORRUPTIONS)}"
            )
        chosen.update(groups.get(name, (name,)))
    return tuple(c for c in imagenet_c.CORRUPTIONS if c in chosen)


def _sources(val_dir: Path, per_class: int | None) -> list[tuple[str, Path]]:
    """(wnid, image) of the val folder's class folders, the first ``per_class`` of each class."""
    if not val_dir.is_dir():
        raise UsageError(f"{shown(val_dir)}: VAL_DIR does not exist or is not a folder")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n of 1000 classes present" is no news here
        dataset = layout.select(layout.scan(val_dir), per_class=per_class)
    if dataset.layout != "imagefolder":
        raise UsageError(f"{shown(val_dir)}: VAL_DIR needs class folders named by WordNet id (valprep.sh's layout)")
    ids = wnids()
    return [(ids[label], path) for label, path in zip(dataset.labels.tolist(), dataset.paths, strict=True)]


def check_out(val_dir: Path, out: Path) -> None:
    """OUT must not be inside VAL_DIR (its folders would be read as classes next time) nor hold it."""
    inner, outer = out.resolve(), val_dir.resolve()
    if inner == outer or outer in inner.parents:
        raise UsageError(f"{shown(out)}: OUT is inside VAL_DIR {shown(val_dir)}; write it elsewhere")
    if inner in outer.parents:
        raise UsageError(f"{shown(out)}: OUT holds VAL_DIR {shown(val_dir)}; write it elsewhere")
    atomic.validate_folder(out, "OUT")


def record(val_dir: Path, corruptions: Iterable[str], severities: Iterable[int]) -> dict[str, Any]:
    """What ``corruption.json`` says: how the images were made, so no one takes them for the release."""
    return {
        "regenerated": True,
        "package": PACKAGE,
        "version": importlib.metadata.version(PACKAGE),
        "seed_rule": SEED_RULE,
        "steps": f"Resize(256) + CenterCrop(224) ({CROP.interpolation}, torchvision's rounding), corrupt, "
        f"JPEG quality {QUALITY}",
        "libraries": {name: importlib.metadata.version(name) for name in LIBRARIES},
        "source": str(val_dir),
        "corruptions": list(corruptions),
        "severities": list(severities),
    }


def write_record(out: Path, made: dict[str, Any]) -> None:
    """Write (or widen) ``corruption.json``; a folder made by another version or rule is refused
    before anything is written, since its images and these would differ."""
    path = out / RECORD
    if path.exists():
        import json

        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            same = all(old[key] == made[key] for key in ("package", "version", "seed_rule", "steps"))
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{shown(path)}: does not load; remove OUT or write elsewhere") from None
        if not same:
            raise UsageError(
                f"{shown(path)}: OUT was made by {old.get('package')} {old.get('version')} or another rule; "
                "write elsewhere (images of two makings would be mixed)"
            )
        made = {
            **made,
            "corruptions": [c for c in imagenet_c.CORRUPTIONS if c in {*old["corruptions"], *made["corruptions"]}],
            "severities": sorted({*old["severities"], *made["severities"]}),
        }
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, made)


def plan(
    sources: Sequence[tuple[str, Path]], out: Path, corruptions: Sequence[str], severities: Sequence[int]
) -> tuple[list[Task], int]:
    """The tasks of the images not yet written (a file present is whole: writes are atomic) and
    how many are already there. Temporary files a killed run left are removed first."""
    tasks: list[Task] = []
    done = 0
    folders = {out / c / str(s) / wnid for c in corruptions for s in severities for wnid, _ in sources}
    for folder in sorted(folders):
        atomic.remove_orphans(folder)
    for wnid, source in sources:
        name = f"{Path(source.name).stem}.JPEG"
        wanted = [(c, s, out / c / str(s) / wnid / name) for c in corruptions for s in severities]
        missing = tuple(w for w in wanted if not w[2].exists())
        done += len(wanted) - len(missing)
        if missing:
            tasks.append(Task(source, missing))
    return tasks, done


def _quiet_child() -> None:
    """A worker leaves Ctrl-C to the parent, which stops them all and cleans up once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _results(tasks: list[Task], jobs: int) -> Iterator[int]:
    if jobs == 1:
        yield from map(run_task, tasks)
        return
    pool = multiprocessing.get_context("fork").Pool(jobs, initializer=_quiet_child)
    try:
        yield from pool.imap_unordered(run_task, tasks)
        pool.close()
    finally:
        pool.terminate()  # Ctrl-C or an error: no worker outlives the command
        pool.join()


def regenerate(
    val_dir: Path,
    out: Path,
    corruptions: Sequence[str],
    severities: Sequence[int],
    per_class: int | None = None,
    jobs: int = 1,
) -> int:
    """Write the missing images of OUT; the number written. Progress and an estimate on stderr."""
    from tqdm import tqdm

    check_out(val_dir, out)
    sources = _sources(val_dir, per_class)
    write_record(out, record(val_dir, corruptions, severities))
    tasks, done = plan(sources, out, corruptions, severities)
    total = done + sum(len(t.outputs) for t in tasks)
    written = 0
    try:
        with tqdm(total=total, initial=done, unit="img", desc="corrupt", file=sys.stderr, smoothing=0.05) as bar:
            for count in _results(tasks, jobs):
                written += count
                bar.update(count)
    except BaseException:
        with contextlib.suppress(OSError):  # the workers are gone: their unfinished temporary files go too
            for task in tasks:
                for folder in {target.parent for _, _, target in task.outputs}:
                    atomic.remove_orphans(folder)
        raise
    return written
