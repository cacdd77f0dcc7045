"""--factors: ImageNet-X error ratios (``scoring.factors``): per model and rule of right and
wrong, the error ratio of each of the 16 factors, the worst factor and the annotated images
used; on the primary test set only, which must be ImageNet val or a subset of it (rows
matched by val file name); a heat map of models x factors for the HTML report."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

import numpy as np

from ..base.errors import UsageError
from ..scoring import factors
from ..scoring.labels import Labels
from ..scoring.measures import Judging
from .graded_columns import Graded, Numbers
from .table import Table
from .table_format import Column, plain, two_decimals


class Factors(Graded):
    name = "factors"
    help = ""
    size = factors.SIZE
    primary_only = True

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument(
            "--factors",
            nargs="?",
            const="default",
            metavar="FOLDER",
            help="ImageNet-X error ratios (Idrissi et al. 2022): per factor of variation (pose, "
            "background, texture...), the error rate on the val images whose top factor it is over "
            "the error rate on all annotated images (prototypes left out), the worst factor and the "
            "images used; needs each row's val file name (dataset_files.txt, --val-dir, or "
            "--val-ground-truth); default FOLDER: the annotations of the imagenet-x package "
            "(CC BY-NC 4.0)",
        )

    def option(self, args: argparse.Namespace) -> Any:
        if not args.factors:
            return None
        return {"ci": False, "folder": None if args.factors == "default" else Path(args.factors)}

    def numbers(self, labels: Labels, value: Any, judging: Judging) -> tuple[Numbers, tuple[object, ...]]:
        labels.need_imagenet_classes("--factors")
        if labels.names is None:
            raise UsageError(
                "--factors needs each row's val file name (dataset_files.txt beside the predictions, "
                "--val-dir, or --val-ground-truth FILE for the standard 50,000-image order); it applies "
                "to the ImageNet val set and its subsets only"
            )
        annotations = _annotations(value["folder"] or factors.default_folder())
        per_row = factors.row_factors(labels.names, labels.values, annotations)
        rows = judging.measure.rows
        judged_rows = per_row if rows is None else per_row[rows]
        count = factors.Counts(judged_rows)
        return (lambda graded: count(graded.right)), (judged_rows,)

    def cells(
        self,
        table: Table,
        numbers: list[np.ndarray | None],
        ci: list[np.ndarray | None],
        judging: Judging,
        test_set: str | None,
    ) -> list[Column]:
        key, head = judging.key_of, judging.header_of
        keys = [key(f"x_{name}", None) for name in factors.FACTORS]
        for row, values in zip(table.rows, numbers, strict=True):
            found = None if values is None else factors.FactorErrors.of(values)
            for name, row_key in zip(factors.FACTORS, keys, strict=True):
                row[row_key] = None if found is None else found.ratios[name]
            row[key("x_worst", None)] = None if found is None or found.worst is None else found.worst.replace("_", " ")
            row[key("x_n", None)] = None if found is None else found.n
        labels = [name.replace("_", " ") for name in factors.FACTORS]
        table.heatmaps.append(
            {
                "id": key("factors", None),
                "title": head("ImageNet-X error ratios", None)
                + " (error rate on the factor / on all annotated images)",
                "keys": keys,
                "labels": labels,
            }
        )
        return [
            *(Column(head(f"X {label}", None), k, two_decimals) for label, k in zip(labels, keys, strict=True)),
            Column(head("X worst", None), key("x_worst", None), plain, numeric=False),
            Column(head("X N", None), key("x_n", None)),
        ]


@functools.cache
def _annotations(folder: Path) -> factors.Annotations:
    """Read once per run (with ReaL and corrected labels, each rule asks)."""
    return factors.load(folder)
