"""Published ImageNet accuracy of the benchmarked models, read from committed files.

The table script (imagenet_benchmarking.py --published) compares each measured
Acc@1/Acc@5 with the published figure. It must not import torch, torchvision or
Keras, so the figures live in two committed data files, and ``lookup`` reads only
those:

  * data/torchvision_published.json: generated from the installed torchvision's
    weights metadata by ``python -m imagenet_bench.published``; a test checks it
    still equals what the library says.
  * data/keras_published.csv: entered by hand from the keras.io applications table
    (and, for MobileNetV3, which that table lacks, Keras's mobilenet_v3.py docstring);
    data/keras_variants_published.csv: the MobileNetV3 width and minimalistic variants,
    from that docstring's checkpoint table.

Model ids are the ones used in prediction-file names:

  * pytorch: the torchvision builder name alone means the builder's FIRST weight
    set (``list(weights_enum)[0]``, not its DEFAULT alias), so the 2019 ids
    (resnet50, vgg16, densenet121, ...) keep meaning IMAGENET1K_V1; every other
    weight set is ``builder.WEIGHTNAME`` (``resnet50.IMAGENET1K_V2``). Quantized
    models use the builder names of ``torchvision.models.quantization``
    (``quantized_resnet50``, ``quantized_resnet50.IMAGENET1K_FBGEMM_V2``);
    ``quantized_mobilenet_v2``'s only weight set is IMAGENET1K_QNNPACK_V1, so
    the rule needs no exception for it.
  * keras: the 13 ids of 2019 keep their spelling (``mobilenetV2``, not
    ``mobilenetv2``); every other application is its lower-cased constructor name
    (``efficientnetb0``, ``convnexttiny``); variants are ``{id}_{alpha}_{resolution}``
    or ``mobilenetv3large_minimalistic``. The MobileNet and MobileNetV2 variants
    (``mobilenet_0.25_128``) have no published figure and look up as None.
"""
from __future__ import annotations

import csv
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
TORCHVISION_JSON = DATA_DIR / "torchvision_published.json"
KERAS_CSV = DATA_DIR / "keras_published.csv"
KERAS_VARIANTS_CSV = DATA_DIR / "keras_variants_published.csv"

# Keras ids whose 2019 spelling is not the lower-cased constructor name.
_KERAS_ID_EXCEPTIONS = {"MobileNetV2": "mobilenetV2"}
KERAS_2019_IDS = (
    "densenet121", "densenet169", "densenet201", "mobilenet", "mobilenetV2",
    "nasnetmobile", "resnet50", "vgg16", "vgg19", "xception", "inceptionresnetv2",
    "inceptionv3", "nasnetlarge",
)


@dataclass(frozen=True)
class Published:
    """A published accuracy, in percent, and where it comes from."""

    acc1: float | None
    acc5: float | None  # None when unknown (Keras publishes no top-5 for ConvNeXt, MobileNetV3)
    source: str


def keras_model_id(application: str) -> str:
    """The prediction-file model id of a Keras application constructor name."""
    return _KERAS_ID_EXCEPTIONS.get(application, application.lower())


def lookup(platform: str, model: str) -> Published | None:
    """Published accuracy of a model id as used in prediction-file names; None if unknown.

    Reads only the committed data files (json/csv), once per process.
    """
    if platform == "pytorch":
        return _torchvision_table().get(model)
    if platform == "keras":
        return _keras_table().get(model)
    return None


@functools.lru_cache(maxsize=None)
def _torchvision_table() -> dict[str, Published]:
    data = json.loads(TORCHVISION_JSON.read_text(encoding="utf-8"))
    version = data["torchvision_version"]
    return {
        entry["id"]: Published(
            acc1=entry["acc1"],
            acc5=entry["acc5"],
            source=f"torchvision {version} weights metadata ({entry['weights']})",
        )
        for entry in data["entries"]
    }


def _optional_float(text: str) -> float | None:
    text = text.strip()
    return float(text) if text else None


