"""The table script's work after argparse: find the files, pick each test set's labels,
ask the enabled column sets (``columns.COLUMN_SETS``) what to measure, score (streaming,
cached), and let each fill its rows and columns of the ``table.Table``.

The first test set (imagenet-val when present) is the primary one: Acc@1/Acc@5,
ranks, selections, custom labels, ReaL, corrected labels, --ci and --published
are about it; every other test set adds its Acc@1, the difference from the
primary's and the effective robustness.

What only some options need (label issues, corrected labels, a val folder's scan,
the published figures) is imported where it is used: at 34 models most of the
table's time over a bare numpy script is fixed cost, imports (and compiling them) first.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..base.errors import UsageError, one_line
from ..scoring import labels as test_labels
from ..scoring import score as scoring
from ..scoring.labels import Labels
from ..scoring.measures import Judging
from . import columns, table
from .column_set import ColumnSet
from .label_columns import corrected_labels
from .table_format import Column

if TYPE_CHECKING:
    from . import label_issues


@dataclass
class TableOptions:
    """What the user asked for, typed (built from the command line by the script)."""

    folders: list[scoring.PredictionFolder]
    val_dir: Path | None = None
    val_ground_truth: Path | None = None
    labels: Path | None = None
    columns: dict[str, Any] = field(default_factory=dict)  # {column set name: its option value (None: off)}
    label_issues: bool = False  # the models' consensus on the primary test set's labels
    confident_learning: bool = False  # with label_issues: also cleanlab's confident learning
    sort: str | None = None
    cache_root: Path | None = None
    plot: bool = False


@dataclass
class Built:
    table: table.Table
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    issues: label_issues.Report | None = None  # --label-issues


def enabled_sets(options: TableOptions) -> list[tuple[ColumnSet, Any]]:
    """The column sets this table computes, in registry order, each with its option value."""
    found = []
    for column_set in columns.COLUMN_SETS:  # read now: a registry extended after import counts
        value = options.columns.get(column_set.name)
        if column_set.enabled(value, options.plot):
            found.append((column_set, value))
    return found


def judgings(sets: list[tuple[ColumnSet, Any]], measures: list[Any]) -> list[Judging]:
    """The rules of right and wrong the enabled sets declare (``ColumnSet.judge``) that have a
    measure on this test set, in registry order."""
    by_name = {m.name: m for m in measures}
    return [Judging(by_name[s.judge[0]], s.judge[1], s.judge[2]) for s, _ in sets if s.judge and s.judge[0] in by_name]


def describe(test_set: scoring.PredictionSet, labels: Labels) -> dict[str, Any]:
    info = test_set.info or {}
    classes = int(np.count_nonzero(np.bincount(labels.values, minlength=1)))  # labels are 0..999 (checked)
    subset = info.get("class_subset")  # the classes each model was restricted to (prediction scripts)
    return {
        "name": test_set.name,
        "test_set": info.get("test_set"),
        "folders": [str(f) for f in test_set.folders],
        "n_images": test_set.n,
        "n_classes": classes,
        "class_subset": subset["n_classes"] if subset else (None if classes == 1000 else classes),
        "restricted_to": subset["n_classes"] if subset else None,  # outputs restricted before the softmax
        "labels": labels.source,
        "full_val": test_set.is_full_val,
        "fingerprint": info.get("fingerprint"),
    }


def nothing_ranked(failures: list[str]) -> UsageError:
    """No model is left to rank: every file that failed is named (all but the first as
    warnings), then the one error line."""
    for failure in failures[1:]:
        print(f"warning: {one_line(failure)}", file=sys.stderr)
    more = f" (and {len(failures) - 1} more files, named above)" if len(failures) > 1 else ""
    return UsageError(f"no model left to rank: {failures[0]}{more}")


def build(options: TableOptions) -> Built:
    files = scoring.find_files(options.folders)
    if not files:
        folders = ", ".join(str(s.folder) for s in options.folders)
        raise UsageError(f"no prediction files found in {folders}; run the prediction scripts or pass -k/-p/--dir/-r")
    failures: list[str] = []
    test_sets = scoring.group(files, failures)
    if not test_sets:
        raise nothing_ranked(failures)
    primary = test_sets[0]
    sets = enabled_sets(options)
    cards, datasets = {}, []
    judges: dict[str, list[Judging]] = {}
    tallies = None
    if options.label_issues:
        from . import label_issues

        tallies = label_issues.Tallies.for_images(primary.n, options.confident_learning)
    given = test_labels.Given(options.val_dir, options.val_ground_truth, options.labels)  # the primary's
    for test_set in test_sets:
        labels = test_labels.resolve(test_set, given if test_set is primary else None)
        if len(labels.values) != test_set.n:
            raise UsageError(
                f"{test_set.models[0].preds_path}: {test_set.n} rows but {len(labels.values)} labels "
                f"({labels.source}); were these made on another dataset?"
            )
        print(
            one_line(f"labels: {'' if len(test_sets) == 1 else test_set.name + ': '}{labels.source}"), file=sys.stderr
        )
        counted = tallies if test_set is primary else None  # --label-issues counts the primary's models
        if counted is not None:
            labels.need_imagenet_classes("--label-issues")
        is_primary = test_set is primary
        measures = [m for column_set, value in sets for m in column_set.measures(labels, is_primary, value)]
        judges[test_set.name] = judgings(sets, measures)
        measures += [
            m for column_set, value in sets for m in column_set.graded(labels, is_primary, value, judges[test_set.name])
        ]
        cards[test_set.name] = scoring.score(
            test_set, measures, options.cache_root, failures, list(counted) if counted is not None else []
        )
        datasets.append(describe(test_set, labels))
        if counted is not None:
            primary_labels = labels
    if not any(cards.values()):
        raise nothing_ranked(failures)
    built = Built(
        assemble(cards, datasets, sets, options.sort, judges),
        failures,
        [w for test_cards in cards.values() for card in test_cards for w in card.warnings],
    )
    if tallies is not None:
        crowd = options.columns.get("clean")
        others = sum(len(c) for name, c in cards.items() if name != primary.name)
        built.issues = label_issues.report(
            primary.name,
            primary_labels.values,
            primary_labels.names,
            tallies,
            None if crowd is None or label_issues.is_issues_csv(crowd) else corrected_labels(crowd),
            others,
        )
    return built


def assemble(
    cards: dict[str, list[scoring.Card]],
    datasets: list[dict[str, Any]],
    sets: list[tuple[ColumnSet, Any]],
    sort: str | None,
    judges: dict[str, list[Judging]] | None = None,
) -> table.Table:
    """The table: each column set fills its row values (in registry order; those that depend
    on the display order after sorting) and gives its columns, which keep registry order,
    detail columns after all shown ones."""
    result = table.Table(table.base_rows(cards, datasets[0]["name"]), [], datasets, [d["name"] for d in datasets])
    result.judges = judges or {}
    parts: dict[str, list[Column]] = {}
    for column_set, value in sets:
        if not column_set.after_sort:
            parts[column_set.name] = column_set.fill(result, value)
    sort_key = [s.sort_key for s, _ in sets if s.sort_key][-1]
    if sort:
        sort_key = sort_column(sort, ordered(parts, sets))
    table.sort_rows(result.rows, sort_key)
    for column_set, value in sets:  # after sorting: e.g. each row tested against the row above it
        if column_set.after_sort:
            parts[column_set.name] = column_set.fill(result, value)
    result.columns = ordered(parts, sets)
    return result


def ordered(parts: dict[str, list[Column]], sets: list[tuple[ColumnSet, Any]]) -> list[Column]:
    """The columns of ``parts`` in registry order, the detail ones (CSV and JSON only) last."""
    found = [c for column_set, _ in sets for c in parts.get(column_set.name, [])]
    return [c for c in found if not c.detail] + [c for c in found if c.detail]


def sort_column(name: str, candidates: list[Column]) -> str:
    """--sort accepts a column's header (as printed) or its key."""
    for column in candidates:
        if name in (column.header, column.key) and column.numeric:
            return column.key
    known = ", ".join(repr(c.header) for c in candidates if c.numeric)
    raise UsageError(f"--sort {name}: no such numeric column; one of {known}")
