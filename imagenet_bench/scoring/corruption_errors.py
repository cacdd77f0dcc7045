"""ImageNet-C's corruption errors (Hendrycks and Dietterich 2019): a model's top-1 error on the
corrupted val images, summed over severities and divided by AlexNet's, so that corruptions
of different difficulty weigh alike in the mean (mCE, over the 15 benchmark corruptions).
Relative mCE divides instead the errors' rise above each model's clean error.

The published normaliser is AlexNet's error per corruption averaged over severities 1-5
(data/imagenet_c.json, from the authors' repository); it belongs to the released images. A
regenerated set is normalised fairly only by an AlexNet run on the same folders, which the
caller passes as ``measured``."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..base.errors import UsageError, shown
from ..datasets import imagenet_c

DATA = Path(__file__).resolve().parents[1] / "data" / "imagenet_c.json"

Errors = Mapping[tuple[str, int], float]  # (corruption, severity): top-1 error in percent


@dataclass(frozen=True)
class Constants:
    alexnet: dict[str, float]  # the 15 benchmark corruptions, in order: AlexNet's error in percent
    alexnet_clean: float  # AlexNet's clean val error in percent


@functools.cache
def constants() -> Constants:
    try:
        data = json.loads(DATA.read_text(encoding="utf-8"))
        alexnet = {str(k): 100 * float(v) for k, v in data["alexnet_error"].items()}
        if tuple(alexnet) != imagenet_c.BENCHMARK:
            raise ValueError(f"its corruptions are not the {len(imagenet_c.BENCHMARK)} of the benchmark")
        return Constants(alexnet, float(data["alexnet_clean_error"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{shown(DATA)}: ImageNet-C's constants do not load ({exc}); reinstall the package") from None


@dataclass(frozen=True)
class CorruptionErrors:
    ce: dict[str, float]  # per corruption with at least one severity: CE in percent
    mce: float | None  # None unless all 15 benchmark corruptions have a CE
    relative_mce: float | None  # None without the clean error, or unless all 15 have one


def of(
    errors: Errors, clean: float | None = None, measured: Errors | None = None, measured_clean: float | None = None
) -> CorruptionErrors:
    """CE per corruption over the severities ``errors`` has (and ``measured`` too, where given):
    sum of the model's errors / sum of the normaliser's, with the published normaliser the same
    at every severity. Relative CE: sum of (error - clean) / sum of (normaliser - its clean), with
    ``clean`` the model's clean error and ``measured_clean`` the measured AlexNet's."""
    known = constants()
    ce: dict[str, float] = {}
    relative: dict[str, float] = {}
    for corruption in imagenet_c.CORRUPTIONS:
        both = errors if measured is None else measured
        severities = [s for s in imagenet_c.SEVERITIES if (corruption, s) in errors and (corruption, s) in both]
        if not severities or (measured is None and corruption not in known.alexnet):
            continue
        model = [errors[corruption, s] for s in severities]
        if measured is None:
            normaliser = [known.alexnet[corruption]] * len(severities)
            normaliser_clean = known.alexnet_clean
        else:
            normaliser = [measured[corruption, s] for s in severities]
            normaliser_clean = float("nan") if measured_clean is None else measured_clean
        if sum(normaliser) > 0:
            ce[corruption] = 100 * sum(model) / sum(normaliser)
        rise = sum(normaliser) - len(severities) * normaliser_clean
        if clean is not None and rise > 0:
            relative[corruption] = 100 * (sum(model) - len(severities) * clean) / rise
    benchmark = imagenet_c.BENCHMARK
    mce = sum(ce[c] for c in benchmark) / len(benchmark) if all(c in ce for c in benchmark) else None
    full = all(c in relative for c in benchmark)
    relative_mce = sum(relative[c] for c in benchmark) / len(benchmark) if full else None
    return CorruptionErrors(ce, mce, relative_mce)