def _csv_rows(path: str | Path) -> list[dict[str, str]]:
    """A committed CSV's rows; ``#`` lines are comments."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(line for line in handle if line.strip() and not line.lstrip().startswith("#")))


def read_keras_csv(path: str | Path = KERAS_CSV) -> list[dict[str, Any]]:
    """Rows of the Keras table, numbers parsed."""
    rows = []
    for row in _csv_rows(path):
        rows.append({
            "application": row["application"].strip(),
            "acc1": _optional_float(row["acc1"]),
            "acc5": _optional_float(row["acc5"]),
            "params_m": _optional_float(row["params_m"]),
            "published_input_size": int(row["published_input_size"]),
            "source": row["source"].strip(),
            "note": (row.get("note") or "").strip(),
        })
    return rows


@functools.lru_cache(maxsize=None)
def _keras_table() -> dict[str, Published]:
    table: dict[str, Published] = {}
    for row in read_keras_csv():
        model_id = keras_model_id(row["application"])
        if model_id in table:
            raise RuntimeError(f"{KERAS_CSV}: model id {model_id!r} occurs twice")
        source = f"{row['source']} ({row['application']}"
        source += f"; {row['note']})" if row["note"] else ")"
        table[model_id] = Published(acc1=row["acc1"], acc5=row["acc5"], source=source)
    for row in read_keras_variants_csv():
        if row["model"] in table:
            raise RuntimeError(f"{KERAS_VARIANTS_CSV}: model id {row['model']!r} occurs twice")
        table[row["model"]] = Published(acc1=row["acc1"], acc5=row["acc5"],
                                        source=f"keras mobilenet_v3.py docstring ({row['checkpoint']})")
    return table


def read_keras_variants_csv(path: str | Path = KERAS_VARIANTS_CSV) -> list[dict[str, Any]]:
    """Rows of the Keras variants' table, numbers parsed."""
    return [{"model": row["model"].strip(), "acc1": _optional_float(row["acc1"]), "acc5": _optional_float(row["acc5"]),
             "checkpoint": row["checkpoint"].strip()} for row in _csv_rows(path)]


# --- generating data/torchvision_published.json (imports torchvision) -----------


def _entries(quantized: bool) -> list[dict[str, Any]]:
    from .torch_registry import entries as registry_entries

    rows = []
    for item in registry_entries():
        if item.quantized != quantized:
            continue
        meta = item.meta
        entry: dict[str, Any] = {
            "id": item.id,
            "builder": item.builder,
            "weights": item.weights_name,
            "acc1": float(item.published["acc1"]),
            "acc5": float(item.published["acc5"]),
            "num_params": int(meta["num_params"]),
        }
        for key, name in (("_ops", "gflops"), ("_file_size", "file_size_mb")):
            if isinstance(meta.get(key), (int, float)) and math.isfinite(meta[key]):
                entry[name] = float(meta[key])
        if meta.get("backend"):
            entry["backend"] = str(meta["backend"])
        if meta.get("recipe"):
            entry["recipe"] = str(meta["recipe"])
        rows.append(entry)
    return rows


def generate_torchvision_table() -> dict:
    """Build the content of data/torchvision_published.json from the installed
    torchvision's weights metadata (ImageNet-1K classifiers only: the
    classification and quantization modules)."""
    import torchvision

    classification = _entries(quantized=False)
    quantized = _entries(quantized=True)
    entries = classification + quantized
    ids = [entry["id"] for entry in entries]
    if len(set(ids)) != len(ids):
        raise RuntimeError("torchvision model ids are not unique")
    return {
        "about": "Published ImageNet-1K accuracy (percent) of torchvision's classification "
                 "weights, from their metadata. Generated by `python -m imagenet_bench.published`; "
                 "do not edit. Id: builder = its first weight set, builder.WEIGHTS = any other.",
        # The local build tag (+cu130, +cpu) does not change the metadata.
        "torchvision_version": torchvision.__version__.split("+")[0],
        "counts": {"classification": len(classification), "quantized": len(quantized)},
        "entries": entries,
    }


def main() -> None:
    from . import atomic

    table = generate_torchvision_table()
    atomic.write_json(TORCHVISION_JSON, table)
    counts = table["counts"]
    print(f"wrote {TORCHVISION_JSON}: torchvision {table['torchvision_version']}, "
          f"{counts['classification']} classification + {counts['quantized']} quantized weight sets")


if __name__ == "__main__":
    main()
