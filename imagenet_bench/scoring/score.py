"""Scoring prediction files: which files form a test set, and each model's answers on it.

Files made on different datasets are never scored against each other's labels.
A folder's dataset is its dataset.json; files without one (the 2019 files) are
taken to be in the standard order of the full 50,000-image val set. Files of
several identified datasets (val, ImageNetV2, Sketch...) become several test
sets of one table; files of an unidentified dataset rank only on their own.

Scoring streams: each model's files are read once (and hashed as read, against
the sha256 its manifest promises), every measure is answered, and the arrays are
dropped, so memory grows by a few kB per model, not by its arrays. Two models are
read at a time, on two threads (file reads, sha256 and most numpy work release the
GIL). Answers of unchanged files come from the score cache.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..base.classes import FULL_VAL_SIZE
from ..base.errors import UsageError, one_line
from ..outputs import output_folder, predfiles
from .measures import Answer, Measure, answer, measures_key
from .score_cache import Entry, ScoreCache, stat_key

FULL_VAL_KEY = "ILSVRC2012 val (50,000 images, standard order)"
VAL_NAME = "imagenet-val"


@dataclass
class PredictionFolder:
    """A folder to read prediction files from; ``required`` ones must exist."""

    folder: Path
    required: bool


def find_files(folders: list[PredictionFolder]) -> list[predfiles.ModelFiles]:
    """Every model's files in the given folders, in folder order."""
    found: list[predfiles.ModelFiles] = []
    seen: set[Path] = set()
    for place in folders:
        if not place.folder.is_dir():
            if place.required:
                raise UsageError(f"{place.folder}: prediction folder does not exist")
            continue
        if place.folder.resolve() in seen:
            continue
        seen.add(place.folder.resolve())
        found += predfiles.discover(place.folder)
    return found


def output_folders(root: Path) -> list[PredictionFolder]:
    """Every output folder (one with dataset.json) at or below ``root``, sorted by path."""
    if not root.is_dir():
        raise UsageError(f"-r/--recursive {root}: folder does not exist")
    found = sorted(p.parent for p in root.rglob(output_folder.DATASET_JSON) if p.is_file())
    if not found:
        raise UsageError(f"-r/--recursive {root}: no output folder (one with {output_folder.DATASET_JSON}) below it")
    return [PredictionFolder(folder, True) for folder in found]


@dataclass
class PredictionSet:
    """The prediction files of one dataset (possibly spread over several folders): one test set
    of the table (a declaration of what a test set is, is ``datasets.test_set.TestSet``)."""

    name: str
    key: str
    n: int
    info: dict[str, Any] | None
    models: list[predfiles.ModelFiles] = field(default_factory=list)

    @property
    def folders(self) -> list[Path]:
        return list(dict.fromkeys(m.folder for m in self.models))

    @property
    def is_full_val(self) -> bool:
        return self.key == FULL_VAL_KEY

    @property
    def is_part_of_val(self) -> bool:
        """Made on some of the val images (dataset.json names no other test set): with no full
        val set in the table, the primary one (a sweep's ``val`` beside ImageNet-C folders made
        from the same images gives relative mCE its clean error)."""
        return self.info is not None and not self.info.get("test_set")


def dataset_key(info: dict[str, Any] | None, n: int, folder: Path) -> str:
    """The dataset a model's files were made on, as a key for grouping."""
    if info is None:
        return FULL_VAL_KEY if n == FULL_VAL_SIZE else f"unknown dataset of {n} images in {folder}"
    if info.get("full_val"):
        return FULL_VAL_KEY
    return f"dataset {info['fingerprint'][:12]} ({info['n_images']} images)"


def test_set_name(info: dict[str, Any] | None, key: str, folder: Path) -> str:
    """dataset.json's "test_set"; else imagenet-val for the full val set; else the folder's name."""
    if info is not None and info.get("test_set"):
        return str(info["test_set"])
    return VAL_NAME if key == FULL_VAL_KEY else folder.resolve().name


