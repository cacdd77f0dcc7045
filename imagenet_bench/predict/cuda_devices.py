"""How many GPUs CUDA can use, asked without importing a framework.

The Keras script's parent process never imports TensorFlow (each model runs in its
own process), yet -g/--gpus naming a GPU that does not exist must be refused before
any model runs, as the PyTorch script refuses --device cuda. The CUDA driver itself
answers: a short child process calls cuInit and cuDeviceGetCount of libcuda (the
driver library every CUDA framework loads) through ctypes. That is exact where the
alternatives guess: /proc/driver/nvidia/gpus exists only with NVIDIA's kernel module
and says nothing about a broken driver install; nvidia-smi may not be installed. It
costs one Python start-up (well under a second); no GPU memory is taken.

A child, not this process: the model processes get CUDA_VISIBLE_DEVICES=N naming a GPU
of the whole machine, so the count is taken with CUDA_VISIBLE_DEVICES unset, and the
driver reads that variable once, at cuInit.

IMAGENET_BENCH_ASSUME_GPUS=N skips the probe and assumes N GPUs: for tests of the
one-process-per-GPU machinery on a machine without GPUs (the models then run on the CPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    """The GPUs of the whole machine, as CUDA numbers them."""
    assumed = os.environ.get("IMAGENET_BENCH_ASSUME_GPUS")
    if assumed is not None and assumed.isdigit():
        return Devices(int(assumed), "IMAGENET_BENCH_ASSUME_GPUS")
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=timeout)
        answer = json.loads(done.stdout)
        return Devices(int(answer["count"]), answer["why"])
    except subprocess.TimeoutExpired:
        return Devices(0, f"the CUDA driver probe did not answer within {timeout} s")
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return Devices(0, "the CUDA driver probe failed")
