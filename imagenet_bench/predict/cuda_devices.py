"""How many GPUs CUDA can use, asked without importing a framework.

The Keras script's parent process never imports TensorFlow (each model runs in its
own process), yet -g/--gpus naming a GPU that does not exist must be refused before
any model runs, as the PyTorch script refuses --device cuda. The CUDA driver itself
answers: a short child process calls cuInit and cuDeviceGetCount of libcuda (the
driver library every CUDA framework loads) through ctypes. That is exact where the
alternatives guess: /proc/driver/nvidia/gpus exists only with NVIDIA's kernel module
and says nothing about a broken driver install; nvidia-smi may not be installed. It
costs one Python start-up (well under a second); no GPU memory is taken.

A child, not this process: the driver reads CUDA_VISIBLE_DEVICES once, at cuInit. The
caller's CUDA_VISIBLE_DEVICES (a Slurm allocation's GPUs) is kept: -g/--gpus index the GPUs
it lists, as the PyTorch script's cuda:N does, and each model process is given the entry
of that list (``visible_slots``), not the index, which would be the machine's GPU N.

IMAGENET_BENCH_ASSUME_GPUS=N skips the probe and assumes N GPUs: for tests of the
one-process-per-GPU machinery on a machine without GPUs (the models then run on the CPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_PROBE = r"""
import ctypes, json
for name in ("libcuda.so.1", "libcuda.so", "libcuda.dylib", "nvcuda.dll"):
    try:
        cuda = ctypes.CDLL(name)
        break
    except OSError:
        cuda = None
if cuda is None:
    print(json.dumps({"count": 0, "why": "no CUDA driver: libcuda not found"}))
else:
    status = cuda.cuInit(0)
    count = ctypes.c_int(0)
    if status == 0:
        status = cuda.cuDeviceGetCount(ctypes.byref(count))
    why = "" if status == 0 else ("the CUDA driver sees no device" if status == 100
                                  else f"the CUDA driver fails to start (CUresult {status})")
    print(json.dumps({"count": count.value, "why": why}))
"""


@dataclass(frozen=True)
class Devices:
    count: int
    why: str = ""  # why there are none, when count is 0

    def describe(self) -> str:
        if self.count == 0:
            return f"this machine has no GPU that CUDA can use ({self.why or 'none found'})"
        return f"this machine has {self.count} GPU(s), indices 0..{self.count - 1}"


def probe(timeout: float = 60.0) -> Devices:
    """The GPUs this process may use (the caller's CUDA_VISIBLE_DEVICES applies), as CUDA numbers them."""
    assumed = os.environ.get("IMAGENET_BENCH_ASSUME_GPUS")
    if assumed is not None and assumed.isdigit():
        return Devices(int(assumed), "IMAGENET_BENCH_ASSUME_GPUS")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE], env=dict(os.environ), capture_output=True, text=True, timeout=timeout
        )
        answer = json.loads(done.stdout)
        return Devices(int(answer["count"]), answer["why"])
    except subprocess.TimeoutExpired:
        return Devices(0, f"the CUDA driver probe did not answer within {timeout} s")
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return Devices(0, "the CUDA driver probe failed")


def visible_slots(slots: Sequence[str | None], environ: Mapping[str, str] | None = None) -> list[str | None]:
    """Each -g/--gpus index as the CUDA_VISIBLE_DEVICES value for its model process: the
    index-th entry of the caller's list when it has one (indices, or UUIDs), else the index."""
    from ..base.errors import UsageError

    caller = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if caller is None:
        return list(slots)
    listed = [entry.strip() for entry in caller.split(",") if entry.strip()]
    mapped: list[str | None] = []
    for slot in slots:
        if slot is not None and int(slot) >= len(listed):
            raise UsageError(
                f"-g/--gpus {slot}: CUDA_VISIBLE_DEVICES={caller!r} lists {len(listed)} GPU(s), indices "
                f"0..{len(listed) - 1}; give an index into that list"
            )
        mapped.append(None if slot is None else listed[int(slot)])
    return mapped
