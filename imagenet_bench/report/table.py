"""Building the ranked accuracy table from scored models.

Rows are built from each model's cards (its marks on each test set); each
optional part (custom selection, published numbers, confidence intervals, ReaL,
corrected labels, other test sets, speed) adds keys to the rows and columns to
the table; the caller renders it. Everything is a count over marks, so the
arrays behind them were dropped long ago.
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..scoring import metrics
from ..outputs import predfiles
from ..models import sources
from ..scoring.score import Card
from .table_format import Column, one_decimal, percent, plain, pvalue, signed, signed_int, two_decimals

PLATFORM_NAMES = {"pytorch": "PyTorch", "keras": "Keras"}


@dataclass
class Table:
    """The ranked table, as every renderer (text, Markdown, CSV, JSON, HTML, plot) receives it.

    rows: one dict per model (platform + id) in display order; a value a model lacks
      is None (an empty cell), never 0. Keys every row has: platform, platform_name,
      model, source, manifests ({dataset name: manifest or None}), acc1, acc5 (on the
      primary dataset), images_per_s, device; per test set T: acc1:T, delta:T, er:T.
    columns: what to show, each formatting its own cells.
    datasets: one dict per dataset ranked: name, test_set (dataset.json's, or None),
      folders, n_images, n_classes, class_subset (None or a count), restricted_to (the
      classes the outputs were restricted to before the softmax, or None), labels (where
      the labels came from).
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


def _pct(count: int | None, n: int) -> float | None:
    if count is None:
        return None
    return 100.0 * count / n if n else float("nan")


def _count(card: Card | None, name: str) -> int | None:
    marks = None if card is None else card.marks.get(name)
    return None if marks is None else marks.count


def _source_name(platform: str, model: str, recorded: str | None) -> str | None:
    """The source a manifest records, under today's name; for a file without one (the 2019
    files), the source its id belongs to (``sources.SOURCES``)."""
    if recorded:
        return predfiles.current_source(recorded)
    found = sources.of_model(platform, model)
    return None if found is None else found.name


def base_rows(cards: dict[str, list[Card]], primary: str) -> list[dict[str, Any]]:
    """One row per model (platform + id) over every test set; counts on ``primary``."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for name, test_cards in cards.items():
        for card in test_cards:
            key = (card.files.platform, card.files.model)
            row = rows.setdefault(key, {
                "platform": key[0], "platform_name": PLATFORM_NAMES[key[0]], "model": key[1],
                "source": None, "manifests": {t: None for t in cards}, "cards": {},
                "images_per_s": None, "device": None, "batch_size": None,
            })
            row["manifests"][name] = card.manifest
            row["cards"][name] = card
            manifest = card.manifest or {}
            request = manifest.get("request") or {}
            row["source"] = row["source"] or _source_name(key[0], key[1], request.get("source"))
            if name == primary or row["images_per_s"] is None:
                row["images_per_s"] = (manifest.get("throughput") or {}).get("images_per_s")
                device = manifest.get("device")
                row["device"] = (device.get("model") or device.get("name")) if isinstance(device, dict) else device
                row["batch_size"] = manifest.get("batch_size")
    for row in rows.values():
        card = row["cards"].get(primary)
        row["card"] = card
        row["n"] = None if card is None else card.marks["acc1"].n
        row["correct1"], row["correct5"] = _count(card, "acc1"), _count(card, "acc5")
        row["acc1"], row["acc5"] = _pct(row["correct1"], row["n"]), _pct(row["correct5"], row["n"])
    out = list(rows.values())
    rank(out, "correct1", "rank1")
    rank(out, "correct5", "rank5")
    return out


def rank(rows: list[dict[str, Any]], count_key: str, rank_key: str) -> None:
    have = [r for r in rows if r.get(count_key) is not None]
    for row, value in zip(have, metrics.ranks([r[count_key] for r in have])):
        row[rank_key] = value
    for row in rows:
        row.setdefault(rank_key, None)


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


def sort_rows(rows: list[dict[str, Any]], key: str) -> None:
    """Descending by ``key``; a model without a value goes last; ties by platform, then id."""
    rows.sort(key=lambda r: (r.get(key) is None, -(r.get(key) or 0), r["platform"], r["model"]))


def add_selection(rows: list[dict[str, Any]]) -> list[Column]:
    """cAcc@k: accuracy on the selected images against the custom labels (marks "custom1"/"custom5")."""
    for row in rows:
        card = row["card"]
        row["ccorrect1"], row["ccorrect5"] = _count(card, "custom1"), _count(card, "custom5")
        n = None if card is None else card.marks["custom1"].n
        row["cacc1"], row["cacc5"] = _pct(row["ccorrect1"], n), _pct(row["ccorrect5"], n)
    rank(rows, "ccorrect1", "crank1")
    rank(rows, "ccorrect5", "crank5")
    return [Column("cAcc@1", "cacc1", percent), Column("cAcc@5", "cacc5", percent),
            Column("cRank@1", "crank1"), Column("cRank@5", "crank5")]


def published_figures(card: Card | None, platform: str, model: str, test_set: str) -> dict[str, Any]:
    """A model's published figures on ``test_set`` ({} if none): the manifest's (a val
    figure) on the val set, else the project's data files, matched on the image size the
    manifest records (timm publishes a weight set at several sizes). A test set its source
    did not publish stays blank, never the val figure."""
    from ..models import published

    manifest = (card.manifest or {}) if card is not None else {}
    info = manifest.get("published") if test_set == published.VAL else None
    if info is None:
        size = (manifest.get("preprocessing") or {}).get("crop_size")
        found = published.lookup(platform, model, test_set, size)
        info = None if found is None else {"acc1": found.acc1, "acc5": found.acc5, "source": found.source}
    return info or {}


def add_published(rows: list[dict[str, Any]], test_set: str = "imagenet-val") -> list[Column]:
    """Published Acc@1/Acc@5 on the primary dataset's test set (``published_figures``)."""
    for row in rows:
        info = published_figures(row["card"], row["platform"], row["model"], test_set)
        row["published_acc1"], row["published_acc5"] = info.get("acc1"), info.get("acc5")
        row["published_source"] = info.get("source")
        for k in ("1", "5"):
            measured, pub = row[f"acc{k}"], row[f"published_acc{k}"]
            row[f"delta{k}"] = None if measured is None or pub is None else measured - pub
    return [Column("Pub@1", "published_acc1", percent), Column("Pub@5", "published_acc5", percent),
            Column("Δ@1", "delta1", signed), Column("Δ@5", "delta5", signed)]


def add_published_test_sets(rows: list[dict[str, Any]], published_sets: dict[str, str]) -> list[Column]:
    """Per other test set T (name -> the test set it samples, for the lookup): pub1:T, the
    published Acc@1 on T beside the measured Acc@1 T; blank where no source published T."""
    columns = []
    for name, test_set in published_sets.items():
        for row in rows:
            card = row["cards"].get(name)
            row[f"pub1:{name}"] = (None if card is None else  # beside a measured figure only
                                   published_figures(card, row["platform"], row["model"], test_set).get("acc1"))
        columns.append(Column(f"Pub@1 {name}", f"pub1:{name}", percent))
    return columns


def add_intervals(rows: list[dict[str, Any]], alpha: float = 0.05) -> list[Column]:
    """Wilson 95% intervals, and an exact McNemar test of each row against the one above.

    Rows must already be in display order. ``~`` marks a row whose Acc@1 is not
    significantly different (p >= alpha) from the row above it on the same images.
    """
    above = None
    for row in rows:
        card = row["card"]
        if card is None:
            continue
        for k in ("1", "5"):
            if row[f"correct{k}"] is not None:
                lo, hi = metrics.wilson_interval(row[f"correct{k}"], row["n"])
                row[f"ci{k}"] = f"{100 * lo:.2f}-{100 * hi:.2f}"
        right = card.marks["acc1"].unpack()
        if above is not None:
            p = metrics.mcnemar_exact(above, right)
            row["p_above"] = p
            row["tie_mark"] = "~" if p >= alpha else ""
        above = right
    return [Column("Acc@1 95% CI", "ci1"), Column("Acc@5 95% CI", "ci5"),
            Column("p vs above", "p_above", pvalue), Column("~", "tie_mark", numeric=False)]


def add_real(rows: list[dict[str, Any]]) -> list[Column]:
    """ImageNet-ReaL Acc@1 (marks "real1": the images with a non-empty label set)."""
    for row in rows:
        marks = None if row["card"] is None else row["card"].marks.get("real1")
        row["real1"] = None if marks is None else _pct(marks.count, marks.n)
        row["real_n"] = None if marks is None else marks.n
    return [Column("ReaL@1", "real1", percent), Column("ReaL N", "real_n", plain)]


def add_clean(rows: list[dict[str, Any]]) -> list[Column]:
    """Acc@1 on corrected labels: errors left out ("clean_drop"), and errors relabelled where
    the workers agreed, the rest left out ("clean_fix"); each with its rank and the rank's
    change against the original labels (positive: the model moves up)."""
    for suffix in ("drop", "fix"):
        for row in rows:
            row[f"clean_{suffix}_correct"] = _count(row["card"], f"clean_{suffix}")
            marks = None if row["card"] is None else row["card"].marks.get(f"clean_{suffix}")
            row[f"clean_{suffix}"] = None if marks is None else _pct(marks.count, marks.n)
        rank(rows, f"clean_{suffix}_correct", f"clean_{suffix}_rank")
        for row in rows:
            new, old = row[f"clean_{suffix}_rank"], row["rank1"]
            row[f"clean_{suffix}_move"] = None if new is None or old is None else old - new
    return [Column("Clean@1", "clean_drop", percent), Column("Clean rank", "clean_drop_rank"),
            Column("Clean Δrank", "clean_drop_move", signed_int),
            Column("Fixed@1", "clean_fix", percent), Column("Fixed rank", "clean_fix_rank"),
            Column("Fixed Δrank", "clean_fix_move", signed_int)]


# --- other test sets: accuracy, difference from val, effective robustness ---------------


def _logit(acc_percent: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(acc_percent, dtype=float) / 100.0, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_line(val: list[float], test: list[float]) -> tuple[float, float] | None:
    """Least-squares line logit(test) = slope * logit(val) + intercept (Taori et al. 2020);
    None with fewer than two distinct val accuracies."""
    if len(set(val)) < 2:
        return None
    slope, intercept = np.polyfit(_logit(np.array(val)), _logit(np.array(test)), 1)
    return float(slope), float(intercept)


def add_test_sets(rows: list[dict[str, Any]], test_sets: list[str], primary: str,
                  baseline: str | None) -> tuple[list[Column], dict[str, dict[str, Any]]]:
    """Per other test set T: acc1:T, delta:T (T minus the primary's Acc@1) and er:T, the
    effective robustness in points: T's Acc@1 above the logit-space line fitted over the
    baseline models (``baseline``: a glob on model ids; None: every model with both)."""
    columns, fits = [], {}
    for name in test_sets:
        for row in rows:
            card = row["cards"].get(name)
            row[f"acc1:{name}"] = None if card is None else _pct(card.marks["acc1"].count, card.marks["acc1"].n)
            both = row[f"acc1:{name}"] is not None and row["acc1"] is not None
            row[f"delta:{name}"] = row[f"acc1:{name}"] - row["acc1"] if both else None
            row[f"er:{name}"] = None
        if name == primary:
            continue
        fitted = [r for r in rows if r[f"delta:{name}"] is not None
                  and (baseline is None or fnmatch.fnmatchcase(r["model"], baseline))]
        line = fit_line([r["acc1"] for r in fitted], [r[f"acc1:{name}"] for r in fitted])
        fits[name] = {"slope": None if line is None else line[0], "intercept": None if line is None else line[1],
                      "baseline": [f"{r['platform']} {r['model']}" for r in fitted]}
        if line is not None:
            for row in rows:
                if row[f"delta:{name}"] is not None:
                    z = line[0] * _logit(np.array([row["acc1"]]))[0] + line[1]
                    row[f"er:{name}"] = row[f"acc1:{name}"] - 100.0 / (1.0 + math.exp(-z))
        columns += [Column(f"Acc@1 {name}", f"acc1:{name}", percent), Column(f"Δ {name}", f"delta:{name}", signed),
                    Column(f"ER {name}", f"er:{name}", signed)]
    return columns, fits


# --- speed ----------------------------------------------------------------------------


def add_speed(rows: list[dict[str, Any]]) -> list[Column]:
    """Parameters and GFLOPs (from the primary manifest, else the registries' published data
    files), images/s, device and batch size from the primary manifest, and
    '*' on the accuracy/throughput frontier of each device: no other model measured on the
    same device is both at least as accurate and faster (or faster and at least as accurate)."""
    from ..models import published

    for row in rows:
        manifest = (row["card"].manifest if row["card"] else None) or {}
        known = published.cost(row["platform"], row["model"])  # where the manifest does not say
        params = manifest.get("params", known["params"])
        row["params_m"] = None if params is None else params / 1e6
        row["gflops"] = manifest.get("gflops", known["gflops"])
        row["frontier"] = None
    by_device: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["images_per_s"] and row["acc1"] is not None and row["device"]:
            by_device.setdefault(str(row["device"]), []).append(row)
    for group in by_device.values():
        for row in group:
            beaten = any(o is not row and o["acc1"] >= row["acc1"] and o["images_per_s"] >= row["images_per_s"]
                         and (o["acc1"] > row["acc1"] or o["images_per_s"] > row["images_per_s"]) for o in group)
            row["frontier"] = "" if beaten else "*"
    return [Column("Params (M)", "params_m", one_decimal), Column("GFLOPs", "gflops", two_decimals),
            Column("images/s", "images_per_s", one_decimal), Column("Device", "device", plain, numeric=False),
            Column("Batch", "batch_size"), Column("Frontier", "frontier", plain, numeric=False)]
