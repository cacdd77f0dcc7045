"""--calibration: how far each model's top-1 probability can be trusted (``scoring.calibration``):
ECE, MCE, the Brier score and the mean top-1 probability beside the accuracy on the same
images, per rule of right and wrong and per test set; the reliability diagram of the primary
test set for the HTML report and --plot, and a chart of ECE against Acc@1."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..scoring import calibration
from ..scoring.confidences import Confidences
from ..scoring.labels import Labels
from ..scoring.measures import Judging
from .graded_columns import Graded, Numbers, interval_text
from .table import Table
from .table_format import Column, percent, signed


def four_decimals(value: Any) -> str:
    return "" if value is None else f"{value:.4f}"


class Calibration(Graded):
    name = "calibration"
    flag = "--calibration"
    help = (
        "calibration of the top-1 probability: ECE and MCE (%%, 15 equal-width bins on (0, 1]), "
        "the Brier score of the top-1 confidence, and the mean top-1 probability minus Acc@1 "
        "(points: above 0, over-confident); with --ci, a bootstrap interval for ECE"
    )
    size = calibration.SIZE
    version = "v3"  # bin sums from the shared sort, by reduceat

    def numbers(self, labels: Labels, value: Any, judging: Judging) -> tuple[Numbers, tuple[object, ...]]:
        return calibration.sums, ()

    def interval(self, graded: Confidences, weights: np.ndarray) -> np.ndarray:
        confidence, correct = graded.confidence, graded.right.astype(float)
        return calibration.ece_of_weighted(calibration.bin_of(confidence), confidence, correct, weights)

    def cells(
        self,
        table: Table,
        numbers: list[np.ndarray | None],
        ci: list[np.ndarray | None],
        judging: Judging,
        test_set: str | None,
    ) -> list[Column]:
        key = judging.key_of
        for row, values, interval in zip(table.rows, numbers, ci, strict=True):
            found = None if values is None else calibration.Calibration.of(values)
            usable = found is not None and found.n > 0
            row[key("ece", test_set)] = 100 * found.ece if usable and found else None
            row[key("mce", test_set)] = 100 * found.mce if usable and found else None
            row[key("brier", test_set)] = found.brier if usable and found else None
            row[key("mean_p1", test_set)] = 100 * found.mean_confidence if usable and found else None
            row[key("overconfidence", test_set)] = (
                100 * (found.mean_confidence - found.accuracy) if usable and found else None
            )
            row[key("ece_ci", test_set)] = interval_text(interval)
            if found is not None and not judging.key and test_set is None:
                row["reliability"] = [list(b) for b in found.bins]
        head = judging.header_of
        if not judging.key and test_set is None:
            table.row_figures["reliability"] = "reliability"
            table.charts.append(
                {
                    "id": "ece",
                    "title": "ECE against Acc@1",
                    "x": "acc1",
                    "y": "ece",
                    "xLabel": "Acc@1 (%)",
                    "yLabel": "ECE (%)",
                }
            )
        columns = [
            Column(head("ECE", test_set), key("ece", test_set), percent),
            Column(head("MCE", test_set), key("mce", test_set), percent),
            Column(head("Brier", test_set), key("brier", test_set), four_decimals),
            Column(head("Mean p@1", test_set), key("mean_p1", test_set), percent),
            Column(head("p@1-Acc", test_set), key("overconfidence", test_set), signed),
        ]
        if any(c is not None for c in ci):
            columns.append(Column(head("ECE 95% CI", test_set), key("ece_ci", test_set)))
        return columns
