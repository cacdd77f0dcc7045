"""The column sets read from the manifests and the registries' data files, with no per-image
part: published figures (--published) and speed (--speed)."""

from __future__ import annotations

from typing import Any

from ..scoring.score import Card
from .column_set import ColumnSet
from .table import Table
from .table_format import Column, one_decimal, percent, plain, signed, two_decimals


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


class Published(ColumnSet):
    """Published Acc@1/Acc@5 on the primary dataset's test set (``published_figures``) and
    measured minus published; per other test set T, pub1:T beside the measured Acc@1 T. The
    values are also computed, unshown, for --plot (which marks them)."""

    name = "published"
    flag = "--published"
    help = "published Acc@1/Acc@5 and measured minus published"

    def enabled(self, value: Any, plot: bool) -> bool:
        return value is not None or plot

    def fill(self, table: Table, value: Any) -> list[Column]:
        from ..models.published import VAL

        rows, primary = table.rows, table.datasets[0]
        published_sets = {d["name"]: d["test_set"] or VAL for d in table.datasets}  # what each dataset samples
        test_set = published_sets[primary["name"]]
        for row in rows:
            info = published_figures(row["card"], row["platform"], row["model"], test_set)
            row["published_acc1"], row["published_acc5"] = info.get("acc1"), info.get("acc5")
            row["published_source"] = info.get("source")
            for k in ("1", "5"):
                measured, pub = row[f"acc{k}"], row[f"published_acc{k}"]
                row[f"delta{k}"] = None if measured is None or pub is None else measured - pub
        if value is None:
            return []
        if test_set != VAL:
            table.notes.append(
                f"note: the published figures are for the whole {test_set} test set, from the "
                "sources that published it (timm); the others publish none, so they are blank"
            )
        elif not primary["full_val"]:
            table.notes.append(
                f"note: the published figures are for the full 50,000-image val set, not "
                f"{primary['name']} ({primary['n_images']} images): a difference here is not a "
                "discrepancy"
            )
        columns = [
            Column("Pub@1", "published_acc1", percent),
            Column("Pub@5", "published_acc5", percent),
            Column("Δ@1", "delta1", signed),
            Column("Δ@5", "delta5", signed),
        ]
        for dataset in table.datasets[1:]:
            name = dataset["name"]
            for row in rows:
                card = row["cards"].get(name)
                row[f"pub1:{name}"] = (
                    None
                    if card is None
                    # beside a measured figure only
                    else published_figures(card, row["platform"], row["model"], published_sets[name]).get("acc1")
                )
            columns.append(Column(f"Pub@1 {name}", f"pub1:{name}", percent))
        return columns


class Speed(ColumnSet):
    """Parameters and GFLOPs (from the primary manifest, else the registries' published data
    files), images/s (the model's own, per GPU: table.model_rate), device and batch size from
    the primary manifest, and '*' on the accuracy/throughput frontier of each device: no other
    model measured on the same device, as many of them, is both at least as accurate and faster
    (or faster and at least as accurate)."""

    name = "speed"
    flag = "--speed"
    help = (
        "parameters, GFLOPs, images/s, device and batch size from the manifests; '*' marks "
        "the accuracy/throughput frontier of each device"
    )

    def fill(self, table: Table, value: Any) -> list[Column]:
        from ..models import published

        rows = table.rows
        for row in rows:
            manifest = (row["card"].manifest if row["card"] else None) or {}
            known = published.cost(row["platform"], row["model"])  # where the manifest does not say
            params = manifest.get("params", known["params"])
            row["params_m"] = None if params is None else params / 1e6
            row["gflops"] = manifest.get("gflops", known["gflops"])
            row["frontier"] = None
        by_device: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for row in rows:  # like with like: the same device, and as many of them
            if row["images_per_s"] and row["acc1"] is not None and row["device"]:
                by_device.setdefault((str(row["device"]), row.get("ranks") or 1), []).append(row)
        for group in by_device.values():
            for row in group:
                beaten = any(
                    o is not row
                    and o["acc1"] >= row["acc1"]
                    and o["images_per_s"] >= row["images_per_s"]
                    and (o["acc1"] > row["acc1"] or o["images_per_s"] > row["images_per_s"])
                    for o in group
                )
                row["frontier"] = "" if beaten else "*"
        return [
            Column("Params (M)", "params_m", one_decimal),
            Column("GFLOPs", "gflops", two_decimals),
            Column("images/s", "images_per_s", one_decimal),
            Column("Device", "device", plain, numeric=False),
            Column("Batch", "batch_size"),
            Column("Frontier", "frontier", plain, numeric=False),
        ]
