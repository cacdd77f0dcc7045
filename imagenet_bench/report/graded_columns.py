"""The base of the column sets that grade each model's confidence or errors by the rules of
right and wrong the table has (``ColumnSet.judge``: the test set's labels; ReaL and the
corrected labels where --real-labels and --clean-labels are given): --calibration,
--selective and --factors.

Each keeps a small float vector per model and rule (``measures.judged``), computed while
the arrays are in memory and kept in the score cache, and shows its columns per rule and per
test set: "ECE" on the primary test set's labels, "ECE ReaL", "ECE imagenet-v2"...
With --ci a set may add a seeded bootstrap interval (``scoring.bootstrap``), which is
computed from the images too, and so is another cached vector.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from ..scoring import bootstrap
from ..scoring.confidences import Confidences
from ..scoring.labels import Labels
from ..scoring.measures import Judging, Measure, as_numbers, judged
from .column_set import ColumnSet
from .table import Table, answer
from .table_format import Column

Numbers = Callable[[Confidences], np.ndarray]


@functools.cache
def draws(n: int) -> np.ndarray:
    """The bootstrap's draws for ``n`` images, made once per run (the same for every model)."""
    return bootstrap.draws(n)


def interval_text(values: np.ndarray | None, scale: float = 100.0) -> str | None:
    return None if values is None else f"{scale * values[0]:.2f}-{scale * values[1]:.2f}"


class Graded(ColumnSet):
    """Subclasses say ``name``, ``flag``, ``help``, ``size``, ``version``, ``numbers`` (the
    vector of one model under one rule), optionally ``interval`` (the statistic of the
    bootstrap, for --ci), and ``cells`` (row values and columns of one rule on one test set)."""

    size = 0
    version = "v1"
    primary_only = False  # only the primary test set (ImageNet-X: val only)

    def option(self, args: argparse.Namespace) -> Any:
        return {"ci": bool(args.ci)} if super().option(args) else None

    def numbers(self, labels: Labels, value: Any, judging: Judging) -> tuple[Numbers, tuple[object, ...]]:
        """The vector of one model under ``judging``'s rule, and what it depends on besides the
        files and the rule (for the cache key)."""
        raise NotImplementedError

    def interval(self, graded: Confidences, weights: np.ndarray) -> np.ndarray | None:
        """The statistic under each row of ``weights`` (for --ci), or None: no interval."""
        return None

    def graded(self, labels: Labels, primary: bool, value: Any, judges: list[Judging]) -> list[Measure]:
        if self.primary_only and not primary:
            return []
        made: list[Measure] = []
        for judging in judges:
            compute, depends_on = self.numbers(labels, value, judging)
            name = f"{self.name}:{judging.measure.name}"
            made.append(judged(name, judging.measure, self.size, compute, (self.version, *depends_on)))
            if value["ci"] and type(self).interval is not Graded.interval:
                made.append(
                    judged(
                        f"{self.name}_ci:{judging.measure.name}",
                        judging.measure,
                        2,
                        self._bootstrapped,
                        (self.version, bootstrap.SEED, bootstrap.DRAWS),
                    )
                )
        return made

    def _bootstrapped(self, graded: Confidences) -> np.ndarray:
        weights = draws(graded.n)

        def statistic(chunk: np.ndarray) -> np.ndarray:
            found = self.interval(graded, chunk)
            assert found is not None  # only asked of sets that have one
            return found

        return np.array(bootstrap.interval(statistic, weights)) if graded.n else np.full(2, np.nan)

    def cells(
        self,
        table: Table,
        numbers: list[np.ndarray | None],
        ci: list[np.ndarray | None],
        judging: Judging,
        test_set: str | None,
    ) -> list[Column]:
        """Set the row values of one rule on one test set (``numbers``/``ci``: each row's vector,
        None where it has none) and return its columns."""
        raise NotImplementedError

    def fill(self, table: Table, value: Any) -> list[Column]:
        columns: list[Column] = []
        for position, name in enumerate(table.test_sets):
            if self.primary_only and position:
                break
            test_set = name if position else None  # the primary's columns carry no test set's name
            for judging in table.judges.get(name, []):
                measure = f"{self.name}:{judging.measure.name}"
                numbers = [as_numbers(answer(row["cards"].get(name), measure)) for row in table.rows]
                interval = f"{self.name}_ci:{judging.measure.name}"
                ci = [as_numbers(answer(row["cards"].get(name), interval)) for row in table.rows]
                columns += self.cells(table, numbers, ci, judging, test_set)
        if value["ci"] and type(self).interval is not Graded.interval:
            table.notes.append(
                f"note: {self.flag} intervals: 95% percentile bootstrap over {bootstrap.DRAWS} resamples of the "
                f"images, numpy PCG64 seed {bootstrap.SEED}, the same resamples for every model"
            )
        return columns
