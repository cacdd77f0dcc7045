"""The table script's work after argparse: find the files, pick each test set's labels,
decide which checks to run, score (streaming, cached), and build the ``table.Table``.

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
from typing import TYPE_CHECKING

import numpy as np

from ..scoring import score as scoring
from . import table
from ..scoring import labels as test_labels
from ..scoring.checks import Check, InSet, TopK
from ..scoring.labels import Labels, read_class_file, read_index_file
from ..base.errors import UsageError

if TYPE_CHECKING:
    from . import label_issues


@dataclass
class TableOptions:
    """What the user asked for, typed (built from the command line by the script)."""

    folders: list[scoring.PredictionFolder]
    val_dir: Path | None = None
    val_ground_truth: Path | None = None
    labels: Path | None = None
    omit: Path | None = None
    keep: Path | None = None
    custom: Path | None = None
    published: bool = False
    ci: bool = False
    real_labels: Path | None = None
    clean_labels: Path | None = None
    label_issues: bool = False  # the models' consensus on the primary test set's labels
    confident_learning: bool = False  # with label_issues: also cleanlab's confident learning
    speed: bool = False
    er_baseline: str | None = None
    sort: str | None = None
    cache_root: Path | None = None
    plot: bool = False


@dataclass
class Built:
    table: table.Table
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    issues: label_issues.Report | None = None  # --label-issues


def selection_checks(labels: np.ndarray, options: TableOptions) -> list[Check]:
    """custom1/custom5: -i/-j pick the images, -l replaces their labels."""
    n = len(labels)
    mask = np.ones(n, dtype=bool)
    for path, flag, keep_listed in ((options.omit, "-i/--indices_to_omit", False),
                                    (options.keep, "-j/--indices_to_keep", True)):
        if path is None:
            continue
        idx = read_index_file(path, flag)
        if idx.dtype == bool:
            raise UsageError(f"{path}: {flag} expects indices, not a boolean mask")
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise UsageError(f"{path}: index out of range 0..{n - 1} (found {idx.min()}..{idx.max()})")
        if keep_listed:
            mask[:] = False
        mask[idx] = keep_listed
    selected = labels[mask]
    if options.custom is not None:
        selected = read_class_file(options.custom, "-l/--custom_labels")
        if len(selected) != int(mask.sum()):
            raise UsageError(f"{options.custom}: {len(selected)} custom labels but {int(mask.sum())} images selected")
    rows = np.flatnonzero(mask)
    return [TopK("custom1", selected, 1, rows), TopK("custom5", selected, 5, rows)]


def primary_checks(labels: Labels, options: TableOptions) -> list[Check]:
    checks = labels.accuracy_checks()
    if options.omit or options.keep or options.custom:
        checks += selection_checks(labels.values, options)
    if options.real_labels:
        if labels.names is None:
            raise UsageError("--real-labels needs each row's val file name: pass --val-dir, or "
                             "--val-ground-truth FILE for the standard 50,000-image order")
        from ..scoring import real_labels

        sets = real_labels.label_sets_for(labels.names, real_labels.load(options.real_labels))
        checks.append(InSet("real1", real_labels.membership(sets)[1]))
    if options.clean_labels:
        if labels.names is None:
            raise UsageError("--clean-labels needs each row's val file name (dataset_files.txt beside the "
                             "predictions, --val-dir, or --val-ground-truth FILE for the standard 50,000-image "
                             "order); it applies to the ImageNet val set and its subsets only")
        from ..scoring import clean_labels

        checks += clean_labels.checks(labels.names, labels.values, corrected_labels(options.clean_labels),
                                      options.clean_labels)
    return checks


def describe(test_set: scoring.TestSet, labels: Labels) -> dict:
    info = test_set.info or {}
    classes = int(np.count_nonzero(np.bincount(labels.values, minlength=1)))  # labels are 0..999 (checked)
    subset = info.get("class_subset")  # the classes each model was restricted to (prediction scripts)
    return {"name": test_set.name, "test_set": info.get("test_set"), "folders": [str(f) for f in test_set.folders],
            "n_images": test_set.n, "n_classes": classes,
            "class_subset": subset["n_classes"] if subset else (None if classes == 1000 else classes),
            "restricted_to": subset["n_classes"] if subset else None,  # outputs restricted before the softmax
            "labels": labels.source, "full_val": test_set.is_full_val, "fingerprint": info.get("fingerprint")}


def dataset_line(dataset: dict) -> str:
    """What each folder's dataset is, for the text output: test set, images, classes, subset."""
    restricted = (f", outputs restricted to {dataset['restricted_to']} classes" if dataset["restricted_to"]
                  else ", all 1000 outputs")
    return (f"dataset {dataset['name']}: test set {dataset['test_set'] or 'not recorded'}, "
            f"{dataset['n_images']:,} images, {dataset['n_classes']} classes{restricted}")


