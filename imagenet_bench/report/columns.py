"""The registry of the table's column sets (``column_set.ColumnSet``), in the order of their
flags in the table script's help, of the computation of their row values, and of their
columns. Adding a column is one module with a ColumnSet and one line here."""

from __future__ import annotations

from .accuracy_columns import Accuracy, Gaps, Identity, Intervals, Selection, TestSets
from .calibration_columns import Calibration
from .column_set import ColumnSet
from .corruption_columns import CorruptionErrors
from .factor_columns import Factors
from .label_columns import Clean, Real
from .manifest_columns import Published, Speed
from .selective_columns import Selective

COLUMN_SETS: tuple[ColumnSet, ...] = (
    Identity(),
    Accuracy(),
    Selection(),
    TestSets(),
    Gaps(),
    CorruptionErrors(),
    Published(),
    Intervals(),
    Real(),
    Clean(),
    Speed(),
    Calibration(),
    Selective(),
    Factors(),
)
