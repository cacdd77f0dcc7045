"""A cache of each model's answers to the table's measures, so a rerun on unchanged files prints in about a second.

Ranking 1,500 models means reading 3,000 files of 50,000 rows; a rerun for
another format, ``--ci`` or a plot should not pay that again. The cache holds,
per folder and per set of measures (``measures.measures_key``: the labels and
everything else the answers depend on), each model's answers (per-image marks as
packed bits, or a small float vector), with its manifest as read then (a rerun opens
no prediction file and no manifest).

It is never stale: a model's entry is used only when its three files (preds,
probs, manifest) have the same size, mtime_ns, ctime_ns and inode as when the
answers were made; any rewrite changes mtime_ns (and ctime_ns, which no user can
set back), so the files are read and hashed again. It is never required: a cache
folder that cannot be created or written is left alone (the table is computed
from the files), so a read-only download still ranks. Files are written
atomically, one ``.npz`` per folder and measure set, but not fsync'ed (a cache may be
lost, and an fsync took 2 to 10 ms here, a fixed cost of every table that writes the
cache): a file torn by a power cut fails zip's CRC or the index's JSON and reads as
an empty cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..base import atomic
from ..outputs.predfiles import ModelFiles
from .measures import BITS, Answer, Marks, as_marks, as_numbers

SCHEMA = 3  # 3: answers of two kinds, bits and numbers (2: bits only)


def default_root() -> Path | None:
    """$XDG_CACHE_HOME (else ~/.cache)/imagenet-bench/scores; None (no cache) where
    $XDG_CACHE_HOME or the home folder does not exist: neither is ours to create."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "imagenet-bench" / "scores" if (base if xdg else base.parent).is_dir() else None


def stat_key(files: ModelFiles) -> list[int]:
    """What says a model's files are unchanged: size, mtime_ns, ctime_ns, inode of each (0s if absent)."""
    key = []
    for path in (files.preds_path, files.probs_path, files.manifest_path):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            key += [0, 0, 0, 0]
            continue
        key += [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    return key


@dataclass
class Entry:
    """One model's answers: {measure name: Marks (bits), a float vector (numbers), or None when the
    files cannot answer it}."""

    answers: dict[str, Answer]
    warnings: list[str]
    manifest: dict[str, Any] | None = None  # as read with the answers (its file's stat is in the key)


class ScoreCache:
    """Answers of models in one folder under one set of measures; ``root`` None turns it off.

    ``shapes``: {measure name: (kind, size)}: bits are stored packed, one row of
    ``(size + 7) // 8`` bytes per model (``marks_<name>``), with their counts in the index;
    numbers as one row of ``size`` float64 per model (``numbers_<name>``)."""

    def __init__(self, root: Path | None, folder: Path, measures_key: str, shapes: dict[str, tuple[str, int]]):
        self.shapes = shapes
        self.path = None
        if root is not None:
            name = hashlib.sha256(f"{Path(folder).resolve()}\0{measures_key}".encode()).hexdigest()[:40]
            self.path = Path(root) / f"{name}.npz"
        self.stored: dict[str, tuple[list[int], Entry]] = {}
        self.fresh: dict[str, tuple[list[int], Entry]] = {}
        self.changed = False
        self._read()

    def _read(self) -> None:
        if self.path is None or not self.path.is_file():
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                index = json.loads(bytes(data["index"]).decode())
                if index.get("schema") != SCHEMA:
                    return
                arrays = {name: data[_member(name, kind)] for name, (kind, _) in self.shapes.items()}
            self.stored = self._entries(index["models"], arrays)
        except Exception:  # an unreadable or inconsistent cache is an empty one (rebuilt by this run)
            self.stored = {}

    def _entries(
        self, models: list[dict[str, Any]], arrays: dict[str, np.ndarray]
    ) -> dict[str, tuple[list[int], Entry]]:
        """The index's models with their answers; ValueError where the arrays do not fit the index."""
        for name, (kind, size) in self.shapes.items():
            if arrays[name].shape != (len(models), _width(kind, size)):
                raise ValueError(f"{name}: {arrays[name].shape}, not {(len(models), _width(kind, size))}")
        stored = {}
        for row, model in enumerate(models):
            answers: dict[str, Answer] = {}
            for name, (kind, size) in self.shapes.items():
                count = model["counts"][name]  # bits: how many are right; numbers: 0; None: no answer
                if count is None:
                    answers[name] = None
                elif kind == BITS:
                    answers[name] = Marks(arrays[name][row], size, int(count))
                else:
                    answers[name] = arrays[name][row]
            stored[str(model["label"])] = (
                list(model["stat"]),
                Entry(answers, list(model["warnings"]), model.get("manifest")),
            )
        return stored

    def get(self, files: ModelFiles, key: list[int]) -> Entry | None:
        hit = self.stored.get(_label(files))
        if hit is None or hit[0] != key:
            self.changed = True
            return None
        self.fresh[_label(files)] = hit
        return hit[1]

    def put(self, files: ModelFiles, key: list[int], entry: Entry) -> None:
        self.fresh[_label(files)] = (key, entry)

    def save(self) -> None:
        """Write what this run used, if anything changed; a cache that cannot be written is skipped."""
        if self.path is None or not (self.changed or len(self.fresh) != len(self.stored)):
            return
        models: list[dict[str, Any]] = []
        rows: dict[str, list[np.ndarray]] = {name: [] for name in self.shapes}
        for label, (key, entry) in self.fresh.items():
            counts: dict[str, int | None] = {}
            for name, (kind, size) in self.shapes.items():
                value = entry.answers.get(name)
                if kind == BITS:
                    marks = as_marks(value)
                    counts[name] = None if marks is None else marks.count
                    rows[name].append(np.zeros(_width(kind, size), np.uint8) if marks is None else marks.packed)
                else:
                    numbers = as_numbers(value)
                    counts[name] = None if numbers is None else 0
                    rows[name].append(np.zeros(size) if numbers is None else numbers)
            models.append(
                {"label": label, "stat": key, "counts": counts, "warnings": entry.warnings, "manifest": entry.manifest}
            )
        arrays = {
            _member(name, kind): np.array(rows[name], dtype=np.uint8 if kind == BITS else np.float64).reshape(
                len(models), _width(kind, size)
            )
            for name, (kind, size) in self.shapes.items()
        }
        index = np.frombuffer(json.dumps({"schema": SCHEMA, "models": models}).encode(), dtype=np.uint8)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic.atomic_open(self.path, "wb", durable=False) as handle:  # a torn file reads as empty
                # allow_pickle: numpy's default, named so that mypy does not match **arrays to it
                np.savez(handle, allow_pickle=True, index=index, **arrays)
        except OSError:
            pass  # never required: the next run computes from the files again


def _member(name: str, kind: str) -> str:
    return f"marks_{name}" if kind == BITS else f"numbers_{name}"


def _width(kind: str, size: int) -> int:
    """One model's row: packed bytes for bits, floats for numbers."""
    return (size + 7) // 8 if kind == BITS else size


def _label(files: ModelFiles) -> str:
    return f"{files.platform}\0{files.model}"
