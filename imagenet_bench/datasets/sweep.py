"""A folder of test sets (a sweep): ImageNet-C's ``<corruption>/<severity>/`` tree, or a folder
holding val, ImageNetV2, Sketch... folders. Each one is then recognised as a folder given alone is.

Why a rule of its own: a folder given to a prediction script that is itself one test set must
run exactly as before, so a sweep is recognised only where the folder is not a test set. A test
set holds images in it (flat) or in its subfolders (class folders); a folder whose subfolders
hold only folders is none. So ImageNet-C's ``gaussian_noise/`` (subfolders ``1``..``5`` of class
folders) is not taken for ImageNetV2's numeric class folders, and a flat folder (it takes its own
--val-ground-truth) is run alone, never in a sweep: in a folder, it looks like a class folder.
The walk stops at each test set (a class folder is never looked into for test sets), never
follows a link round a circle, leaves out hidden names, and goes at most ``MAX_DEPTH`` folders
down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..base.errors import UsageError, shown
from .layout import is_image_name

MAX_DEPTH = 4  # root/imagenet-c/gaussian_noise/3 is 3 down


@dataclass(frozen=True)
class Member:
    """One test set of a sweep: its folder and its path below the sweep's root (``where``)."""

    folder: Path
    where: str  # the relative path, with /, as it names the test set in lines and output folders


def _visible(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as exc:
        raise UsageError(f"{shown(folder)}: cannot be read ({exc.strerror}); fix its permissions") from None


def _is_image(entry: os.DirEntry[str]) -> bool:
    return is_image_name(Path(entry.name)) and entry.is_file()


def _holds_images(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(_is_image(e) for e in entries)  # not hidden, an image file
    except OSError:
        return False


def is_test_set(folder: Path) -> bool:
    """Images in the folder, or in one of its subfolders (class folders)."""
    entries = _visible(folder)
    return any(_is_image(e) for e in entries) or any(e.is_dir() and _holds_images(Path(e.path)) for e in entries)


def members(root: Path) -> list[Member] | None:
    """The test sets below ``root``, in path order; None when ``root`` is itself a test set (or
    not a folder: the single run's error says so). A folder that is neither is one error."""
    if not root.is_dir() or is_test_set(root):
        return None
    found: list[Member] = []
    seen = {root.resolve()}

    def walk(folder: Path, parts: tuple[str, ...]) -> None:
        for entry in _visible(folder):
            if not entry.is_dir():
                continue
            path = Path(entry.path)
            real = path.resolve()
            if real in seen:  # a link back up, or to a folder met already: walked once
                continue
            seen.add(real)
            if is_test_set(path):
                found.append(Member(path, "/".join((*parts, entry.name))))
            elif len(parts) + 1 < MAX_DEPTH:
                walk(path, (*parts, entry.name))

    walk(root, ())
    if not found:
        raise UsageError(
            f"{shown(root)}: neither a test set (no images in it or in its class folders) nor a folder of "
            f"test sets (none within {MAX_DEPTH} folders below it); give a val folder or a folder of them"
        )
    return found
