"""One run over many test sets (a folder of them, ``datasets.sweep``): where each test set's
outputs go, how the (model, test set) pairs are shared out, and the locks of their folders.

The layout: test set ``D/<path>`` of the sweep ``D`` writes into ``-o OUT`` as ``OUT/<path>/``,
exactly the folder that a run of ``D/<path>`` alone with ``-o OUT/<path>`` writes; a folder that is
one test set writes into ``-o`` itself, as before. So the tree of outputs mirrors the tree of test
sets, each output folder is named as its test set's folder (the table names a part of the val set
by its folder's name: ``val``, not ``pytorch_imagenet``), and the scripts keep their own default
``-o`` (``pytorch_imagenet/``, ``keras_imagenet/`` beside them).

The pairs are numbered test set by test set (in path order), models in registry order within
each, and ``--model-shard I/N`` takes every N-th pair from the I-th: every pair once over the N
jobs, and with one test set exactly the models a shard took before. Each job locks every folder
it writes into for the whole run (``folder_lock``: a second run is refused before anything runs);
resume is each folder's own (complete outputs of the same request are skipped).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..base.errors import UsageError, shown
from ..datasets.layout import Dataset
from ..datasets.sweep import members
from . import cli, folder_lock, runner


@dataclass(frozen=True)
class Target:
    """One test set of the run: its folder, its output folder, and its path below the sweep's
    root (``""`` for a run of one test set: nothing in its lines or layout changes)."""

    val_dir: Path | None
    output_dir: Path
    where: str


def targets(val_dir: Path | None, output_dir: Path) -> list[Target]:
    """The run's test sets: ``val_dir`` alone, or each test set of the sweep it holds."""
    found = None if val_dir is None else members(val_dir)
    if found is None:
        return [Target(val_dir, output_dir, "")]
    chosen = [Target(m.folder, output_dir.joinpath(*m.where.split("/")), m.where) for m in found]
    for target in chosen:
        _refuse_links(output_dir, target.output_dir)
    return chosen


def _refuse_links(output_dir: Path, folder: Path) -> None:
    """The folders this run makes below -o are its own: a link there (someone else's) is refused,
    never written through."""
    for path in (folder, *folder.parents):
        if path == output_dir:
            return
        if path.is_symlink():
            raise UsageError(
                f"-o/--output-dir {shown(output_dir)}: {shown(path)} is a link, where this run writes a "
                "test set's outputs; remove it or pick another -o/--output-dir"
            )


def share(n_targets: int, models: Sequence[str], part: tuple[int, int] | None) -> list[list[str]]:
    """Each test set's models for this job: ``runner.shard`` of the pairs, test set by test set
    (pair (test set t, model m) is number t * M + m; None: every pair)."""
    mine = set(runner.shard([(t, m) for t in range(n_targets) for m in models], part))
    return [[m for m in models if (t, m) in mine] for t in range(n_targets)]


def this_job(
    n_targets: int, models: Sequence[str], part: tuple[int, int] | None
) -> tuple[list[list[str]], list[str], list[str]]:
    """(each test set's models for this job, the models it runs anywhere, the selected ones it
    never runs: other shards'); UsageError when it has no pair."""
    shares = share(n_targets, models, part)
    mine = [m for m in models if any(m in chosen for chosen in shares)]
    if not mine:
        raise UsageError("no models selected (check -m/--exclude/--model-shard)")
    return shares, mine, [m for m in models if m not in mine]


def load_datasets(
    options: cli.RunOptions, targets: Sequence[Target], shares: Sequence[Sequence[str]]
) -> list[Dataset | None]:
    """Each test set this job has a pair on, read (listed, labelled, checked); None for the
    others' (another shard's whole test set is never scanned)."""
    return [
        cli.load_dataset(dataclasses.replace(options, val_dir=t.val_dir)) if models else None
        for t, models in zip(targets, shares, strict=True)
    ]


@contextlib.contextmanager
def hold(folders: Sequence[Path], part: tuple[int, int] | None) -> Iterator[None]:
    """``folder_lock.hold`` on every folder until the block ends (each removes the empty folders
    it created: shared ones go with the last lock that held a folder in them)."""
    with contextlib.ExitStack() as stack:
        for folder in folders:
            stack.enter_context(folder_lock.hold(folder, part))
        yield
