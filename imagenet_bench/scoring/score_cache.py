"""A cache of per-image marks, so a rerun on unchanged files prints in about a second.

Ranking 1,500 models means reading 3,000 files of 50,000 rows; a rerun for
another format, ``--ci`` or a plot should not pay that again. The cache holds,
per folder and per set of checks (``checks.checks_key``: the labels and
everything else the marks depend on), each model's marks as packed bits, with its
manifest as read then (a rerun opens no prediction file and no manifest).

It is never stale: a model's entry is used only when its three files (preds,
probs, manifest) have the same size, mtime_ns, ctime_ns and inode as when the
marks were made; any rewrite changes mtime_ns (and ctime_ns, which no user can
set back), so the files are read and hashed again. It is never required: a cache
folder that cannot be created or written is left alone (the table is computed
from the files), so a read-only download still ranks. Files are written
atomically, one ``.npz`` per folder and check set, but not fsync'ed (a cache may be
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
from .checks import Marks
from ..outputs.predfiles import ModelFiles

SCHEMA = 2


def default_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "imagenet-bench" / "scores"


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
    """One model's marks: {check name: Marks, or None when the files cannot answer it}."""

    marks: dict[str, Marks | None]
    warnings: list[str]
    manifest: dict[str, Any] | None = None  # as read with the marks (its file's stat is in the key)


class ScoreCache:
    """Marks of models in one folder under one set of checks; ``root`` None turns it off."""

    def __init__(self, root: Path | None, folder: Path, checks_key: str, lengths: dict[str, int]):
        self.lengths = lengths  # marks per check, to unpack bits
        self.path = None
        if root is not None:
            name = hashlib.sha256(f"{Path(folder).resolve()}\0{checks_key}".encode()).hexdigest()[:40]
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
                packed = {name: data[f"marks_{name}"] for name in self.lengths}
        except Exception:  # an unreadable cache is an empty one
            return
        for row, model in enumerate(index["models"]):
            marks = {}
            for name, length in self.lengths.items():
                count = model["counts"][name]
                marks[name] = None if count is None else Marks(packed[name][row], length, count)
            self.stored[model["label"]] = (model["stat"], Entry(marks, model["warnings"], model.get("manifest")))

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
        models, packed = [], {name: [] for name in self.lengths}
        for label, (key, entry) in self.fresh.items():
            counts = {name: None if marks is None else marks.count for name, marks in entry.marks.items()}
            models.append({"label": label, "stat": key, "counts": counts, "warnings": entry.warnings,
                           "manifest": entry.manifest})
            for name, length in self.lengths.items():
                marks = entry.marks.get(name)
                packed[name].append(marks.packed if marks is not None else np.zeros((length + 7) // 8, np.uint8))
        arrays = {f"marks_{name}": np.array(rows, dtype=np.uint8).reshape(len(models), (self.lengths[name] + 7) // 8)
                  for name, rows in packed.items()}
        index = np.frombuffer(json.dumps({"schema": SCHEMA, "models": models}).encode(), dtype=np.uint8)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic.atomic_open(self.path, "wb", durable=False) as handle:  # a torn file reads as empty
                np.savez(handle, index=index, **arrays)
        except OSError:
            pass  # never required: the next run computes from the files again


def _label(files: ModelFiles) -> str:
    return f"{files.platform}\0{files.model}"

