"""A column set: one declaration of a group of table columns, from its flag to its cells.

A ``ColumnSet`` says
- its ``name`` (the key of its option value in ``TableOptions.columns``);
- which table-script option enables it: ``flag`` and ``help`` (a plain on/off flag), or its
  own ``add_arguments``/``option`` for a flag with a value; ``always`` sets need none;
- what it needs per image: ``measures`` gives the ``scoring.measures.Measure``s to answer on a
  test set (made from its labels and row file names); each keeps, per model, bits (per-image
  right/wrong: counts, intervals, McNemar tests) or numbers (a small float vector) in the score
  cache;
- ``judge``: a set whose bits say which images are right (Acc@1, ReaL, corrected labels)
  names that measure, so the sets that grade confidence (``graded``: calibration, selective
  prediction, ImageNet-X factors) judge by every enabled rule, each in its own columns;
- how its row values are computed from those answers (and the manifests): ``fill`` sets row
  keys and returns its display ``table_format.Column``s (header, formatter, numeric: sortable
  with --sort, detail: CSV and JSON only), which every renderer (text, Markdown, CSV, JSON,
  HTML) shows with no change of its own.

The registry is ``report.columns.COLUMN_SETS``; its order is the order of the flags, of the
row values' computation and of the columns (detail columns follow all shown ones).
Modules a set needs only when enabled are imported inside its methods, so a plain table
stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..scoring.labels import Labels
from ..scoring.measures import Judging, Measure
from .table import Table
from .table_format import Column

EXTRA_COLUMNS = "extra columns"  # the table script's help section for most flags


class ColumnSet:
    """The declaration; subclasses override what they need (see the module's docstring)."""

    name: str = ""
    flag: str | None = None  # a plain on/off option of the table script ("--ci")
    help: str = ""
    group: str = EXTRA_COLUMNS  # the help section its options are listed in
    always: bool = False  # on in every table, no option
    after_sort: bool = False  # its values depend on the display order (tests of each row against the one above)
    sort_key: str | None = None  # the row key to sort by when enabled and no --sort is given (the last set's wins)
    judge: tuple[str, str, str] | None = None  # (its bits measure that judges right, header suffix, key suffix)

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        """The table script's options that enable and configure it."""
        if self.flag:
            group.add_argument(self.flag, action="store_true", help=self.help)

    def option(self, args: argparse.Namespace) -> Any:
        """Its value from the parsed command line (passed to ``measures`` and ``fill``); None: not asked for."""
        if self.flag:
            return True if getattr(args, self.flag.lstrip("-").replace("-", "_")) else None
        return None

    def enabled(self, value: Any, plot: bool) -> bool:
        """Whether the table computes it (``plot``: a chart is drawn, which may need its values unshown)."""
        return self.always or value is not None

    def measures(self, labels: Labels, primary: bool, value: Any) -> list[Measure]:
        """What to answer per model on a test set with ``labels`` (``primary``: the first one)."""
        return []

    def graded(self, labels: Labels, primary: bool, value: Any, judges: list[Judging]) -> list[Measure]:
        """What to answer per model that is judged by the rules of ``judges`` (those of the enabled
        sets on this test set); asked after ``measures``."""
        return []

    def fill(self, table: Table, value: Any) -> list[Column]:
        """Set its keys in ``table.rows`` (each row's "card"/"cards" hold the answers), add to
        ``table.notes``/``table.fits`` where it has something to say; its Columns to show."""
        return []
