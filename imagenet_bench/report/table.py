"""The ranked table: its rows, one per model, and what every column set uses to fill them.

Rows are built from each model's cards (its answers on each test set); each column set
(``report.columns.COLUMN_SETS``) adds keys to the rows and Columns to the table; the
caller renders it. Every value comes from the kept answers (counts, bits, small float
vectors) or the manifests, so the arrays behind them were dropped long ago.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..models import sources
from ..outputs import predfiles
from ..scoring import metrics
from ..scoring.measures import Answer, Judging, as_marks
from ..scoring.score import Card
from .table_format import Column

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
    judges: per test set, the rules of right and wrong the enabled sets declare (Acc@1, ReaL...).
    charts, heatmaps, row_figures: what the HTML report draws besides its own charts: scatter
      charts of two row keys, heat maps of models x row keys, and per-row figures (a reliability
      diagram) on the row's expansion; --plot draws them too.
    """

    rows: list[dict[str, Any]]
    columns: list[Column]
    datasets: list[dict[str, Any]] = field(default_factory=list)
    test_sets: list[str] = field(default_factory=list)
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    judges: dict[str, list[Judging]] = field(default_factory=dict)  # per test set: its rules of right and wrong
    charts: list[dict[str, str]] = field(default_factory=list)  # more scatter charts: id, title, x, y, xLabel, yLabel
    heatmaps: list[dict[str, Any]] = field(default_factory=list)  # id, title, keys (row values), labels
    row_figures: dict[str, str] = field(default_factory=dict)  # row key: kind of figure ("reliability")


def pct(count: int | None, n: int | None) -> float | None:
    if count is None:
        return None
    return 100.0 * count / n if n else float("nan")


def answer(card: Card | None, name: str) -> Answer:
    """A measure's answer on ``card``: Marks (bits), a float vector (numbers), or None (no card,
    or the files could not answer)."""
    return None if card is None else card.answers.get(name)


def count(card: Card | None, name: str) -> int | None:
    """How many images a bits measure marks right on ``card``."""
    found = as_marks(answer(card, name))
    return None if found is None else found.count


def _source_name(platform: str, model: str, recorded: str | None) -> str | None:
    """The source a manifest records, under today's name; for a file without one (the 2019
    files), the source its id belongs to (``sources.SOURCES``)."""
    if recorded:
        return predfiles.current_source(recorded)
    found = sources.of_model(platform, model)
    return None if found is None else found.name


def base_rows(cards: dict[str, list[Card]], primary: str) -> list[dict[str, Any]]:
    """One row per model (platform + id) over every test set: who it is, its cards ("card": on
    ``primary``) and manifests, and the speed its primary manifest records."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for name, test_cards in cards.items():
        for card in test_cards:
            key = (card.files.platform, card.files.model)
            row = rows.setdefault(
                key,
                {
                    "platform": key[0],
                    "platform_name": PLATFORM_NAMES[key[0]],
                    "model": key[1],
                    "source": None,
                    "manifests": {t: None for t in cards},
                    "cards": {},
                    "images_per_s": None,
                    "ranks": None,
                    "device": None,
                    "batch_size": None,
                },
            )
            row["manifests"][name] = card.manifest
            row["cards"][name] = card
            manifest = card.manifest or {}
            request = manifest.get("request") or {}
            row["source"] = row["source"] or _source_name(key[0], key[1], request.get("source"))
            if name == primary or row["images_per_s"] is None:
                row["images_per_s"], row["ranks"] = model_rate(manifest)
                device = manifest.get("device")
                row["device"] = (device.get("model") or device.get("name")) if isinstance(device, dict) else device
                row["batch_size"] = manifest.get("batch_size")
    for row in rows.values():
        row["card"] = row["cards"].get(primary)
    return list(rows.values())


def model_rate(manifest: dict[str, Any]) -> tuple[float | None, int]:
    """(images/s of the model alone on one GPU, the number of GPUs or processes it ran on).

    A manifest's images_per_s is its pass's, end to end: shared by up to 8 models, and under
    torchrun all ranks' together. model_images_per_s is the model's own time; before the
    manifest recorded ``ranks`` it was over all ranks, so it is divided by the world size."""
    throughput = manifest.get("throughput") or {}
    distributed = manifest.get("distributed") or {}
    ranks = throughput.get("ranks") or (distributed.get("world_size") if isinstance(distributed, dict) else None) or 1
    rate = throughput.get("model_images_per_s")
    if rate is None:
        return throughput.get("images_per_s"), int(ranks)
    return (rate if "ranks" in throughput else rate / ranks), int(ranks)


def rank(rows: list[dict[str, Any]], count_key: str, rank_key: str) -> None:
    have = [r for r in rows if r.get(count_key) is not None]
    for row, value in zip(have, metrics.ranks([r[count_key] for r in have]), strict=True):
        row[rank_key] = value
    for row in rows:
        row.setdefault(rank_key, None)


def sort_rows(rows: list[dict[str, Any]], key: str) -> None:
    """Descending by ``key``; a model without a value goes last; ties by platform, then id."""
    rows.sort(key=lambda r: (r.get(key) is None, -(r.get(key) or 0), r["platform"], r["model"]))
