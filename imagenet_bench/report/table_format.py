"""Rendering the ranked table as aligned text, Markdown, CSV or JSON.

Renderers take a ``table.Table`` (anything with ``rows``, ``columns`` and ``notes``)
and format every cell through its Column's formatter, so all formats agree.
Columns marked ``detail`` (exact counts) appear in CSV and JSON only.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..base.errors import one_line


def percent(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def signed(value: Any) -> str:
    return "" if value is None else f"{value:+.2f}"


def signed_int(value: Any) -> str:
    return "" if value is None else f"{value:+d}"


def one_decimal(value: Any) -> str:
    return "" if value is None else f"{value:.1f}"


def two_decimals(value: Any) -> str:
    return "" if value is None else f"{value:.2f}"


def pvalue(value: Any) -> str:
    """Three significant digits; below 1e-300 (where a double underflows to 0) as ``<1e-300``."""
    if value is None:
        return ""
    return "<1e-300" if value < 1e-300 else f"{value:.3g}"


def plain(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Column:
    header: str
    key: str
    formatter: Callable[[Any], str] = plain
    numeric: bool = True
    detail: bool = False  # machine formats (CSV, JSON) only


def _cells(rows: list[dict[str, Any]], columns: list[Column]) -> list[list[str]]:
    """The shown cells; ids and paths from file names with their control characters escaped
    (a newline would forge a row, an escape sequence reach the terminal)."""
    return [[one_line(col.formatter(row.get(col.key))) for col in columns] for row in rows]


def _headers(columns: list[Column]) -> list[str]:
    return [one_line(c.header) for c in columns]  # test-set names come from dataset.json


def render_text(rows: list[dict[str, Any]], columns: list[Column]) -> str:
    cells = _cells(rows, columns)
    headers = _headers(columns)
    widths = [max([len(headers[i])] + [len(r[i]) for r in cells]) for i in range(len(columns))]

    def line(values: list[str]) -> str:
        return " | ".join(
            v.rjust(w) if c.numeric else v.ljust(w) for v, w, c in zip(values, widths, columns, strict=True)
        ).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(headers), rule] + [line(r) for r in cells]) + "\n"


def render_markdown(rows: list[dict[str, Any]], columns: list[Column]) -> str:
    head = "| " + " | ".join(_headers(columns)) + " |"
    align = "|" + "|".join("---:" if c.numeric else ":---" for c in columns) + "|"
    body = ["| " + " | ".join(v.replace("|", "\\|") for v in r) + " |" for r in _cells(rows, columns)]
    return "\n".join([head, align] + body) + "\n"


def render_csv(rows: list[dict[str, Any]], columns: list[Column]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_headers(columns))
    writer.writerows(_cells(rows, columns))
    return out.getvalue()


def render_json(rows: list[dict[str, Any]], columns: list[Column]) -> str:
    return json.dumps([{c.header: row.get(c.key) for c in columns} for row in rows], indent=2) + "\n"


RENDERERS = {"text": render_text, "markdown": render_markdown, "csv": render_csv, "json": render_json}


MACHINE_FORMATS = ("csv", "json")


def render(table: Any, fmt: str) -> str:
    """``table`` in format ``fmt``; detail columns only in the machine formats."""
    columns = [c for c in table.columns if fmt in MACHINE_FORMATS or not c.detail]
    return RENDERERS[fmt](table.rows, columns)
