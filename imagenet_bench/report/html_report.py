"""The ranked table as one self-contained HTML page (``imagenet_benchmarking.py --html``).

A table of 1,500 models on six test sets is read in a browser, not a terminal: sorted by
the column a reader cares about, filtered to one platform, with charts whose points name
their model, and each number traceable to the manifest that says how it was made.

Why it is built this way:
- The page must open from disk with no network and stay small enough to mail, so nothing
  is fetched: the style, the script (``data/report.css``, ``data/report.js``, ours) and the
  data are inline. The charts are SVG drawn by that script, not pictures, so their points
  can follow the filters and answer a hover, in a few kilobytes of code.
- Model ids and manifest fields are arbitrary text. They travel as one JSON document in a
  ``<script type="application/json">`` element with ``<``, ``>`` and ``&`` written as
  ``\\u`` escapes (so no value can close the element), and the script builds every element
  with ``textContent``: markup in the data shows as text and runs nothing.
- Manifests are large and repetitive (the same library versions, numerics and dataset for
  hundreds of models), so each one's provenance is cut into sections, each distinct section
  stored once and referred to by number.
- Cells are the text each Column's formatter gives, as in the text table; sorting and the
  charts use the raw numbers beside them.
"""

from __future__ import annotations

import datetime
import json
import math
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base import atomic
from ..base.errors import one_line

if TYPE_CHECKING:
    from .table import Table

ASSETS = Path(__file__).resolve().parents[1] / "data"
# Row keys the charts plot, besides each test set's "acc1:T".
PLOT_KEYS = ("acc1", "images_per_s", "published_acc1")


@dataclass(frozen=True)
class ReportInfo:
    """What the page says about how it was made."""

    version: str
    created: str
    command: str | None = None


def project_version() -> str:
    """The project's commit (and whether the working tree had changes), as manifests record it."""
    from ..outputs.manifest import git_state

    state = git_state()
    if not state.get("commit"):
        return "imagenet-bench (commit unknown: not a git checkout)"
    return f"imagenet-bench commit {state['commit'][:12]}" + (" with uncommitted changes" if state.get("dirty") else "")


def report_info() -> ReportInfo:
    """This process's: the project version, now, and its command line (as manifests record it)."""
    from ..outputs.manifest import command_line

    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return ReportInfo(project_version(), created, shlex.join(command_line()))


