"""timm's parameter counts and GMACs, read from a committed data file: no model is built.

timm's pretrained configs say neither, and counting parameters means building the model
(0.1 to 0.3 s each on the "meta" device: minutes for timm's 1,321 ImageNet-1k weight sets),
too slow for ``--list-models``, which builds nothing. So they are counted once, into
data/timm_costs.csv, by

    python -m imagenet_bench.timm_costs ../shared/reference/timm-results

Parameters: exact, counted by the installed timm (the sum of ``p.numel()`` over a model
built on the "meta" device, 1000-class head), one figure per architecture: no two weight
sets of one architecture with a 1000-class head differ (the generator checks it and writes
nothing if they do), so a tag a later timm adds to a known architecture is covered too.

GMACs: timm's own benchmark (``benchmark-infer-amp-nchw-pt291-cu130-5090.csv`` of its
results folder: ``infer_gmacs`` per architecture and ``infer_img_size``), at each input
size an entry of the architecture runs at (its reference, test-time size), where timm
benchmarked that size and its network is the one we run: its ``param_count`` (millions,
two decimals) equals our count. That leaves out the re-parameterised networks (RepVGG,
MobileOne, FastViT, LeViT ...: timm benchmarks them fused) and those benchmarked with
another head (21k classes, or none). Unit: multiply-adds, the unit of torchvision's
``_ops`` that listings show as GFLOPs; timm's count adds the elements of the normalisation
and activation layers to those of the convolutions and linear layers (resnet50 at 224: timm
4.11; torchvision 4.089, exactly its convolutions' and linear layer's MACs; the difference is
its BatchNorm (0.011 G elements) and ReLU (0.010 G) outputs).

The file's header names the timm version it was counted with; a model it lacks (another
timm version) is counted by building it (``count_params``). Reading imports neither timm
nor torch.
"""
from __future__ import annotations

import csv
import functools
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .published import DATA_DIR, csv_rows

COSTS_CSV = DATA_DIR / "timm_costs.csv"
BENCHMARK_FILE = "benchmark-infer-amp-nchw-pt291-cu130-5090.csv"
TIMM_LINE = "# timm: "


@dataclass(frozen=True)
class Costs:
    """The data file, read."""

    timm_version: str  # the timm that counted the parameters
    params: dict[str, int]  # architecture -> parameters
    gmacs: dict[tuple[str, int], float]  # (architecture, input size) -> GMACs


@functools.lru_cache(maxsize=None)
def table() -> Costs:
    lines = COSTS_CSV.read_text(encoding="utf-8").splitlines()
    version = next(line[len(TIMM_LINE):].strip() for line in lines if line.startswith(TIMM_LINE))
    params: dict[str, int] = {}
    gmacs: dict[tuple[str, int], float] = {}
    for row in csv_rows(COSTS_CSV):
        params[row["architecture"]] = int(row["num_params"])
        if row["gmacs"]:
            gmacs[(row["architecture"], int(row["img_size"]))] = float(row["gmacs"])
    return Costs(version, params, gmacs)


def num_params(architecture: str) -> int | None:
    """The file's parameter count of a timm architecture (1000-class head); None if it lacks it."""
    return table().params.get(architecture)


def gmacs(architecture: str, img_size: int) -> float | None:
    """timm's GMACs of an architecture at an input size; None where the file has none."""
    return table().gmacs.get((architecture, img_size))


def count_params(name: str) -> int:
    """Parameters of a timm model, counted on a model built on the "meta" device (no memory,
    no weights)."""
    import timm
    import torch

    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    return sum(p.numel() for p in model.parameters())


# --- generating data/timm_costs.csv ------------------------------------------------------


@dataclass(frozen=True)
class Counted:
    """One registry entry, counted: what a row of the file is made from."""

    name: str  # "arch.tag"
    architecture: str
    img_size: int  # the entry's reference input size
    num_params: int


def per_architecture(counted: Iterable[Counted]) -> dict[str, int]:
    """architecture -> parameters; RuntimeError if two weight sets of one architecture differ."""
    params: dict[str, int] = {}
    first: dict[str, str] = {}
    for item in counted:
        known = params.setdefault(item.architecture, item.num_params)
        first.setdefault(item.architecture, item.name)
        if known != item.num_params:
            raise RuntimeError(f"{item.architecture}: {first[item.architecture]} has {known} parameters, "
                               f"{item.name} {item.num_params}: the file cannot key counts by architecture")
    return params


def benchmark_rows(path: Path) -> dict[tuple[str, int], dict[str, str]]:
    """(architecture, infer_img_size) -> row of timm's inference benchmark file."""
    with open(path, encoding="utf-8", newline="") as handle:
        return {(row["model"], int(row["infer_img_size"])): row for row in csv.DictReader(handle)}


def same_network(row: dict[str, str], num_params: int) -> bool:
    """timm's benchmark ran the network we count: its param_count (millions, 2 decimals) is ours."""
    return abs(float(row["param_count"]) - num_params / 1e6) <= 0.005 + 1e-9


def generate(counted: list[Counted], benchmark: dict[tuple[str, int], dict[str, str]], timm_version: str,
             source: str) -> str:
    """The content of data/timm_costs.csv: one row per architecture and input size of an entry."""
    params = per_architecture(counted)
    out = io.StringIO()
    out.write(f"# source: parameters counted by timm (meta-device build, 1000-class head); GMACs: {source}\n"
              f"{TIMM_LINE}{timm_version}\n"
              "# Generated by `python -m imagenet_bench.timm_costs RESULTS_DIR`; do not edit. gmacs blank: timm "
              "did not benchmark that architecture at that size, or benchmarked another network (fused, or "
              "another head).\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["architecture", "num_params", "img_size", "gmacs"])
    for architecture, size in sorted({(item.architecture, item.img_size) for item in counted}):
        row = benchmark.get((architecture, size))
        same = row is not None and same_network(row, params[architecture])
        writer.writerow([architecture, params[architecture], size, row["infer_gmacs"] if same else ""])
    return out.getvalue()


def main(argv: list[str]) -> int:
    from . import atomic, timm_published
    # The registry is a higher module; only this command-line entry point reads it.
    from . import timm_registry

    if len(argv) != 1:
        print("usage: python -m imagenet_bench.timm_costs RESULTS_DIR (a copy of timm's results/ folder)",
              file=sys.stderr)
        return 2
    results_dir = Path(argv[0])
    import timm

    source = (f"timm results/{BENCHMARK_FILE} at commit {timm_published.source_commit(results_dir)} "
              "(huggingface/pytorch-image-models, Apache-2.0), infer_gmacs at infer_img_size")
    counted = [Counted(entry.name, entry.architecture, entry.reference_preprocess().crop_size,
                       count_params(entry.name)) for entry in timm_registry.entries()]
    text = generate(counted, benchmark_rows(results_dir / BENCHMARK_FILE), timm.__version__, source)
    atomic.write_text(COSTS_CSV, text)
    print(f"wrote {COSTS_CSV}: {text.count(chr(10)) - 4} rows for {len(counted)} entries", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
