"""A dataset's image paths, held as one block of bytes: a run keeps every path to its end, and
50,000 ``Path`` objects take some 460 bytes each (their parts and cached strings), where the
bytes of the path itself take some 60 (issue 27; an ImageNet-C sweep has 3.75 million)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload

import numpy as np


class PathList(Sequence[Path]):
    def __init__(self, paths: Iterable[Path]) -> None:
        names = [os.fsencode(path) for path in paths]
        self._blob = b"".join(names)
        self._ends = np.cumsum([len(name) for name in names], dtype=np.int64)

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> Path: ...
    @overload
    def __getitem__(self, index: slice) -> PathList: ...
    def __getitem__(self, index: int | slice) -> Path | PathList:
        if isinstance(index, slice):
            return self.take(np.arange(len(self))[index])
        row = range(len(self))[index]  # negative indices, and IndexError past the end
        start = int(self._ends[row - 1]) if row else 0
        return Path(os.fsdecode(self._blob[start : int(self._ends[row])]))

    def __iter__(self) -> Iterator[Path]:
        return (self[row] for row in range(len(self)))

    def take(self, rows: Sequence[int] | np.ndarray) -> PathList:
        """The paths of ``rows``, in that order."""
        return PathList(self[int(row)] for row in rows)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Sequence)
            and len(self) == len(other)
            and all(a == b for a, b in zip(self, other, strict=True))
        )

    def __hash__(self) -> int:
        return hash(self._blob)

    def __repr__(self) -> str:
        return f"PathList({len(self)} paths)"
