"""Splitting one model's pass over the images across torchrun processes.

Under ``torchrun --nproc_per_node=N`` (WORLD_SIZE > 1) each rank takes one
contiguous block of rows (numpy.array_split: every image exactly once, no
padding, no duplicates), runs the models on it, and rank 0 gathers the top-k
of all ranks in row order and alone writes. gloo on the CPU, nccl on GPUs
(cuda:LOCAL_RANK); several machines join through torchrun's rendezvous.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from ..datasets.layout import Dataset
from . import runner

T = TypeVar("T")

# How long a rank waits at a collective. Rank 0 works alone while the others wait: weights
# downloads (local_leaders_first), the pixel cache fill of a pass (hours for 50,000 images on a
# slow disk); NCCL's default of 10 minutes would end the job. A rank that dies ends the job
# through torchrun, not through this timeout.
TIMEOUT = timedelta(hours=6)


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in the torchrun process group: its rank, their number, its rank on
    this machine, and the backend (gloo or nccl)."""

    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: str) -> ProcessGroup | None:
    """Join the process group that torchrun describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        # device_id binds the group to this rank's GPU now (no guess at the first collective)
        dist.init_process_group(backend=backend, timeout=TIMEOUT, device_id=torch.device("cuda", local_rank))
    else:
        dist.init_process_group(backend=backend, timeout=TIMEOUT)
    return ProcessGroup(dist.get_rank(), dist.get_world_size(), local_rank, backend)


def rank_device(group: ProcessGroup | None, device: str) -> str:
    """Each rank drives its own GPU."""
    return f"cuda:{group.local_rank}" if group is not None and device.startswith("cuda") else device


def block(n: int, group: ProcessGroup) -> tuple[int, int]:
    """[start, stop) of this rank's rows."""
    bounds = np.cumsum([0] + [len(part) for part in np.array_split(np.arange(n), group.world)])
    return int(bounds[group.rank]), int(bounds[group.rank + 1])


def rows(dataset: Dataset, start: int, stop: int) -> Dataset:
    return replace(
        dataset, paths=dataset.paths[start:stop], labels=dataset.labels[start:stop], sizes=dataset.sizes[start:stop]
    )


def local_leaders_first(group: ProcessGroup | None, fn: Callable[[], T]) -> T:
    """``fn()`` on each machine's first process (LOCAL_RANK 0), then on the others.

    Building a model downloads its weights into the machine's torch.hub (or Hugging
    Face) cache: the first process fills it and the others read it, instead of every
    process fetching the same file at once and racing on the partial download. Every
    rank reaches the barrier once, whether ``fn`` raises or not.
    """
    if group is None:
        return fn()
    if group.local_rank == 0:
        try:
            return fn()
        finally:
            dist.barrier()
    dist.barrier()
    return fn()


def broadcast(obj: Any, group: ProcessGroup | None) -> Any:
    """Rank 0's value of ``obj`` on every rank."""
    if group is None:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any, group: ProcessGroup) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0, in rank order (None on other ranks)."""
    boxes = [None] * group.world if group.is_main else None
    dist.gather_object(obj, boxes, dst=0)
    return boxes


def finish(group: ProcessGroup | None) -> None:
    if group is not None:
        dist.destroy_process_group()


def portable(exc: Exception) -> Exception:
    """An exception that survives pickling between ranks: our own errors as they are (they
    pickle by their fields, so an ImageError stays one, naming its file), any other as a
    RuntimeError with its one-line text (a library's exception may not unpickle)."""
    from ..base.errors import UsageError

    if isinstance(exc, UsageError):
        return exc
    return RuntimeError(f"{type(exc).__name__}: {' '.join(str(exc).split())}")


def merge(parts: list[dict[str, Any] | Exception], n: int) -> dict[str, Any] | Exception:
    """One model's outputs from every rank, concatenated in row order."""
    outputs: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, Exception):
            return part
        outputs.append(part)
    wall = max(p["throughput"]["wall_time_s"] for p in outputs)
    model_time = max(p["throughput"]["model_time_s"] for p in outputs)
    rank_time = sum(p["throughput"]["model_time_s"] for p in outputs)  # GPU seconds: the rate is per GPU
    batch_size = min(p["batch_size"] for p in outputs)  # a rank may have lowered it (out of memory)
    warm_up = runner.warm_up(  # the ranks' warm-ups as one GPU's: over their GPU-seconds
        n,
        rank_time,
        sum(p["throughput"].get("first_batch_s") or 0.0 for p in outputs),
        sum(p["throughput"].get("first_batch_images") or 0 for p in outputs),
    )
    return {
        "preds": np.concatenate([p["preds"] for p in outputs]),
        "probs": np.concatenate([p["probs"] for p in outputs]),
        "all_probs": None if outputs[0]["all_probs"] is None else np.concatenate([p["all_probs"] for p in outputs]),
        "batch_size": batch_size,
        "nonfinite_rows": sum(p["nonfinite_rows"] for p in outputs),
        "throughput": {
            "wall_time_s": wall,
            "images_per_s": round(n / wall, 2) if wall else None,
            "model_time_s": model_time,
            "model_images_per_s": round(n / rank_time, 2) if rank_time else None,
            "models_in_pass": outputs[0]["throughput"]["models_in_pass"],
            "ranks": len(outputs),
            "batch_size": batch_size,
            **warm_up,
            "per_rank": [p["throughput"] for p in outputs],
        },
        "pass": {
            **outputs[0]["pass"],
            "images_decoded": sum(p["pass"]["images_decoded"] for p in outputs),
            "ranks": len(outputs),
        },
    }
