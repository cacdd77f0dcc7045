"""Scoring a model on some of the 1000 classes: the restriction before the softmax.

ImageNet-A and ImageNet-R hold 200 of the 1000 classes. Their published accuracies
(timm's validate.py ``--valid-labels``, the ImageNet-R authors' eval.py,
imagenet-testbed's class_sublist) keep only those 200 of each model's 1000 outputs,
take the softmax over them and the top-k among them. Scored over all 1000 outputs
instead, ImageNet-A accuracy is near zero: its images were picked because models
put them in a wrong class, mostly one outside the 200.

One implementation for both platforms: a subset is a sorted tuple of global class
indices. The model's outputs are indexed to those columns (one index per batch), the
softmax and top-k run over them, and the top-k positions are mapped back to global
indices, so prediction files keep class indices 0..999 and stay comparable.
Keras applications end in a softmax layer, so the Keras script restricts
probabilities: softmax(log p[S]) = p[S] / sum(p[S]), which is the softmax of the
logits restricted to S (softmax is shift-invariant: log p = logits - logsumexp),
up to float error; classes whose float32 probability underflowed to 0 (logits more
than about 100 below the top one) lose their order.

The subset's identity is the sha256 of its WordNet ids, one a line, sorted; it is part
of the dataset fingerprint (so of the resume key and the output-folder validation).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..base.classes import NUM_CLASSES, wnid_to_index, wnids
from ..base.errors import UsageError, shown

NONE = "none"  # --class-subset none: the test set's default subset turned off


@dataclass(frozen=True)
class ClassSubset:
    """Global class indices (sorted, unique) a model's outputs are restricted to."""

    indices: tuple[int, ...]
    source: str  # where it came from: a test set's class list, or a file

    def __post_init__(self) -> None:
        if not self.indices or list(self.indices) != sorted(set(self.indices)):
            raise ValueError("a class subset is a non-empty sorted tuple of distinct class indices")
        if self.indices[0] < 0 or self.indices[-1] >= NUM_CLASSES:
            raise ValueError(f"class indices must be in 0..{NUM_CLASSES - 1}")

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def wnids(self) -> list[str]:
        names = wnids()
        return [names[i] for i in self.indices]

    @property
    def sha256(self) -> str:
        return hashlib.sha256("".join(f"{w}\n" for w in self.wnids).encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        """What dataset.json and each manifest record."""
        return {"n_classes": len(self), "sha256": self.sha256, "source": self.source, "indices": list(self.indices)}

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> ClassSubset | None:
        """The subset ``describe`` recorded (the Keras model process gets it so), or None."""
        return None if record is None else cls(tuple(record["indices"]), record["source"])

    def short(self) -> str:
        """For the closing line and --list-models: ``200 classes (imagenet-a, sha256 1a2b3c4d5e6f)``."""
        return f"{len(self)} classes ({self.source}, sha256 {self.sha256[:12]})"


def read(path: str | Path) -> ClassSubset:
    """--class-subset FILE: WordNet ids or class indices, one a line (blank lines and
    ``#`` comments ignored). An unknown id, an index out of range, or a class listed
    twice is an error naming the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(
            f"{shown(path)}: --class-subset cannot be read ({reason}); give a file of WordNet ids or "
            "class indices, one a line, or none"
        ) from None
    index = wnid_to_index()
    seen: dict[int, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        if item in index:
            cls = index[item]
        elif item.isdigit() and int(item) < NUM_CLASSES:
            cls = int(item)
        else:
            raise UsageError(
                f"{shown(path)}: line {number}: --class-subset {item!r} is neither an ImageNet-1k "
                f"WordNet id nor a class index 0..{NUM_CLASSES - 1}"
            )
        if cls in seen:
            raise UsageError(
                f"{shown(path)}: line {number}: --class-subset lists class {cls} ({wnids()[cls]}) "
                f"twice (first on line {seen[cls]})"
            )
        seen[cls] = number
    if not seen:
        raise UsageError(
            f"{shown(path)}: --class-subset lists no class; give WordNet ids or class indices, one a line, or none"
        )
    return ClassSubset(tuple(sorted(seen)), f"file {path.name}")


def restrict_probs(probs: np.ndarray, subset: ClassSubset) -> np.ndarray:
    """N x len(subset) probabilities renormalised over the subset: p[S] / sum(p[S]),
    i.e. softmax(log p[S]) (the Keras script's restriction; see the module docstring)."""
    kept = np.asarray(probs, dtype=np.float64)[:, list(subset.indices)]
    total = kept.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, kept / total, 1.0 / len(subset)).astype(np.float32)


def topk_in_subset(restricted: np.ndarray, subset: ClassSubset, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of N x len(subset) restricted probabilities as global class indices, most
    probable first (ties: lower class first, as ``runner.topk``)."""
    k = min(k, restricted.shape[1])
    pos = np.argsort(-restricted, axis=1, kind="stable")[:, :k]
    return (
        np.asarray(subset.indices, dtype=np.int64)[pos],
        np.take_along_axis(restricted, pos, axis=1).astype(np.float32),
    )


def expand(restricted: np.ndarray, subset: ClassSubset) -> np.ndarray:
    """N x 1000 probabilities (0 outside the subset), for --save-all-probs: files keep global columns."""
    full = np.zeros((restricted.shape[0], NUM_CLASSES), dtype=np.float32)
    full[:, list(subset.indices)] = restricted
    return full


def validate_topk(k: int, subset: ClassSubset | None) -> None:
    """k larger than the subset is an error naming both."""
    if subset is not None and k > len(subset):
        raise UsageError(
            f"-k/--topk {k} is larger than the class subset's {len(subset)} classes "
            f"({subset.source}); -k must be at least 5 (Acc@5), so use a subset of at least {k} classes, "
            "or --class-subset none"
        )
