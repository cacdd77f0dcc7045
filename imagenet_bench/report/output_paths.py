"""The table's output files are never its inputs: a CSV, chart, report or label-issue file
written over a prediction file, a label file or into a prediction folder the run reads would
break that folder for every later table, so such a path is refused before anything is written."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..base.errors import UsageError, shown


def validate(outputs: dict[str, Path], inputs: Iterable[Path], folders: Iterable[Path]) -> None:
    """``outputs``: {flag: path} of the files the run will write; ``inputs``: the files it reads
    (named by its options); ``folders``: the prediction folders it reads. One UsageError naming
    the flag and the path for the first output that is an input, lies in a prediction folder,
    or is another output's path."""
    read = {path.resolve() for path in inputs if path.is_file()}
    prediction_folders = {folder.resolve() for folder in folders}
    taken: dict[Path, str] = {}
    for flag, path in outputs.items():
        target = path.resolve()  # a link to an input is that input
        if target in read:
            raise UsageError(f"{flag} {shown(path)}: is one of this run's input files; write the output elsewhere")
        if target.parent in prediction_folders:
            raise UsageError(
                f"{flag} {shown(path)}: is inside the prediction folder {shown(target.parent)} that this run "
                "reads; write the output elsewhere"
            )
        if target in taken:
            raise UsageError(f"{flag} {shown(path)}: is also the path of {taken[target]}; give each output its own")
        taken[target] = flag
