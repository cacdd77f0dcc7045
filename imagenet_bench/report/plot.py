"""The --plot chart: Acc@1 per model, accuracy against throughput, and each other test
set's accuracy against val accuracy with its effective-robustness line; below them, what
the enabled column sets declare (``Table.charts``: a scatter of two row keys, such as ECE
against Acc@1; ``Table.row_figures``: a figure per model, such as the reliability diagram,
drawn for the first ``FIGURE_ROWS`` rows in the table's order), as the HTML report draws them.

matplotlib is imported here only, and this module only when --plot is given.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..base import atomic

COLOURS = {"pytorch": "#ee4c2c", "keras": "#1f77b4"}
FIGURE_ROWS = 12  # per-row figures: for the first rows in the table's order (the best, by default)
SMALL = (4.0, 3.5)  # inches of a declared chart's or a row figure's panel: two under each top panel


def plot(table: Any, path: str | Path) -> None:
    """Horizontal bars of Acc@1 (best at top), coloured by platform, with the
    published Acc@1 marked; a panel of Acc@1 against images/s when the manifests
    give throughput; a panel per other test set (``table.fits``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted((r for r in table.rows if r["acc1"] is not None), key=lambda r: r["acc1"])
    timed = [r for r in rows if r.get("images_per_s")]
    others = list(table.fits)
    n_panels = 1 + bool(timed) + len(others)
    width, height = 8 * n_panels, max(4.0, 0.28 * len(rows) + 1.5)
    declared = declared_panels(table)
    columns = 2 * n_panels
    below = math.ceil(len(declared) / columns)
    fig = plt.figure(figsize=(width, height + SMALL[1] * below), layout="constrained" if declared else None)
    top: Any = fig
    if declared:  # the top panels as without them; the declared ones in a grid below
        parts: Any = fig.subfigures(2, 1, height_ratios=[height, SMALL[1] * below])
        top = parts[0]
        small = parts[1].subplots(below, columns, squeeze=False).ravel()
        for ax, draw in zip(small, declared, strict=False):
            draw(ax)
        for ax in small[len(declared) :]:
            ax.set_visible(False)
    axes = top.subplots(1, n_panels, squeeze=False)
    for panel, name in enumerate(others, start=1 + bool(timed)):
        _robustness_panel(axes[0][panel], rows, name, table.fits[name])
    ax = axes[0][0]
    y = range(len(rows))
    ax.barh(list(y), [r["acc1"] for r in rows], color=[COLOURS[r["platform"]] for r in rows])
    marked = [(i, r["published_acc1"]) for i, r in enumerate(rows) if r.get("published_acc1") is not None]
    if marked:
        ax.scatter(
            [m[1] for m in marked],
            [m[0] for m in marked],
            marker="|",
            s=120,
            color="black",
            zorder=3,
            label="published Acc@1",
        )
        ax.legend(loc="lower right")
    ax.set_yticks(list(y), [f"{r['model']} ({r['platform']})" for r in rows], fontsize=8)
    low = min(r["acc1"] for r in rows)
    ax.set_xlim(max(0.0, low - 10), 100)
    ax.set_xlabel("Acc@1 (%)")
    ax.set_title("ImageNet top-1 accuracy (red: PyTorch, blue: Keras)")
    ax.grid(axis="x", alpha=0.3)
    if timed:
        ax2 = axes[0][1]
        for platform, colour in COLOURS.items():
            pts = [r for r in timed if r["platform"] == platform]
            ax2.scatter([r["images_per_s"] for r in pts], [r["acc1"] for r in pts], color=colour, label=platform)
            for r in pts:
                ax2.annotate(r["model"], (r["images_per_s"], r["acc1"]), fontsize=7, alpha=0.8)
        ax2.set_xscale("log")
        ax2.set_xlabel("images/s (end to end, from the manifests)")
        ax2.set_ylabel("Acc@1 (%)")
        ax2.set_title("Accuracy against throughput")
        ax2.legend()
        ax2.grid(alpha=0.3)
    try:
        if not declared:
            fig.tight_layout()
        with atomic.atomic_open(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=120)
    finally:
        plt.close(fig)


Panel = Callable[[Any], None]  # draws one panel on the Axes it is given


def declared_panels(table: Any) -> list[Panel]:
    """The panels the column sets declare: each chart of ``table.charts``, then per declared row
    figure (``table.row_figures``: row key -> kind, drawn by ``ROW_FIGURES[kind]``) one panel for
    each of the first ``FIGURE_ROWS`` rows that has it."""
    panels: list[Panel] = [
        functools.partial(_chart_panel, table.rows, chart)
        for chart in {chart["id"]: chart for chart in table.charts}.values()  # one per id
    ]
    for key, kind in table.row_figures.items():
        chosen = [row for row in table.rows if row.get(key) is not None][:FIGURE_ROWS]
        panels += [functools.partial(ROW_FIGURES[kind], row, row[key]) for row in chosen]
    return panels


def _chart_panel(rows: list[dict[str, Any]], chart: dict[str, str], ax: Any) -> None:
    """A declared scatter chart: ``chart["y"]`` against ``chart["x"]`` of each row that has both."""
    for platform, colour in COLOURS.items():
        pts = [r for r in rows if r["platform"] == platform and r.get(chart["x"]) is not None]
        pts = [r for r in pts if r.get(chart["y"]) is not None]
        if pts:
            ax.scatter([r[chart["x"]] for r in pts], [r[chart["y"]] for r in pts], color=colour, label=platform, s=12)
    ax.set_xlabel(chart["xLabel"])
    ax.set_ylabel(chart["yLabel"])
    ax.set_title(chart["title"], fontsize=9)
    ax.grid(alpha=0.3)
    if ax.collections:
        ax.legend(fontsize=7)


def _reliability_panel(row: dict[str, Any], value: list[list[Any]], ax: Any) -> None:
    """A reliability diagram: per non-empty bin of ``value`` (lo, hi, images, mean confidence,
    accuracy) a bar of its accuracy over the bin's width, and the diagonal of perfect calibration."""
    full = [b for b in value if b[2]]
    ax.bar(
        [b[0] for b in full],
        [100 * b[4] for b in full],
        width=[b[1] - b[0] for b in full],
        align="edge",
        color=COLOURS.get(row["platform"], "grey"),
        edgecolor="white",
        alpha=0.8,
    )
    ax.plot([0, 1], [0, 100], color="black", lw=1, ls="--")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 100)
    ax.set_xlabel("top-1 probability (15 bins)", fontsize=8)
    ax.set_ylabel("accuracy in the bin (%)", fontsize=8)
    ece = row.get("ece")
    ax.set_title(f"{row['model']} ({row['platform']})" + ("" if ece is None else f", ECE {ece:.2f}%"), fontsize=9)


