"""ImageNet-C's mCE (``scoring.corruption_errors``), shown whenever the table holds ImageNet-C
folders: per model, mCE over the 15 corruptions and relative mCE (with the clean error of the
val set in the same table), normalised by AlexNet's published errors; where torchvision's
alexnet was run on the same folders, mCE normalised by it too; each corruption's CE in CSV and
JSON and in an HTML heat map. Released and regenerated folders are never mixed: each kind
gets its own columns (a regenerated set's published-normaliser mCE is not the paper's)."""

from __future__ import annotations

from typing import Any

from ..datasets import imagenet_c, test_sets
from ..scoring import corruption_errors
from .column_set import ColumnSet
from .table import Table
from .table_format import Column, percent


def clean_error(table: Table, row: dict[str, Any]) -> float | None:
    """The row's error on the ImageNet val set, where the table's primary dataset is it."""
    primary = next((d for d in table.datasets if table.test_sets and d["name"] == table.test_sets[0]), {})
    if primary.get("test_set") not in (None, test_sets.VAL) or row.get("acc1") is None:
        return None
    return 100.0 - float(row["acc1"])


class CorruptionErrors(ColumnSet):
    name = "corruption_errors"
    always = True

    def fill(self, table: Table, value: Any) -> list[Column]:
        folders: dict[str, dict[tuple[str, int], str]] = {}  # family: (corruption, severity): dataset name
        for dataset in table.datasets:
            found = imagenet_c.folder_of(str(dataset.get("test_set") or ""))
            if found is not None:
                folders.setdefault(found[0], {})[found[1], found[2]] = dataset["name"]
        columns: list[Column] = []
        for family, names in sorted(folders.items()):
            kind = "released" if family == imagenet_c.NAME else "regenerated"
            columns += self._kind(table, kind, "" if family == imagenet_c.NAME else f" {kind}", names)
        return columns

    def _kind(self, table: Table, kind: str, suffix: str, names: dict[tuple[str, int], str]) -> list[Column]:
        def errors(row: dict[str, Any]) -> dict[tuple[str, int], float]:
            return {k: 100.0 - row[f"acc1:{n}"] for k, n in names.items() if row.get(f"acc1:{n}") is not None}

        alexnet = next((r for r in table.rows if r["platform"] == "pytorch" and r["model"] == "alexnet"), None)
        measured = None if alexnet is None else errors(alexnet)
        measured_clean = None if alexnet is None else clean_error(table, alexnet)
        key = f"{kind}:" if suffix else ""
        for row in table.rows:
            mine, clean = errors(row), clean_error(table, row)
            found = corruption_errors.of(mine, clean) if mine else None
            row[f"mce:{key}"] = None if found is None else found.mce
            row[f"rmce:{key}"] = None if found is None else found.relative_mce
            for corruption in imagenet_c.CORRUPTIONS:
                row[f"ce:{key}{corruption}"] = None if found is None else found.ce.get(corruption)
            by_alexnet = corruption_errors.of(mine, clean, measured, measured_clean) if mine and measured else None
            row[f"mce_alexnet:{key}"] = None if by_alexnet is None else by_alexnet.mce
        severities = sorted({s for _, s in names})
        partial = severities != list(imagenet_c.SEVERITIES)
        table.notes.append(
            f"note: ImageNet-C ({kind}): {len(names)} folders, severities {', '.join(map(str, severities))}; "
            "CE = the sum of a model's errors over severities / AlexNet's (published, averaged over severities "
            "1-5), mCE = their mean over the 15 corruptions, relative mCE from the rise above the val error"
            + ("; not the published mCE: severities are missing" if partial else "")
        )
        present = [c for c in imagenet_c.CORRUPTIONS if any(k[0] == c for k in names)]
        table.heatmaps.append(
            {
                "id": f"imagenet_c{suffix.strip()}",
                "title": f"ImageNet-C{suffix} corruption errors (CE, %)",
                "keys": [f"ce:{key}{c}" for c in present],
                "labels": [c.replace("_", " ") for c in present],
            }
        )
        table.charts.append(
            {
                "id": f"mce{suffix.strip()}",
                "title": f"mCE{suffix} against Acc@1",
                "x": "acc1",
                "y": f"mce:{key}",
                "xLabel": "Acc@1 (%)",
                "yLabel": "mCE (%)",
            }
        )
        columns = [Column(f"mCE{suffix}", f"mce:{key}", percent), Column(f"rel. mCE{suffix}", f"rmce:{key}", percent)]
        if measured:
            columns.append(Column(f"mCE{suffix} (AlexNet run)", f"mce_alexnet:{key}", percent))
        columns += [Column(f"CE {c}{suffix}", f"ce:{key}{c}", percent, detail=True) for c in present]
        return columns
