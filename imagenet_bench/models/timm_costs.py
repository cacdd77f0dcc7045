"""timm's parameter counts and GMACs, read from a committed data file: no model is built.

timm's pretrained configs say neither, and counting parameters means building the model
(0.1 to 0.3 s each on the "meta" device: minutes for timm's 1,321 ImageNet-1k weight sets),
too slow for ``--list-models``, which builds nothing. So they are counted once, into
data/timm_costs.csv, by

    python -m tools.timm_costs ../shared/reference/timm-results

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

import functools
from dataclasses import dataclass

from .data_files import DATA_DIR, csv_rows

COSTS_CSV = DATA_DIR / "timm_costs.csv"
TIMM_LINE = "# timm: "


@dataclass(frozen=True)
class Costs:
    """The data file, read."""

    timm_version: str  # the timm that counted the parameters
    params: dict[str, int]  # architecture -> parameters
    gmacs: dict[tuple[str, int], float]  # (architecture, input size) -> GMACs


@functools.cache
def table() -> Costs:
    lines = COSTS_CSV.read_text(encoding="utf-8").splitlines()
    version = next(line[len(TIMM_LINE) :].strip() for line in lines if line.startswith(TIMM_LINE))
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
