"""The column sets of accuracy on other labels of the val images: ImageNet-ReaL
(--real-labels) and corrected labels (--clean-labels). Both match rows to val file names,
on the primary test set only."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base.errors import UsageError
from ..scoring.labels import Labels
from ..scoring.measures import InSet, Measure, as_marks
from .column_set import ColumnSet
from .table import Table, answer, count, pct, rank
from .table_format import Column, percent, plain, signed_int

if TYPE_CHECKING:  # imported where used
    from ..scoring.clean_labels import LabelErrors


class Real(ColumnSet):
    """ImageNet-ReaL Acc@1 (bits "real1": the images with a non-empty label set)."""

    name = "real"
    judge = ("real1", "ReaL", "real")

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument(
            "--real-labels",
            nargs="?",
            const="default",
            type=str,
            metavar="PATH",
            help="ImageNet-ReaL Acc@1 (default PATH: the copy timm ships)",
        )

    def option(self, args: argparse.Namespace) -> Path | None:
        if not args.real_labels:
            return None
        from ..base.classes import real_labels_path

        return real_labels_path() if args.real_labels == "default" else Path(args.real_labels)

    def measures(self, labels: Labels, primary: bool, value: Path) -> list[Measure]:
        if not primary:
            return []
        labels.need_imagenet_classes("--real-labels")
        if labels.names is None:
            raise UsageError(
                "--real-labels needs each row's val file name: pass --val-dir, or "
                "--val-ground-truth FILE for the standard 50,000-image order"
            )
        from ..scoring import real_labels

        sets = real_labels.label_sets_for(labels.names, real_labels.load(value))
        return [InSet("real1", real_labels.membership(sets)[1])]

    def fill(self, table: Table, value: Any) -> list[Column]:
        for row in table.rows:
            marks = as_marks(answer(row["card"], "real1"))
            row["real1"] = None if marks is None else pct(marks.count, marks.n)
            row["real_n"] = None if marks is None else marks.n
        return [Column("ReaL@1", "real1", percent), Column("ReaL N", "real_n", plain)]


def corrected_labels(path: Path) -> LabelErrors:
    """--clean-labels: the crowd's imagenet_mturk.json, or a --label-issues CSV (the models' consensus)."""
    from . import label_issues

    if label_issues.is_issues_csv(path):
        return label_issues.read_csv(path)
    from ..scoring import clean_labels

    return clean_labels.load(path)


class Clean(ColumnSet):
    """Acc@1 on corrected labels: errors left out (bits "clean_drop"), and errors relabelled
    where the workers agreed, the rest left out ("clean_fix"); each with its rank and the
    rank's change against the original labels (positive: the model moves up)."""

    name = "clean"
    judge = ("clean_drop", "Clean", "clean")

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument(
            "--clean-labels",
            nargs="?",
            const="default",
            type=str,
            metavar="PATH",
            help="Acc@1 on corrected val labels (Northcutt et al. 2021): label errors left out, "
            "and relabelled where 3 of 5 workers agreed; with ranks and their change (default "
            "PATH: the copy --download label-errors fetches); or a --label-issues CSV, to rank "
            "on the labels the models' consensus corrected",
        )

    def option(self, args: argparse.Namespace) -> Path | None:
        if not args.clean_labels:
            return None
        if args.clean_labels != "default":
            return Path(args.clean_labels)
        from ..outputs import download
        from ..scoring import clean_labels

        return download.default_dest(clean_labels.DOWNLOAD) / clean_labels.FILE

    def measures(self, labels: Labels, primary: bool, value: Path) -> list[Measure]:
        if not primary:
            return []
        labels.need_imagenet_classes("--clean-labels")
        if labels.names is None:
            raise UsageError(
                "--clean-labels needs each row's val file name (dataset_files.txt beside the "
                "predictions, --val-dir, or --val-ground-truth FILE for the standard 50,000-image "
                "order); it applies to the ImageNet val set and its subsets only"
            )
        from ..scoring import clean_labels

        return clean_labels.measures(labels.names, labels.values, corrected_labels(value), value)

    def fill(self, table: Table, value: Path) -> list[Column]:
        from . import label_issues

        rows = table.rows
        for suffix in ("drop", "fix"):
            for row in rows:
                row[f"clean_{suffix}_correct"] = count(row["card"], f"clean_{suffix}")
                marks = as_marks(answer(row["card"], f"clean_{suffix}"))
                row[f"clean_{suffix}"] = None if marks is None else pct(marks.count, marks.n)
            rank(rows, f"clean_{suffix}_correct", f"clean_{suffix}_rank")
            for row in rows:
                new, old = row[f"clean_{suffix}_rank"], row["rank1"]
                row[f"clean_{suffix}_move"] = None if new is None or old is None else old - new
        if label_issues.is_issues_csv(value):
            table.notes.append(f"note: Clean@1 and Fixed@1 use {value}: {label_issues.CAVEAT}")
        return [
            Column("Clean@1", "clean_drop", percent),
            Column("Clean rank", "clean_drop_rank"),
            Column("Clean Δrank", "clean_drop_move", signed_int),
            Column("Fixed@1", "clean_fix", percent),
            Column("Fixed rank", "clean_fix_rank"),
            Column("Fixed Δrank", "clean_fix_move", signed_int),
        ]
