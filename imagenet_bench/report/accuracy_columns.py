"""The column sets of accuracy on the given labels: the model's identity, Acc@1/Acc@5 with
ranks and exact counts, a selection with custom labels (-i/-j/-l), other test sets with
effective robustness, gaps between two test sets (BG-Gap), and Wilson intervals with McNemar tests (--ci)."""

from __future__ import annotations

import argparse
import fnmatch
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..base.errors import UsageError
from ..scoring import metrics
from ..scoring.labels import Labels, read_class_file, read_index_file
from ..scoring.measures import Measure, TopK
from .column_set import ColumnSet
from .table import Table, count, pct, rank
from .table_format import Column, percent, pvalue, signed


class Identity(ColumnSet):
    """Platform and model id."""

    name = "identity"
    always = True

    def fill(self, table: Table, value: Any) -> list[Column]:
        return [Column("Platform", "platform_name", numeric=False), Column("Model", "model", numeric=False)]


class Accuracy(ColumnSet):
    """Acc@1 and Acc@5 on every test set (bits "acc1"/"acc5"); on the primary one: the
    percentages, their ranks and the exact counts (detail columns N, Correct@1, Correct@5)."""

    name = "accuracy"
    always = True
    sort_key = "acc1"
    judge = ("acc1", "", "")

    def measures(self, labels: Labels, primary: bool, value: Any) -> list[Measure]:
        return labels.accuracy_measures()  # by the test set's rule: its label, or a class it accepts

    def fill(self, table: Table, value: Any) -> list[Column]:
        for row in table.rows:
            card = row["card"]
            row["n"] = None if card is None else card.answers["acc1"].n
            row["correct1"], row["correct5"] = count(card, "acc1"), count(card, "acc5")
            row["acc1"], row["acc5"] = pct(row["correct1"], row["n"]), pct(row["correct5"], row["n"])
        rank(table.rows, "correct1", "rank1")
        rank(table.rows, "correct5", "rank5")
        return [
            Column("Acc@1", "acc1", percent),
            Column("Acc@5", "acc5", percent),
            Column("Rank@1", "rank1"),
            Column("Rank@5", "rank5"),
            # exact counts, in CSV/JSON output so percentages can be re-derived
            Column("N", "n", detail=True),
            Column("Correct@1", "correct1", detail=True),
            Column("Correct@5", "correct5", detail=True),
        ]


class Selection(ColumnSet):
    """cAcc@k: -i/-j pick images of the primary test set, -l replaces their labels (bits
    "custom1"/"custom5"); sorts by cAcc@1."""

    name = "selection"
    group = "image selection and custom labels (2019 flags)"
    sort_key = "cacc1"

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument(
            "-i",
            "--indices_to_omit",
            "--indices-to-omit",
            type=Path,
            metavar="FILE.npy",
            help="indices of images to leave out",
        )
        group.add_argument(
            "-j",
            "--indices_to_keep",
            "--indices-to-keep",
            type=Path,
            metavar="FILE.npy",
            help="indices of the only images to score",
        )
        group.add_argument(
            "-l",
            "--custom_labels",
            "--custom-labels",
            type=Path,
            metavar="FILE.npy",
            help="replacement labels for the selected images (one per selected image); adds "
            "cAcc@k columns and sorts by cAcc@1",
        )

    def option(self, args: argparse.Namespace) -> Any:
        chosen = (args.indices_to_omit, args.indices_to_keep, args.custom_labels)
        return chosen if any(chosen) else None

    def measures(self, labels: Labels, primary: bool, value: Any) -> list[Measure]:
        if not primary:
            return []
        labels.need_imagenet_classes("-i/-j/-l")
        omit, keep, custom = value
        n = len(labels.values)
        mask = np.ones(n, dtype=bool)
        rows: np.ndarray | None = None  # -j's images in its order: -l's labels follow it, as in 2019
        for path, flag, keep_listed in ((omit, "-i/--indices_to_omit", False), (keep, "-j/--indices_to_keep", True)):
            if path is None:
                continue
            idx = read_index_file(path, flag)
            if idx.dtype == bool:
                raise UsageError(f"{path}: {flag} expects indices, not a boolean mask")
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise UsageError(f"{path}: index out of range 0..{n - 1} (found {idx.min()}..{idx.max()})")
            if keep_listed:
                if len(np.unique(idx)) != len(idx):
                    raise UsageError(f"{path}: {flag} lists an image twice; list each once")
                rows = idx.astype(np.int64)
            mask[idx] = keep_listed
        if rows is None:  # all images, or those -i leaves, in order
            rows = np.flatnonzero(mask)
        selected = labels.values[rows]
        if custom is not None:
            selected = read_class_file(custom, "-l/--custom_labels")
            if len(selected) != len(rows):
                raise UsageError(f"{custom}: {len(selected)} custom labels but {len(rows)} images selected")
        return [TopK("custom1", selected, 1, rows), TopK("custom5", selected, 5, rows)]

    def fill(self, table: Table, value: Any) -> list[Column]:
        for row in table.rows:
            card = row["card"]
            row["ccorrect1"], row["ccorrect5"] = count(card, "custom1"), count(card, "custom5")
            n = None if card is None else card.answers["custom1"].n
            row["cacc1"], row["cacc5"] = pct(row["ccorrect1"], n), pct(row["ccorrect5"], n)
        rank(table.rows, "ccorrect1", "crank1")
        rank(table.rows, "ccorrect5", "crank5")
        return [
            Column("cAcc@1", "cacc1", percent),
            Column("cAcc@5", "cacc5", percent),
            Column("cRank@1", "crank1"),
            Column("cRank@5", "crank5"),
        ]