def group(all_files: list[predfiles.ModelFiles], failures: list[str]) -> list[PredictionSet]:
    """Test sets in display order (val first, else a part of it, then by name), each with its models sorted.

    Unusable files become failure messages. Raises UsageError when a dataset that
    cannot be identified would be mixed with others, or two datasets share a name.
    """
    infos: dict[Path, dict[str, Any] | None] = {}
    sets: dict[str, PredictionSet] = {}
    taken: dict[tuple[str, str, str], predfiles.ModelFiles] = {}  # (dataset, platform, model)
    # in path order, not command-line order: of a model found twice, the same copy is taken
    where = {folder: str(folder.resolve()) for folder in {f.folder for f in all_files}}
    for files in sorted(all_files, key=lambda f: (where[f.folder], f.platform, f.model)):
        if files.folder not in infos:
            infos[files.folder] = output_folder.read_info(files.folder)
        info = infos[files.folder]
        if info is not None and not files.manifest_path.exists():
            failures.append(
                f"{files.manifest_path}: missing, so these outputs are incomplete (a run was "
                "stopped while writing them); run the prediction script again"
            )
            continue
        try:
            n = predfiles.npy_rows(files.preds_path)
        except predfiles.BadPredictionFile as exc:
            failures.append(str(exc))
            continue
        key = dataset_key(info, n, files.folder)
        test_set = sets.setdefault(
            key,
            PredictionSet(
                test_set_name(info, key, files.folder), key, n if info is None else int(info["n_images"]), info
            ),
        )
        twin = taken.setdefault((key, files.platform, files.model), files)
        if twin is not files:
            print(
                one_line(f"warning: {files.preds_path} ignored: {files.label} already read from {twin.folder}"),
                file=sys.stderr,
            )
            continue
        if n != test_set.n:
            failures.append(
                f"{files.preds_path}: {n} rows but the dataset has {test_set.n} images; "
                "were these made on another dataset?"
            )
            continue
        test_set.models.append(files)
    found = [s for s in sets.values() if s.models]
    unknown = [s for s in found if s.info is None and not s.is_full_val]
    if len(found) > 1 and unknown:
        described = "; ".join(
            f"{s.key}: {', '.join(str(m.preds_path) for m in s.models[:2])}{' ...' if len(s.models) > 2 else ''}"
            for s in found
        )
        raise UsageError(
            f"prediction files from different datasets cannot be ranked together, and some have no "
            f"dataset.json to tell them apart ({described}); pass their folders separately"
        )
    names: dict[str, PredictionSet] = {}
    for s in found:
        if s.name in names:
            raise UsageError(
                f"{s.folders[0]} and {names[s.name].folders[0]}: two different datasets are both "
                f"named {s.name!r}; rank them separately or give their dataset.json a test_set"
            )
        names[s.name] = s
        s.models.sort(key=lambda m: (m.platform, m.model))
    return sorted(found, key=display_order)


def display_order(test_set: PredictionSet) -> tuple[bool, bool, str]:
    """The full val set first, else a part of it (the primary one: it gives relative mCE its
    clean error), then by name."""
    return test_set.name != VAL_NAME, not test_set.is_part_of_val, test_set.name


@dataclass
class Card:
    """What the table keeps of one model on one test set: its manifest and its answers
    ({measure name: Marks, a float vector, or None})."""

    files: predfiles.ModelFiles
    manifest: dict[str, Any] | None
    answers: dict[str, Answer]
    warnings: list[str]


class Tally(Protocol):
    """Something summed over every model's arrays while they are in memory (--label-issues'
    vote counts); asking for one reads every file, since the score cache keeps answers only."""

    def add(self, loaded: predfiles.Predictions) -> None: ...


def _read(
    files: predfiles.ModelFiles, measures: list[Measure], tallies: Sequence[Tally] = ()
) -> tuple[Entry, dict[str, Any] | None]:
    loaded = predfiles.load(files)
    answers = {measure.name: answer(measure, loaded) for measure in measures}
    for tally in tallies:
        tally.add(loaded)
    return Entry(answers, loaded.warnings, loaded.manifest), loaded.manifest


READ_THREADS = 2  # reading, hashing and most numpy work release the GIL: two files at once


def _reads(
    models: list[predfiles.ModelFiles], measures: list[Measure], tallies: Sequence[Tally]
) -> Iterator[tuple[Entry, dict[str, Any] | None] | predfiles.BadPredictionFile]:
    """``_read`` of each model, in order (a bad file yields its error). Two threads read
    while memory holds at most two models' arrays; one when tallies sum over the models."""

    def attempt(files: predfiles.ModelFiles) -> tuple[Entry, dict[str, Any] | None] | predfiles.BadPredictionFile:
        try:
            return _read(files, measures, tallies)
        except predfiles.BadPredictionFile as exc:
            return exc

    if tallies or len(models) < 2:
        yield from map(attempt, models)
        return
    from concurrent.futures import ThreadPoolExecutor  # only here: imports a warm rerun need not pay

    with ThreadPoolExecutor(READ_THREADS) as pool:
        yield from pool.map(attempt, models)


def score(
    test_set: PredictionSet,
    measures: list[Measure],
    cache_root: Path | None,
    failures: list[str],
    tallies: Sequence[Tally] = (),
) -> list[Card]:
    """Every usable model's card; bad files become failure messages, not errors."""
    key, shapes = measures_key(measures), {m.name: (m.kind, m.size) for m in measures}
    caches = {folder: ScoreCache(cache_root, folder, key, shapes) for folder in test_set.folders}
    stats = {files: stat_key(files) for files in test_set.models}
    found = {files: None if tallies else caches[files.folder].get(files, stats[files]) for files in test_set.models}
    missing = [files for files, entry in found.items() if entry is None]
    read = dict(zip(missing, _reads(missing, measures, tallies), strict=True))
    cards = []
    for files in test_set.models:
        cached = found[files]  # None: read (the keys of ``read``)
        try:
            if cached is None:
                outcome = read[files]
                if isinstance(outcome, predfiles.BadPredictionFile):
                    raise outcome
                entry, manifest = outcome
                caches[files.folder].put(files, stats[files], entry)
            else:
                entry, manifest = cached, cached.manifest
                if manifest is not None:  # a cache is input too
                    predfiles.validate_manifest(files.manifest_path, manifest)
        except predfiles.BadPredictionFile as exc:
            failures.append(str(exc))
            continue
        cards.append(Card(files, manifest, entry.answers, entry.warnings))
    for cache in caches.values():
        cache.save()
    return cards
