"""``--list-models``: one listing for both prediction scripts, from metadata only.

Every row comes from the ``sources.ModelEntry`` members (id, published figures, parameters,
GFLOPs, the protocol's preprocessing, a note), so the listing shows the same columns for
every source and nothing is built, downloaded or imported beyond the registries (the Keras
script's listing imports neither TensorFlow nor torch). Then the left-out weight sets of the
chosen sources, each with its reason.
"""

from __future__ import annotations

from typing import Any

from ..base.errors import UsageError
from ..models import sources
from . import cli, runner

MIN_ID_WIDTH = 30


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _preprocess(entry: Any, protocol: str) -> tuple[str, Any]:
    """(description, input size) of the entry's preprocessing under the protocol."""
    try:
        preprocess = entry.preprocess(protocol)
    except sources.NotReadYet as exc:  # a KerasHub preset's converter is in its folder
        return str(exc), getattr(entry, "input_size", None)
    except UsageError as exc:
        return f"not run: {exc}", getattr(entry, "input_size", None)
    return cli.describe(preprocess), preprocess.crop_size


def row(entry: Any, protocol: str, width: int) -> str:
    described, size = _preprocess(entry, protocol)
    params, published = entry.num_params(), entry.published or {}
    note = f"  [{entry.note}]" if entry.note else ""
    return (
        f"{entry.id:{width}} {size or '?':>4} {_number(None if params is None else params / 1e6, 1):>9} "
        f"{_number(entry.gflops(), 2):>7} {_number(published.get('acc1'), 2):>6} "
        f"{_number(published.get('acc5'), 2):>6}  {described}{note}"
    )


def print_models(platform: str, source: str, protocol: str, part: tuple[int, int] | None) -> None:
    """The listing of a script's --source choice (this shard of it, with --model-shard)."""
    chosen = sources.chosen(platform, source)
    entries = sources.entries(chosen)
    shown = runner.shard(list(entries), part)
    excluded = sources.excluded(chosen)
    width = max([MIN_ID_WIDTH] + [len(model_id) for model_id in shown] + [len(model_id) for model_id, _ in excluded])
    print(
        f"{'id':{width}} {'size':>4} {'params(M)':>9} {'GFLOPs':>7} {'Acc@1':>6} {'Acc@5':>6}  "
        f"preprocessing ({protocol})"
    )
    for model_id in shown:
        print(row(entries[model_id], protocol, width))
    for model_id, reason in excluded:
        print(f"{model_id:{width}} left out: {reason}")
