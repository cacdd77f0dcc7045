"""Building the ranked accuracy table from scored models.

Each optional part (custom selection, published numbers, confidence intervals,
ReaL) adds keys to the rows and columns to the table; the caller renders it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics
from .errors import UsageError
from .scoring import Scored
from .table_format import Column, percent, plain, signed

PLATFORM_NAMES = {"pytorch": "PyTorch", "keras": "Keras"}


@dataclass
class Table:
    """The ranked table, as every renderer (text, Markdown, CSV, JSON, HTML, plot) receives it.

    rows: one dict per model (platform + id) in display order; a value a model lacks
      is None (an empty cell), never 0. Keys every row has: platform, platform_name,
      model, source, manifests ({dataset name: manifest or None}), acc1, acc5 (on the
      primary dataset), images_per_s, device; per test set T: acc1:T, delta:T, er:T.
    columns: what to show, each formatting its own cells.
    datasets: one dict per dataset ranked: name, folders, n_images, n_classes,
      class_subset (None or a count), labels (where the labels came from).
    test_sets: dataset names in column order ([] or one name for one dataset).
    fits: per non-val test set, the effective-robustness line in logit space
      ({"slope", "intercept", "baseline": [model labels]}).
    notes: lines printed above the table.
    """

    rows: list[dict[str, Any]]
    columns: list[Column]
    datasets: list[dict[str, Any]] = field(default_factory=list)
    test_sets: list[str] = field(default_factory=list)
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _pct(count: int, n: int) -> float:
    return 100.0 * count / n if n else float("nan")


def base_rows(scored: list[Scored]) -> list[dict[str, Any]]:
    rows = []
    for s in scored:
        n = len(s.correct1)
        c1 = int(np.count_nonzero(s.correct1))
        c5 = None if s.correct5 is None else int(np.count_nonzero(s.correct5))
        manifest = s.preds.manifest or {}
        rows.append({
            "scored": s, "platform": s.files.platform, "platform_name": PLATFORM_NAMES[s.files.platform],
            "model": s.files.model, "n": n, "correct1": c1, "correct5": c5,
            "acc1": _pct(c1, n), "acc5": None if c5 is None else _pct(c5, n),
            "images_per_s": (manifest.get("throughput") or {}).get("images_per_s"),
        })
    _rank(rows, "correct1", "rank1")
    _rank(rows, "correct5", "rank5")
    return rows


def _rank(rows: list[dict[str, Any]], count_key: str, rank_key: str) -> None:
    have = [r for r in rows if r[count_key] is not None]
    for row, rank in zip(have, metrics.ranks([r[count_key] for r in have])):
        row[rank_key] = rank


def base_columns() -> list[Column]:
    return [
        Column("Platform", "platform_name", numeric=False),
        Column("Model", "model", numeric=False),
        Column("Acc@1", "acc1", percent),
        Column("Acc@5", "acc5", percent),
        Column("Rank@1", "rank1"),
        Column("Rank@5", "rank5"),
    ]


def count_columns() -> list[Column]:
    """Exact counts, appended to CSV/JSON output so percentages can be re-derived."""
    return [Column("N", "n", detail=True), Column("Correct@1", "correct1", detail=True),
            Column("Correct@5", "correct5", detail=True)]


@dataclass
class Selection:
    """Which images are scored (-i/-j) and, optionally, their custom labels (-l)."""

    mask: np.ndarray
    labels: np.ndarray


def _read_index_file(path: Path, flag: str) -> np.ndarray:
    try:
        values = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"{path}: file given to {flag} does not exist") from None
    except Exception as exc:
        raise UsageError(f"{path}: not a readable .npy file for {flag} ({exc})") from None
    if values.ndim != 1 or not (np.issubdtype(values.dtype, np.integer) or values.dtype == bool):
        raise UsageError(f"{path}: {flag} expects a 1-D integer .npy array, got {values.dtype} {values.shape}")
    return values


def make_selection(labels: np.ndarray, omit: Path | None, keep: Path | None, custom: Path | None) -> Selection:
    n = len(labels)
    mask = np.ones(n, dtype=bool)
    for path, flag, keep_listed in ((omit, "-i/--indices_to_omit", False), (keep, "-j/--indices_to_keep", True)):
        if path is None:
            continue
        idx = _read_index_file(path, flag)
        if idx.dtype == bool:
            raise UsageError(f"{path}: {flag} expects indices, not a boolean mask")
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise UsageError(f"{path}: index out of range 0..{n - 1} (found {idx.min()}..{idx.max()})")
        if keep_listed:
            mask[:] = False
        mask[idx] = keep_listed
    selected = labels[mask]
    if custom is not None:
        selected = _read_index_file(custom, "-l/--custom_labels")
        if selected.dtype == bool:
            raise UsageError(f"{custom}: -l/--custom_labels expects class indices, not a boolean mask")
        if len(selected) != int(mask.sum()):
            raise UsageError(f"{custom}: {len(selected)} custom labels but {int(mask.sum())} images selected")
        if selected.size and (selected.min() < 0 or selected.max() >= 1000):
            raise UsageError(f"{custom}: class index out of range 0..999")
    return Selection(mask, selected.astype(np.int64))


def add_selection(rows: list[dict[str, Any]], selection: Selection) -> list[Column]:
    """cAcc@k: accuracy on the selected images against the custom labels."""
    n = int(selection.mask.sum())
    for row in rows:
        s: Scored = row["scored"]
        preds, top1 = s.preds.preds[selection.mask], s.preds.top1[selection.mask]
        c1, c5 = metrics.topk_correct(preds, top1, selection.labels)
        row["ccorrect1"] = int(np.count_nonzero(c1))
        row["ccorrect5"] = None if c5 is None else int(np.count_nonzero(c5))
        row["cacc1"] = _pct(row["ccorrect1"], n)
        row["cacc5"] = None if c5 is None else _pct(row["ccorrect5"], n)
    _rank(rows, "ccorrect1", "crank1")
    _rank(rows, "ccorrect5", "crank5")
    return [Column("cAcc@1", "cacc1", percent), Column("cAcc@5", "cacc5", percent),
            Column("cRank@1", "crank1"), Column("cRank@5", "crank5")]


def add_published(rows: list[dict[str, Any]]) -> list[Column]:
    """Published Acc@1/Acc@5 from the manifest, else from the project's data files."""
    from . import published

    for row in rows:
        s: Scored = row["scored"]
        info = (s.preds.manifest or {}).get("published")
        if info is None:
            found = published.lookup(s.files.platform, s.files.model)
            info = None if found is None else {"acc1": found.acc1, "acc5": found.acc5, "source": found.source}
        info = info or {}
        row["published_acc1"], row["published_acc5"] = info.get("acc1"), info.get("acc5")
        row["published_source"] = info.get("source")
        for k in ("1", "5"):
            measured, pub = row[f"acc{k}"], row[f"published_acc{k}"]
            row[f"delta{k}"] = None if measured is None or pub is None else measured - pub
    return [Column("Pub@1", "published_acc1", percent), Column("Pub@5", "published_acc5", percent),
            Column("Δ@1", "delta1", signed), Column("Δ@5", "delta5", signed)]


