"""The --plot chart: Acc@1 per model, accuracy against throughput, and each other test
set's accuracy against val accuracy with its effective-robustness line.

matplotlib is imported here only, and this module only when --plot is given.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..base import atomic

COLOURS = {"pytorch": "#ee4c2c", "keras": "#1f77b4"}


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
    fig, axes = plt.subplots(1, n_panels, figsize=(8 * n_panels, max(4.0, 0.28 * len(rows) + 1.5)), squeeze=False)
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
        fig.tight_layout()
        with atomic.atomic_open(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=120)
    finally:
        plt.close(fig)


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
