"""What a prediction pass keeps of each image, written in place as the batches come.

n x k arrays allocated once: a list of per-batch arrays costs some 300 bytes an image when
images go one at a time (two small arrays each), and concatenating it at the end holds every
row twice, which with all probabilities kept is 8 KB an image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base.classes import NUM_CLASSES


class TopKRows:
    def __init__(self, n: int, all_probs: bool = False) -> None:
        self.n, self.keep_all = n, all_probs
        # allocated by the first batch, which gives k (a class subset may have fewer classes)
        self.preds: np.ndarray | None = None
        self.probs: np.ndarray | None = None
        self.all_probs: np.ndarray | None = None
        self.filled = 0

    def add(self, top_i: Any, top_p: Any, probs: Any = None) -> None:
        """One batch's rows, next in row order (numpy arrays or anything ``np.asarray`` takes)."""
        if self.preds is None:
            k = np.shape(top_i)[1]
            self.preds, self.probs = np.zeros((self.n, k), np.int64), np.zeros((self.n, k), np.float32)
            self.all_probs = np.zeros((self.n, NUM_CLASSES), np.float32) if self.keep_all else None
        assert self.probs is not None
        rows = slice(self.filled, self.filled + len(top_i))
        self.preds[rows] = top_i
        self.probs[rows] = top_p
        if self.all_probs is not None:
            self.all_probs[rows] = probs
        self.filled = rows.stop

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(preds, probs, all probabilities or None); every row must have come."""
        assert self.preds is not None and self.probs is not None and self.filled == self.n, (self.filled, self.n)
        return self.preds, self.probs, self.all_probs