# per kind of row figure, what draws it: (row, the row's value, Axes)
ROW_FIGURES: dict[str, Callable[[dict[str, Any], Any, Any], None]] = {"reliability": _reliability_panel}


def _robustness_panel(ax: Any, rows: list[dict[str, Any]], name: str, fit: dict[str, Any]) -> None:
    """Test-set Acc@1 against val Acc@1, on logit-scaled axes (fractions, labelled in %), with the fitted line."""
    pts = [r for r in rows if r.get(f"acc1:{name}") is not None]
    for platform, colour in COLOURS.items():
        mine = [r for r in pts if r["platform"] == platform]
        if not mine:
            continue
        ax.scatter(
            [r["acc1"] / 100 for r in mine], [r[f"acc1:{name}"] / 100 for r in mine], color=colour, label=platform, s=12
        )
    if fit.get("slope") is not None and pts:
        lo, hi = min(r["acc1"] for r in pts), max(r["acc1"] for r in pts)
        x = np.linspace(max(lo - 2, 0.5), min(hi + 2, 99.5), 100)
        z = fit["slope"] * np.log(x / (100 - x)) + fit["intercept"]
        ax.plot(
            x / 100,
            1 / (1 + np.exp(-z)),
            color="black",
            lw=1,
            label=f"fit on {len(fit['baseline'])} models (logit space)",
        )
    ax.set_xscale("logit")
    ax.set_yscale("logit")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(_percent_formatter())
        axis.set_minor_formatter(_percent_formatter(minor=True))
    ax.set_xlabel("val Acc@1 (%)")
    ax.set_ylabel(f"{name} Acc@1 (%)")
    ax.set_title(f"{name} against val (effective robustness: distance above the line)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _percent_formatter(minor: bool = False) -> Any:
    """Fractions on a logit axis labelled in percent; minor ticks unlabelled."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    return NullFormatter() if minor else FuncFormatter(lambda v, _pos: "" if math.isnan(v) else f"{100 * v:g}")