def dataset_line(dataset: dict[str, Any]) -> str:
    """What each folder's dataset is, for the text output: test set, images, classes, subset."""
    restricted = (
        f", outputs restricted to {dataset['restricted_to']} classes"
        if dataset["restricted_to"]
        else ", all 1000 outputs"
    )
    return (
        f"dataset {dataset['name']}: test set {dataset['test_set'] or 'not recorded'}, "
        f"{dataset['n_images']:,} images, {dataset['n_classes']} classes{restricted}"
    )


def _logit(acc_percent: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(acc_percent, dtype=float) / 100.0, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_line(val: list[float], test: list[float]) -> tuple[float, float] | None:
    """Least-squares line logit(test) = slope * logit(val) + intercept (Taori et al. 2020);
    None with fewer than two distinct val accuracies."""
    if len(set(val)) < 2:
        return None
    slope, intercept = np.polyfit(_logit(np.array(val)), _logit(np.array(test)), 1)
    return float(slope), float(intercept)


class TestSets(ColumnSet):
    """Per other test set T: acc1:T, delta:T (T minus the primary's Acc@1) and er:T, the
    effective robustness in points: T's Acc@1 above the logit-space line fitted over the
    baseline models (--er-baseline: a glob on model ids; default every model with both).
    Every row gets these keys, also in a table of one test set (which shows no column);
    the datasets that record a test set or a class restriction get a note line."""

    name = "test_sets"
    always = True

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument(
            "--er-baseline",
            metavar="GLOB",
            help="models (ids, shell-style pattern) the effective-robustness line is fitted on (default: all)",
        )

    def option(self, args: argparse.Namespace) -> Any:
        return args.er_baseline

    def fill(self, table: Table, value: Any) -> list[Column]:
        from ..datasets.test_sets import TEST_SETS

        baseline, rows, primary = value, table.rows, table.test_sets[0]
        test_set_of = {d["name"]: d["test_set"] for d in table.datasets}

        def summarised(name: str) -> bool:  # a summary column shows it (ImageNet-C's folders, in mCE)
            declared = TEST_SETS.get(test_set_of.get(name) or "")
            return declared is not None and not declared.own_columns

        noted = [d for d in table.datasets if (d["test_set"] or d["restricted_to"]) and not summarised(d["name"])]
        table.notes += [dataset_line(d) for d in noted]
        columns = []
        for name in table.test_sets:
            for row in rows:
                card = row["cards"].get(name)
                row[f"acc1:{name}"] = None if card is None else pct(count(card, "acc1"), card.answers["acc1"].n)
                both = row[f"acc1:{name}"] is not None and row["acc1"] is not None
                row[f"delta:{name}"] = row[f"acc1:{name}"] - row["acc1"] if both else None
                row[f"er:{name}"] = None
            if name == primary:
                continue
            fitted = [
                r
                for r in rows
                if r[f"delta:{name}"] is not None and (baseline is None or fnmatch.fnmatchcase(r["model"], baseline))
            ]
            line = fit_line([r["acc1"] for r in fitted], [r[f"acc1:{name}"] for r in fitted])
            table.fits[name] = {
                "slope": None if line is None else line[0],
                "intercept": None if line is None else line[1],
                "baseline": [f"{r['platform']} {r['model']}" for r in fitted],
            }
            if line is not None:
                for row in rows:
                    if row[f"delta:{name}"] is not None:
                        z = line[0] * _logit(np.array([row["acc1"]]))[0] + line[1]
                        row[f"er:{name}"] = row[f"acc1:{name}"] - 100.0 / (1.0 + math.exp(-z))
            detail = summarised(name)
            columns += [
                Column(f"Acc@1 {name}", f"acc1:{name}", percent, detail=detail),
                Column(f"Δ {name}", f"delta:{name}", signed, detail=detail),
                Column(f"ER {name}", f"er:{name}", signed, detail=detail),
            ]
        return columns


class Gaps(ColumnSet):
    """A test set declared with a gap (``TestSet.gap``: ImageNet-9's Mixed-Same, BG-Gap) gets a
    column of its Acc@1 minus the other test set's, in points, where both are in the table."""

    name = "gaps"
    always = True

    def fill(self, table: Table, value: Any) -> list[Column]:
        from ..datasets.test_sets import TEST_SETS

        by_test_set = {d["test_set"]: d["name"] for d in table.datasets if d["test_set"]}
        columns = []
        for test_set, name in by_test_set.items():
            declared = TEST_SETS.get(test_set)
            gap = None if declared is None else declared.gap
            if gap is None or gap.minus not in by_test_set or len(table.test_sets) < 2:
                continue
            other = by_test_set[gap.minus]
            for row in table.rows:
                both = row[f"acc1:{name}"] is not None and row[f"acc1:{other}"] is not None
                row[f"gap:{name}"] = row[f"acc1:{name}"] - row[f"acc1:{other}"] if both else None
            columns.append(Column(gap.header, f"gap:{name}", signed))
        return columns


class Intervals(ColumnSet):
    """Wilson 95% intervals, and an exact McNemar test of each row against the one above
    (on the bits "acc1"): ``~`` marks a row whose Acc@1 is not significantly different
    (p >= 0.05) from the row above it on the same images; filled in display order."""

    name = "intervals"
    flag = "--ci"
    help = (
        "Wilson 95%% intervals; '~' marks a row whose Acc@1 is not significantly "
        "different from the row above (exact McNemar test, p >= 0.05)"
    )
    after_sort = True
    alpha = 0.05

    def fill(self, table: Table, value: Any) -> list[Column]:
        above = None
        for row in table.rows:
            card = row["card"]
            if card is None:
                continue
            for k in ("1", "5"):
                if row[f"correct{k}"] is not None:
                    lo, hi = metrics.wilson_interval(row[f"correct{k}"], row["n"])
                    row[f"ci{k}"] = f"{100 * lo:.2f}-{100 * hi:.2f}"
            right = card.answers["acc1"].unpack()
            if above is not None:
                p = metrics.mcnemar_exact(above, right)
                row["p_above"] = p
                row["tie_mark"] = "~" if p >= self.alpha else ""
            above = right
        return [
            Column("Acc@1 95% CI", "ci1"),
            Column("Acc@5 95% CI", "ci5"),
            Column("p vs above", "p_above", pvalue),
            Column("~", "tie_mark", numeric=False),
        ]