def _text(value: Any) -> str:
    """A manifest value as the page shows it: strings as they are, lists of scalars joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)) and not any(isinstance(v, (dict, list, tuple)) for v in value):
        return ", ".join(_text(v) for v in value)
    return json.dumps(value, default=str)


def _pairs(obj: Any, prefix: str = "", skip: tuple[str, ...] = ()) -> list[list[str]]:
    """A manifest part as [key, text] pairs; nested dicts flattened to ``a.b`` keys, Nones left out."""
    if not isinstance(obj, dict):
        return [] if obj is None else [[prefix.rstrip(".") or "value", _text(obj)]]
    pairs = []
    for key, value in obj.items():
        if key in skip or value is None:
            continue
        if isinstance(value, dict):
            pairs += _pairs(value, f"{prefix}{key}.")
        else:
            pairs.append([f"{prefix}{key}", _text(value)])
    return pairs


def _weights(m: dict[str, Any]) -> list[list[str]]:
    request = m.get("request") or {}
    # timm's whole pretrained config is in the manifest; the page keeps what identifies the weights.
    pairs = _pairs(m.get("weights"), skip=("pretrained_cfg",))
    if request.get("weights_file") and not any(k == "path" for k, _ in pairs):
        pairs.append(["file", request["weights_file"]])
    if request.get("weights_file_sha256") and not any(k == "sha256" for k, _ in pairs):
        pairs.append(["sha256", request["weights_file_sha256"]])
    return pairs


def _libraries(m: dict[str, Any]) -> list[list[str]]:
    return _pairs(m.get("framework")) + _pairs(m.get("environment"), skip=("hostname",))


def _device(m: dict[str, Any]) -> list[list[str]]:
    pairs = _pairs(m.get("device"), "device.") + _pairs(m.get("numerics"))
    request = m.get("request") or {}
    pairs += [[key, _text(m[key])] for key in ("batch_size", "workers", "isolation") if m.get(key) is not None]
    pairs += [[key, _text(request[key])] for key in ("amp", "channels_last", "tf32") if request.get(key) is not None]
    return pairs


def _dataset(m: dict[str, Any]) -> list[list[str]]:
    pairs = _pairs(m.get("dataset"))
    pairs += [[key, _text(m[key])] for key in ("labels_source", "protocol") if m.get(key) is not None]
    return pairs


def _run(m: dict[str, Any]) -> list[list[str]]:
    git = m.get("git") or {}
    pairs = [["created", _text(m["created"])]] if m.get("created") else []
    if git.get("commit"):
        pairs.append(["project commit", git["commit"] + (" (uncommitted changes)" if git.get("dirty") else "")])
    throughput = m.get("throughput") or {}
    pairs += [
        [key, _text(throughput[key])]
        for key in ("images_per_s", "wall_time_s", "model_time_s")
        if throughput.get(key) is not None
    ]
    command = m.get("command")
    if command:
        pairs.append(["command", command if isinstance(command, str) else shlex.join(map(str, command))])
    return pairs


# The provenance sections of a manifest, in the order the page shows them.
SECTIONS: tuple[tuple[str, Callable[[dict[str, Any]], list[list[str]]]], ...] = (
    ("Weights", _weights),
    ("Preprocessing", lambda m: _pairs(m.get("preprocessing"))),
    ("Libraries", _libraries),
    ("Device and numerics", _device),
    ("Dataset", _dataset),
    ("Run", _run),
)


class _Interned:
    """Distinct values stored once; each use refers to its index."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._index: dict[tuple[Any, ...], int] = {}

    def add(self, value: tuple[Any, ...]) -> int:
        index = self._index.get(value)
        if index is None:
            index = self._index[value] = len(self.values)
            self.values.append(value)
        return index


# Stands for the row's model id inside provenance text, so that text which differs between
# models only by the id (a command line, a weights name) is stored once. The page puts the id
# back. Ids and texts have their control characters escaped first (``one_line``), so no text
# holds this character but as the mark.
MODEL_MARK = "\u0001"


class _Provenance:
    """Manifests as lists of [section label index, section index]; a section is a list of
    [key, text] pair indices; pairs, sections and whole manifests are each stored once."""

    def __init__(self) -> None:
        self.pairs, self.sections, self.manifests = _Interned(), _Interned(), _Interned()

    def add(self, record: dict[str, Any], model: str) -> int:
        parts = []
        for i, (_, extract) in enumerate(SECTIONS):
            pairs = tuple(
                self.pairs.add((one_line(key), self._marked(one_line(text), model))) for key, text in extract(record)
            )
            if pairs:
                parts.append((i, self.sections.add(pairs)))
        return self.manifests.add(tuple(parts))

    @staticmethod
    def _marked(text: str, model: str) -> str:
        return text if MODEL_MARK in text or not model else text.replace(model, MODEL_MARK)