def add_intervals(rows: list[dict[str, Any]], alpha: float = 0.05) -> list[Column]:
    """Wilson 95% intervals, and an exact McNemar test of each row against the one above.

    Rows must already be in display order. ``~`` marks a row whose Acc@1 is not
    significantly different (p >= alpha) from the row above it on the same images.
    """
    for i, row in enumerate(rows):
        lo, hi = metrics.wilson_interval(row["correct1"], row["n"])
        row["ci1"] = f"{100 * lo:.2f}-{100 * hi:.2f}"
        if row["correct5"] is not None:
            lo, hi = metrics.wilson_interval(row["correct5"], row["n"])
            row["ci5"] = f"{100 * lo:.2f}-{100 * hi:.2f}"
        if i:
            p = metrics.mcnemar_exact(rows[i - 1]["scored"].correct1, row["scored"].correct1)
            row["p_above"] = float(f"{p:.3g}")
            row["tie_mark"] = "~" if p >= alpha else ""
    return [Column("Acc@1 95% CI", "ci1"), Column("Acc@5 95% CI", "ci5"),
            Column("p vs above", "p_above"), Column("~", "tie_mark", numeric=False)]


def add_real(rows: list[dict[str, Any]], names: list[str], real_path: Path) -> list[Column]:
    from . import real_labels

    sets = real_labels.label_sets_for(names, real_labels.load(real_path))
    valid, member = real_labels.membership(sets)
    for row in rows:
        correct, counted = real_labels.accuracy(row["scored"].preds.top1, valid, member)
        row["real1"], row["real_n"] = _pct(correct, counted), counted
    return [Column("ReaL@1", "real1", percent), Column("ReaL N", "real_n", plain)]
