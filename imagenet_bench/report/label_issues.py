"""What the models say about the labels: images whose given label the models contradict.

Ranking hundreds of models on the same images gives what no single evaluation has:
where independently trained models agree with each other and not with the label.
Two methods, both fed while the table reads each model's files (``scoring.Tally``),
so no file is read twice:

* the consensus of top-1 votes (``Votes``): per image, the class most models chose
  and the share that chose it. It needs only each model's top-1 and is kept as a
  running N x 1000 count matrix (uint16: 100 MB at 50,000 images, whatever the
  number of models), never as one array per model;
* confident learning (Northcutt et al.), through the ``cleanlab`` package, on the
  mean of the models' probabilities (``MeanProbs``). The files keep only the top k
  (>= 5) probabilities of each model, so each model's row is its k probabilities at
  their classes and the rest of its mass (1 - their sum) spread evenly over the other
  1000 - k classes: the row still sums to 1 and no class the model did not list gets
  more than a class it listed. cleanlab is imported only when asked.

They differ where the models are unsure: the consensus counts votes, so 60% of the
models choosing one other class flags an image however unsure each was; confident
learning weighs the probabilities against per-class thresholds, so it also flags
images where the models spread their votes but all put little mass on the label,
and it ignores confident-looking votes in classes the models confuse all the time.

Where the crowd-checked data of Northcutt, Athalye and Mueller (2021) is given
(``clean_labels.LabelErrors``), each method's flagged images are compared with it:
of those the crowd was shown, how many it confirmed as label errors.

The CSV written here is also read back (``read_csv``) by ``--clean-labels``, so the
models can be ranked on the labels their consensus corrected; the models then judge
the labels they are scored on, which the output says.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..base import atomic
from ..base.classes import NUM_CLASSES
from ..base.errors import UsageError
from ..outputs.predfiles import Predictions
from ..scoring import clean_labels

LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # shares of the models, reported in the summary
MIN_SHARE = LEVELS[0]  # an image is flagged when at least half the models chose one other class
MIN_K = 5  # confident learning needs at least the top-5 probabilities of a model
CAVEAT = (
    "the labels were corrected by the consensus of the same models that are then scored on them: models "
    "that agree with the others gain; this is not an independent measure of accuracy"
)
COLUMNS = [
    "rank",
    "row",
    "file",
    "given_id",
    "given_name",
    "consensus_id",
    "consensus_name",
    "consensus_share",
    "given_share",
    "score",
]
CL_COLUMNS = ["cleanlab_flagged", "cleanlab_quality"]


class Votes:
    """Running top-1 vote counts: counts[i, c] is how many models chose class c for image i."""

    def __init__(self, n_images: int) -> None:
        self.counts = np.zeros((n_images, NUM_CLASSES), dtype=np.uint16)
        self.offsets = np.arange(n_images, dtype=np.int64) * NUM_CLASSES
        self.models = 0

    def add(self, loaded: Predictions) -> None:
        if self.models == np.iinfo(self.counts.dtype).max:
            self.counts = self.counts.astype(np.uint32)
        # one vote per image: the flat indices are distinct, so a fancy-index += counts each once
        self.counts.reshape(-1)[self.offsets + loaded.top1] += 1
        self.models += 1


class MeanProbs:
    """Running sum of each model's probabilities over all 1000 classes, its top k placed at
    their classes and the rest of its mass spread evenly over the other classes."""

    def __init__(self, n_images: int) -> None:
        self.sums = np.zeros((n_images, NUM_CLASSES), dtype=np.float32)
        self.spread = np.zeros(n_images, dtype=np.float64)
        self.offsets = np.arange(n_images, dtype=np.int64) * NUM_CLASSES
        self.models = 0
        self.skipped: list[str] = []  # models with fewer than MIN_K columns

    def add(self, loaded: Predictions) -> None:
        if loaded.k < MIN_K:
            self.skipped.append(loaded.files.label)
            return
        probs = np.clip(np.nan_to_num(loaded.probs.astype(np.float32), nan=0.0), 0.0, 1.0)
        rest = np.clip(1.0 - probs.sum(axis=1), 0.0, None) / (NUM_CLASSES - loaded.k)
        # every class gets rest; a listed class gets its probability instead. One column at a
        # time: within a column each image's index is distinct, so += counts each once, and a
        # class listed twice in a row (a damaged file) adds up as np.add.at would, at its cost
        flat = self.sums.reshape(-1)
        for j in range(loaded.k):
            flat[self.offsets + loaded.preds[:, j]] += probs[:, j] - rest
        self.spread += rest
        self.models += 1

    def matrix(self) -> np.ndarray:
        """The N x 1000 mean (float32), made in place of the sums (which are then gone)."""
        if self.models == 0:
            raise UsageError(
                f"confident learning needs the top-{MIN_K} probabilities of at least one model; "
                f"every model here has fewer columns"
            )
        self.sums += self.spread[:, None].astype(np.float32)
        self.sums /= self.models
        np.clip(self.sums, 0.0, 1.0, out=self.sums)
        return self.sums


@dataclass
class Tallies:
    """What --label-issues sums while the table reads the files: votes, and the mean
    probabilities when confident learning is asked for."""

    votes: Votes
    mean: MeanProbs | None

    @classmethod
    def for_images(cls, n_images: int, confident_learning: bool) -> Tallies:
        return cls(Votes(n_images), MeanProbs(n_images) if confident_learning else None)

    def __iter__(self) -> Iterator[Votes | MeanProbs]:
        return iter([t for t in (self.votes, self.mean) if t is not None])


@dataclass
class Consensus:
    """Per image: the class the models agree on most (the given label when it ties for most
    votes), the share of models that chose it and the share that chose the given label."""

    models: int
    given: np.ndarray
    label: np.ndarray
    share: np.ndarray
    given_share: np.ndarray
    score: np.ndarray = field(init=False)  # how far the models prefer their class: share minus given share

    def __post_init__(self) -> None:
        self.score = self.share - self.given_share

    def flagged(self, level: float) -> np.ndarray:
        flagged: np.ndarray = (self.label != self.given) & (self.share >= level - 1e-12)
        return flagged


def consensus(votes: Votes, labels: np.ndarray) -> Consensus:
    rows = np.arange(len(labels))
    top = votes.counts.argmax(axis=1)
    top_votes = votes.counts[rows, top].astype(np.int64)
    given_votes = votes.counts[rows, labels].astype(np.int64)
    label = np.where(given_votes == top_votes, labels, top)
    m = max(votes.models, 1)
    return Consensus(votes.models, np.asarray(labels, dtype=np.int64), label, top_votes / m, given_votes / m)


@dataclass
class ConfidentLearning:
    models: int
    skipped: list[str]
    flagged: np.ndarray  # bool per image
    quality: np.ndarray  # cleanlab's label quality score (self-confidence), low = likely wrong
    version: str


def confident_learning(mean: MeanProbs, labels: np.ndarray) -> ConfidentLearning:
    """cleanlab.filter.find_label_issues (prune by noise rate, its default) on the mean probabilities."""
    try:
        import cleanlab
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ImportError:
        raise UsageError(
            "--confident-learning needs the cleanlab package: pip install cleanlab (or pip install -r requirements.txt)"
        ) from None

    probs = mean.matrix()
    labels = np.asarray(labels, dtype=np.int64)
    with warnings.catch_warnings():  # one line per class with few images: nothing a user can act on
        warnings.simplefilter("ignore", UserWarning)
        flagged = find_label_issues(labels, probs, n_jobs=1)
        quality = get_label_quality_scores(labels, probs)
    return ConfidentLearning(mean.models, mean.skipped, np.asarray(flagged, dtype=bool), quality, cleanlab.__version__)


@dataclass
class Crowd:
    """Which rows the crowd was shown, and which of those it confirmed as label errors."""

    checked: np.ndarray
    confirmed: np.ndarray

    @classmethod
    def of(cls, names: list[str], data: clean_labels.LabelErrors) -> Crowd:
        numbers = clean_labels.val_numbers(names)
        return cls(
            np.isin(numbers, np.fromiter(data.checked, np.int64, len(data.checked))),
            np.isin(numbers, np.fromiter(data.errors, np.int64, len(data.errors))),
        )

    def confirm(self, flagged: np.ndarray) -> tuple[int, int]:
        """(flagged images the crowd checked, of those confirmed as errors)."""
        checked = flagged & self.checked
        return int(np.count_nonzero(checked)), int(np.count_nonzero(checked & self.confirmed))


@dataclass
class Report:
    """Everything --label-issues prints and writes, for one test set."""

    test_set: str
    consensus: Consensus
    names: list[str] | None
    cl: ConfidentLearning | None = None
    crowd: Crowd | None = None
    other_models: int = 0  # models of other test sets, not counted
    rows: np.ndarray = field(init=False)  # written rows, ranked

    def __post_init__(self) -> None:
        chosen = self.consensus.flagged(MIN_SHARE)
        if self.cl is not None:
            chosen |= self.cl.flagged
        rows = np.flatnonzero(chosen)
        quality = self.cl.quality[rows] if self.cl is not None else np.zeros(len(rows))
        self.rows = rows[np.lexsort((rows, quality, -self.consensus.score[rows]))]

    def levels(self) -> list[dict[str, Any]]:
        """Per agreement level (and confident learning): flagged, crowd-checked, confirmed."""
        found = []
        for level in LEVELS:
            found.append(self._confirmed(f"consensus >= {100 * level:.0f}%", self.consensus.flagged(level)))
        if self.cl is not None:
            found.append(self._confirmed("confident learning", self.cl.flagged))
        return found

    def _confirmed(self, method: str, flagged: np.ndarray) -> dict[str, Any]:
        entry = {"method": method, "flagged": int(np.count_nonzero(flagged)), "checked": None, "confirmed": None}
        if self.crowd is not None:
            entry["checked"], entry["confirmed"] = self.crowd.confirm(flagged)
        return entry

    def summary(self) -> list[str]:
        """The lines printed after the table."""
        c = self.consensus
        lines = [
            f"label issues: top-1 votes of the {c.models} models scored on the {len(c.given):,} images of "
            f"{self.test_set}"
            + (f" ({self.other_models} models of other test sets not counted)" if self.other_models else "")
        ]
        if self.cl is not None:
            skipped = f"; {len(self.cl.skipped)} with fewer than {MIN_K} columns left out" if self.cl.skipped else ""
            lines.append(
                f"label issues: confident learning (cleanlab {self.cl.version}) on the mean top-k "
                f"probabilities of {self.cl.models} models{skipped}"
            )
        for entry in self.levels():
            line = f"  {entry['method']:<22} {entry['flagged']:>7,} images flagged"
            if entry["checked"] is not None:
                share = f"{100 * entry['confirmed'] / entry['checked']:.1f}%" if entry["checked"] else "-"
                line += (
                    f"; the crowd checked {entry['checked']:,} of them and confirmed {entry['confirmed']:,} "
                    f"as label errors ({share})"
                )
            lines.append(line)
        if self.crowd is None:
            lines.append("  (no crowd-checked data: pass --clean-labels imagenet_mturk.json to compare)")
        return lines

    def csv_text(self) -> str:
        from ..base.classes import class_names

        names = class_names()
        out = io.StringIO()
        c = self.consensus
        out.write(
            f"# label issues of {self.test_set}: images where the top-1 consensus of {c.models} models "
            f"(share >= {100 * MIN_SHARE:.0f}%) contradicts the given label"
            f"{' or confident learning flags the label' if self.cl is not None else ''}; ranked by score "
            "(consensus share minus given-label share)\n"
        )
        out.write("# method,flagged,crowd_checked,crowd_confirmed\n")
        for entry in self.levels():
            checked = "" if entry["checked"] is None else entry["checked"]
            confirmed = "" if entry["confirmed"] is None else entry["confirmed"]
            out.write(f"# {entry['method']},{entry['flagged']},{checked},{confirmed}\n")
        out.write(f"# fed back with --clean-labels: {CAVEAT}\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS + (CL_COLUMNS if self.cl is not None else []))
        for rank, row in enumerate(self.rows.tolist(), 1):
            given, label = int(c.given[row]), int(c.label[row])
            line = [
                rank,
                row,
                self.names[row] if self.names else "",
                given,
                names[given],
                label,
                names[label],
                f"{c.share[row]:.4f}",
                f"{c.given_share[row]:.4f}",
                f"{c.score[row]:.4f}",
            ]
            if self.cl is not None:
                line += [int(self.cl.flagged[row]), f"{self.cl.quality[row]:.6f}"]
            writer.writerow(line)
        return out.getvalue()

    def write(self, path: Path) -> None:
        atomic.write_text(path, self.csv_text())


def report(
    test_set: str,
    labels: np.ndarray,
    names: list[str] | None,
    tallies: Tallies,
    crowd_data: clean_labels.LabelErrors | None,
    other_models: int,
) -> Report:
    """Both methods' findings, compared with the crowd's checks where given. The vote counts
    are let go once counted, so that confident learning has their 100 MB."""
    agreed = consensus(tallies.votes, labels)
    tallies.votes.counts = np.zeros((0, NUM_CLASSES), dtype=np.uint16)
    cl = None if tallies.mean is None else confident_learning(tallies.mean, labels)
    crowd = None if crowd_data is None or names is None else Crowd.of(names, crowd_data)
    return Report(test_set, agreed, names, cl, crowd, other_models)


def is_issues_csv(path: Path) -> bool:
    """--clean-labels takes the crowd's JSON, or a CSV written by --label-issues."""
    return Path(path).suffix.lower() == ".csv"