def _number(value: Any) -> float | int | None:
    """A value to sort or plot by: finite numbers only, to 7 significant digits (the page
    shows 2 decimals; 7 digits still tell apart two counts out of a million images)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value if isinstance(value, int) else float(f"{value:.7g}")


def _sort_value(value: Any, numeric: bool) -> Any:
    """Numeric columns sort by the number; the page sorts text columns by their cell text."""
    return _number(value) if numeric else None


def _finite(record: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinities (which JSON cannot hold) as None."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}


def _test_set_of(key: str, test_sets: list[str]) -> str | None:
    """The test set a column belongs to ("acc1:T", "delta:T", "er:T"), or None."""
    _, sep, suffix = key.rpartition(":")
    return suffix if sep and suffix in test_sets else None


def _baseline(baseline: Any) -> str:
    if isinstance(baseline, (list, tuple)):
        return f"{len(baseline)} models"
    return "" if baseline is None else str(baseline)


def payload(table: Table, info: ReportInfo) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able data."""
    provenance = _Provenance()
    test_sets = list(table.test_sets)
    plot_keys = PLOT_KEYS + tuple(f"acc1:{t}" for t in test_sets)
    plot_keys += tuple(k for chart in table.charts for k in (chart["x"], chart["y"]) if k not in plot_keys)
    shown = [c for c in table.columns if not c.detail]  # the text table's columns (no exact counts)
    columns = [
        {
            "header": one_line(c.header),
            "key": c.key,
            "numeric": bool(c.numeric),
            "test_set": _test_set_of(c.key, test_sets),
        }
        for c in shown
    ]
    rows = []
    for row in table.rows:
        values = [row.get(c.key) for c in shown]
        model = one_line(row["model"])  # as the text table shows it: no control character (nor the mark)
        manifests = {
            name: None if record is None else provenance.add(record, model)
            for name, record in (row.get("manifests") or {}).items()
        }
        rows.append(
            {
                "platform": row["platform"],
                "platform_name": row["platform_name"],
                "model": model,
                "source": row.get("source") or "",
                "device": row.get("device"),
                "text": [one_line(c.formatter(v)) for c, v in zip(shown, values, strict=True)],
                "sort": [_sort_value(v, c.numeric) for c, v in zip(shown, values, strict=True)],
                "plot": {k: v for k in plot_keys if (v := _number(row.get(k))) is not None},
                "provenance": manifests,
                "figures": {k: row[k] for k in table.row_figures if row.get(k) is not None},
                "heat": {h["id"]: [_number(row.get(k)) for k in h["keys"]] for h in table.heatmaps},
            }
        )
    return {
        "version": info.version,
        "created": info.created,
        "command": info.command,
        "datasets": [_finite({**d, "folders": [str(f) for f in d.get("folders") or []]}) for d in table.datasets],
        "test_sets": test_sets,
        "fits": {
            name: {
                "slope": _number(fit.get("slope")),
                "intercept": _number(fit.get("intercept")),
                "baseline": _baseline(fit.get("baseline")),
            }
            for name, fit in table.fits.items()
        },
        "notes": list(table.notes),
        "charts": [{k: one_line(str(v)) for k, v in chart.items()} for chart in table.charts],
        "heatmaps": [
            {"id": h["id"], "title": one_line(h["title"]), "labels": [one_line(x) for x in h["labels"]]}
            for h in table.heatmaps
        ],
        "figure_kinds": dict(table.row_figures),
        "columns": columns,
        "rows": rows,
        "section_labels": [label for label, _ in SECTIONS],
        "model_mark": MODEL_MARK,
        "pairs": provenance.pairs.values,
        "sections": provenance.sections.values,
        "manifests": provenance.manifests.values,
    }


def script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element: no ``<``, ``>`` or ``&`` appears literally."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ImageNet benchmark report</title>
<style>
{style}</style>
</head>
<body>
<noscript>This report draws its table with JavaScript; the same table is printed by imagenet_benchmarking.py.</noscript>
<script type="application/json" id="report-data">{data}</script>
<script>
{script}</script>
</body>
</html>
"""


def render(table: Table, info: ReportInfo) -> str:
    style = (ASSETS / "report.css").read_text(encoding="utf-8")
    script = (ASSETS / "report.js").read_text(encoding="utf-8")
    return PAGE.format(style=style, script=script, data=script_json(payload(table, info)))


def write(path: Path, table: Table, info: ReportInfo) -> None:
    """Write the page atomically (a temporary file beside ``path``, then a rename)."""
    atomic.write_text(path, render(table, info))
