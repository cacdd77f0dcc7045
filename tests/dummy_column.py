"""A table column added as one module: the mean top-1 probability (``--mean-top1-prob``).

``tests/test_columns.py`` registers it with one line (``columns.COLUMN_SETS += (MeanTop1Probability(),)``,
through a ``sitecustomize`` in the table script's environment) and checks that it shows in every
format and comes back from the score cache, with nothing else changed."""

from __future__ import annotations

from typing import Any

import numpy as np

from imagenet_bench.outputs.predfiles import Predictions
from imagenet_bench.report.column_set import ColumnSet
from imagenet_bench.report.table import Table, answer
from imagenet_bench.report.table_format import Column
from imagenet_bench.scoring.labels import Labels
from imagenet_bench.scoring.measures import Measure, Numbers


def top1_probability_sum(loaded: Predictions) -> np.ndarray:
    """[sum of each image's top-1 probability, images]: the top-1 is the most probable column."""
    return np.array([loaded.probs.max(axis=1).sum(dtype=np.float64), loaded.n])


def four_decimals(value: Any) -> str:
    return "" if value is None else f"{value:.4f}"


class MeanTop1Probability(ColumnSet):
    """The mean of each image's top-1 probability on the primary test set."""

    name = "mean_top1_prob"
    flag = "--mean-top1-prob"
    help = "the mean top-1 probability (how confident the model is)"

    def measures(self, labels: Labels, primary: bool, value: Any) -> list[Measure]:
        return [Numbers("top1_prob_sum", 2, top1_probability_sum, ("v1",))] if primary else []

    def fill(self, table: Table, value: Any) -> list[Column]:
        for row in table.rows:
            sums = answer(row["card"], "top1_prob_sum")
            row["mean_top1_prob"] = None if sums is None else sums[0] / sums[1]
        return [Column("Mean p@1", "mean_top1_prob", four_decimals)]