def read_csv(path: Path) -> clean_labels.LabelErrors:
    """A --label-issues CSV as corrected labels for --clean-labels: every row is a label
    error, relabelled to its consensus class where that differs from the given label."""
    try:
        lines = [line for line in Path(path).read_text().splitlines() if not line.startswith("#")]
        errors, given = {}, {}
        for entry in csv.DictReader(lines):
            if not entry.get("file"):
                raise ValueError(f"row {entry.get('rank')} has no file name")
            number = int(clean_labels.val_numbers([entry["file"]])[0])
            old, new = int(entry["given_id"]), int(entry["consensus_id"])
            if not (0 <= old < NUM_CLASSES and 0 <= new < NUM_CLASSES):
                raise ValueError(f"row {entry['rank']}: class index out of range 0..{NUM_CLASSES - 1}")
            errors[number], given[number] = (new if new != old else None), old
    except FileNotFoundError:
        raise UsageError(f"{path}: --clean-labels file not found") from None
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}; --clean-labels with a --label-issues CSV needs val file names") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a --label-issues CSV ({exc}); check --clean-labels") from None
    if not errors:
        raise UsageError(f"{path}: no rows; --clean-labels needs a --label-issues CSV with at least one image")
    return clean_labels.LabelErrors(errors, given, frozenset(errors))
