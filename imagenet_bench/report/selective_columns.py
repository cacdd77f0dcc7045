"""--selective: how well each model's top-1 probability tells its right answers from its wrong
ones, so that it may abstain (``scoring.selective``): AURC, E-AURC, Cov@95 and Cov@99, per
rule of right and wrong and per test set."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..scoring import selective
from ..scoring.confidences import Confidences
from ..scoring.labels import Labels
from ..scoring.measures import Judging
from .graded_columns import Graded, Numbers, interval_text
from .table import Table
from .table_format import Column, percent


class Selective(Graded):
    name = "selective"
    flag = "--selective"
    help = (
        "selective prediction with the top-1 probability as confidence: AURC and E-AURC (%%; "
        "the risk-coverage curve has a point per image, k = 1..N, none at coverage 0; images of "
        "equal confidence are kept together, each counted with its group's error rate, which "
        "differs from Galil et al. 2023 only where confidences tie), and Cov@95/Cov@99: the "
        "largest coverage at a confidence threshold with selective accuracy >= 95%%/99%% "
        "(blank: never); with --ci, a bootstrap interval for AURC"
    )
    size = selective.SIZE

    def numbers(self, labels: Labels, value: Any, judging: Judging) -> tuple[Numbers, tuple[object, ...]]:
        return selective.numbers, ()

    def interval(self, graded: Confidences, weights: np.ndarray) -> np.ndarray:
        return selective.aurc_of_weighted(graded, weights)

    def cells(
        self,
        table: Table,
        numbers: list[np.ndarray | None],
        ci: list[np.ndarray | None],
        judging: Judging,
        test_set: str | None,
    ) -> list[Column]:
        key, head = judging.key_of, judging.header_of
        for row, values, interval in zip(table.rows, numbers, ci, strict=True):
            found = None if values is None or np.isnan(values[0]) else selective.Selective.of(values)
            row[key("aurc", test_set)] = None if found is None else 100 * found.aurc
            row[key("e_aurc", test_set)] = None if found is None else 100 * found.e_aurc
            for target in selective.TARGETS:
                reached = None if found is None else found.coverage[target]
                row[key(f"cov{target}", test_set)] = None if reached is None else 100 * reached
            row[key("aurc_ci", test_set)] = interval_text(interval)
        columns = [
            Column(head("AURC", test_set), key("aurc", test_set), percent),
            Column(head("E-AURC", test_set), key("e_aurc", test_set), percent),
        ]
        columns += [Column(head(f"Cov@{t}", test_set), key(f"cov{t}", test_set), percent) for t in selective.TARGETS]
        if any(c is not None for c in ci):
            columns.append(Column(head("AURC 95% CI", test_set), key("aurc_ci", test_set)))
        return columns
