"""The --plot chart: Acc@1 per model, and accuracy against throughput.

matplotlib is imported here only, and this module only when --plot is given.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import atomic

COLOURS = {"pytorch": "#ee4c2c", "keras": "#1f77b4"}


def plot(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Horizontal bars of Acc@1 (best at top), coloured by framework, with the
    published Acc@1 marked; a second panel of Acc@1 against images/s when the
    manifests give throughput."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["acc1"])
    timed = [r for r in rows if r.get("images_per_s")]
    n_panels = 2 if timed else 1
    fig, axes = plt.subplots(
        1, n_panels, figsize=(8 * n_panels, max(4.0, 0.28 * len(rows) + 1.5)), squeeze=False
    )
    ax = axes[0][0]
    y = range(len(rows))
    ax.barh(list(y), [r["acc1"] for r in rows], color=[COLOURS[r["platform"]] for r in rows])
    marked = [(i, r["published_acc1"]) for i, r in enumerate(rows) if r.get("published_acc1") is not None]
    if marked:
        ax.scatter([m[1] for m in marked], [m[0] for m in marked], marker="|", s=120, color="black",
                   zorder=3, label="published Acc@1")
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
    fig.tight_layout()
    with atomic.atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)
