"""Where a run over many models stands: models done of the total, the current model or group,
and an estimate of the time to the end that improves as models finish.

An overnight run is 128 torchvision, 1,321 timm or 80 Keras models of very different cost, so
the estimate weights each model by its cost where the registry knows it (GFLOPs per image;
torchvision's weights metadata has them) and counts a model of unknown cost as the mean of the
known ones (or 1 when none is known). The rate is the time spent per unit of cost on the
models run so far in this run: models skipped because their outputs exist cost nothing and
teach nothing. With models running side by side (the Keras script's --gpus), the time is the
wall-clock time since the first model started, so the rate is the run's, all slots together.
Over a folder of test sets (a sweep) each (model, test set) pair counts as one model here, so the
estimate is over the whole sweep. Both prediction scripts report through this one class, from any
thread; the lines go to stderr.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO


def duration(seconds: float) -> str:
    """12s, 4m05s, 3h07m."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Counts models started and finished; estimates the time left from the models run so far."""

    def __init__(
        self,
        models: Sequence[str],
        cost: Mapping[str, float | None] | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        parallel: int = 1,
    ) -> None:
        known = [float(c) for c in (cost or {}).values() if c]
        fallback = sum(known) / len(known) if known else 1.0
        self.cost = {m: float((cost or {}).get(m) or fallback) for m in models}
        self.weighted = bool(known)
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.started_at = clock()
        self.finished: set[str] = set()
        self.ran_cost = 0.0  # cost of the models run (not skipped) so far
        self.ran_seconds = 0.0
        self.parallel = parallel
        self._running: dict[tuple[str, ...], float] = {}  # models started and not finished -> start time
        self._first_start: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, jobs: Sequence[Any], skipped: Sequence[str], parallel: int = 1) -> Progress:
        """Progress over the runner's jobs (``key``: the model, on its test set in a sweep; ``cost``),
        those skipped already done."""
        progress = cls([job.key for job in jobs], {job.key: job.cost for job in jobs}, parallel=parallel)
        progress.skip(skipped)
        return progress

    @property
    def total(self) -> int:
        return len(self.cost)

    def remaining_cost(self) -> float:
        return sum(c for m, c in self.cost.items() if m not in self.finished)

    def eta_seconds(self) -> float | None:
        """Seconds to the end at the rate seen so far; None before any model has run."""
        if self.ran_cost <= 0:
            return None
        if self.parallel > 1 and self._first_start is not None:
            return self.remaining_cost() * (self.clock() - self._first_start) / self.ran_cost
        return self.remaining_cost() * self.ran_seconds / self.ran_cost

    def line(self, label: str) -> str:
        eta = self.eta_seconds()
        estimate = "estimating" if eta is None else f"about {duration(eta)} left"
        basis = " (weighted by GFLOPs)" if self.weighted and eta is not None else ""
        return f"[{len(self.finished)}/{self.total} done] {label}: {estimate}{basis}"

    def start(self, models: Sequence[str], label: str | None = None) -> None:
        """A model (or a group sharing one pass) begins; prints where the run stands."""
        with self._lock:
            now = self.clock()
            self._running[tuple(models)] = now
            if self._first_start is None:
                self._first_start = now
            print(self.line(label or ", ".join(models)), file=self.stream, flush=True)

    def finish(self, ran: bool = True, models: Sequence[str] | None = None) -> None:
        """A model or group ended (ran=False: skipped or failed, not counted in the rate);
        ``models`` names it when several run at once, else it is the one running."""
        with self._lock:
            key = tuple(models) if models is not None else next(iter(self._running), None)
            if key is None:
                return
            began = self._running.pop(key, None)
            if began is None:
                return
            if ran:
                self.ran_seconds += self.clock() - began
                self.ran_cost += sum(self.cost.get(m, 0.0) for m in key)
            self.finished.update(m for m in key if m in self.cost)

    def skip(self, models: Sequence[str]) -> None:
        """Models whose outputs exist: done, without time."""
        self.finished.update(m for m in models if m in self.cost)

    def total_time(self) -> str:
        return duration(self.clock() - self.started_at)

    def summary(self) -> str:
        return f"{len(self.finished)} of {self.total} models in {self.total_time()}"