def nothing_ranked(failures: list[str]) -> UsageError:
    """No model is left to rank: every file that failed is named (all but the first as
    warnings), then the one error line."""
    for failure in failures[1:]:
        print(f"warning: {failure}", file=sys.stderr)
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
    cards, datasets = {}, []
    tallies = None
    if options.label_issues:
        from . import label_issues

        tallies = label_issues.Tallies.for_images(primary.n, options.confident_learning)
    for test_set in test_sets:
        given = test_labels.Given(options.val_dir, options.val_ground_truth, options.labels)
        labels = test_labels.resolve(test_set, given if test_set is primary else None)
        if len(labels.values) != test_set.n:
            raise UsageError(f"{test_set.models[0].preds_path}: {test_set.n} rows but {len(labels.values)} labels "
                             f"({labels.source}); were these made on another dataset?")
        print(f"labels: {'' if len(test_sets) == 1 else test_set.name + ': '}{labels.source}", file=sys.stderr)
        checks = primary_checks(labels, options) if test_set is primary else labels.accuracy_checks()
        counted = tallies is not None and test_set is primary
        cards[test_set.name] = scoring.score(test_set, checks, options.cache_root, failures,
                                             list(tallies) if counted else [])
        datasets.append(describe(test_set, labels))
        if counted:
            primary_labels = labels
    if not any(cards.values()):
        raise nothing_ranked(failures)
    built = Built(assemble(cards, datasets, primary, options), failures,
                  [w for test_cards in cards.values() for card in test_cards for w in card.warnings])
    if tallies is not None:
        crowd = options.clean_labels
        others = sum(len(c) for name, c in cards.items() if name != primary.name)
        built.issues = label_issues.report(
            primary.name, primary_labels.values, primary_labels.names, tallies,
            None if crowd is None or label_issues.is_issues_csv(crowd) else corrected_labels(crowd), others)
    return built


def corrected_labels(path: Path):
    """--clean-labels: the crowd's imagenet_mturk.json, or a --label-issues CSV (the models' consensus)."""
    from . import label_issues

    if label_issues.is_issues_csv(path):
        return label_issues.read_csv(path)
    from ..scoring import clean_labels

    return clean_labels.load(path)


def assemble(cards: dict, datasets: list[dict], primary: scoring.TestSet, options: TableOptions) -> table.Table:
    rows = table.base_rows(cards, primary.name)
    columns = table.base_columns()
    notes = []
    sort_key = "acc1"
    if options.omit or options.keep or options.custom:
        columns += table.add_selection(rows)
        sort_key = "cacc1"
    test_sets = [d["name"] for d in datasets]
    more, fits = table.add_test_sets(rows, test_sets, primary.name, options.er_baseline)
    columns += more  # none for one test set, whose rows still get acc1:T, delta:T, er:T
    notes += [dataset_line(d) for d in datasets if d["test_set"] or d["restricted_to"]]
    if options.published or options.plot:
        columns += add_published(rows, datasets, primary, options.published, notes)
    ci_at = len(columns)
    if options.real_labels:
        columns += table.add_real(rows)
    if options.clean_labels:
        from . import label_issues

        columns += table.add_clean(rows)
        if label_issues.is_issues_csv(options.clean_labels):
            notes.append(f"note: Clean@1 and Fixed@1 use {options.clean_labels}: {label_issues.CAVEAT}")
    if options.speed:
        columns += table.add_speed(rows)
    columns += table.count_columns()
    if options.sort:
        sort_key = sort_column(options.sort, columns)
    table.sort_rows(rows, sort_key)
    if options.ci:  # after sorting: each row is tested against the row above it
        columns[ci_at:ci_at] = table.add_intervals(rows)
    return table.Table(rows, columns, datasets, test_sets, fits, notes)


def add_published(rows: list[dict], datasets: list[dict], primary: scoring.TestSet, shown: bool,
                  notes: list[str]) -> list:
    """The published figures in ``rows`` (the plot marks them too); their columns and notes
    when ``shown`` (--published)."""
    from ..models.published import VAL

    published_sets = {d["name"]: d["test_set"] or VAL for d in datasets}  # what each dataset samples
    columns = table.add_published(rows, published_sets[primary.name])
    if not shown:
        return []
    if published_sets[primary.name] != VAL:
        notes.append(f"note: the published figures are for the whole {published_sets[primary.name]} test set, "
                     "from the sources that published it (timm); the others publish none, so they are blank")
    elif not primary.is_full_val:
        notes.append(f"note: the published figures are for the full 50,000-image val set, not {primary.name} "
                     f"({primary.n} images): a difference here is not a discrepancy")
    if len(datasets) > 1:
        columns += table.add_published_test_sets(rows, {d["name"]: published_sets[d["name"]] for d in datasets
                                                        if d["name"] != primary.name})
    return columns


def sort_column(name: str, columns: list) -> str:
    """--sort accepts a column's header (as printed) or its key."""
    for column in columns:
        if name in (column.header, column.key) and column.numeric:
            return column.key
    known = ", ".join(repr(c.header) for c in columns if c.numeric)
    raise UsageError(f"--sort {name}: no such numeric column; one of {known}")
