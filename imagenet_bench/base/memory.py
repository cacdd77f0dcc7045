"""The C allocator's policy for long runs: memory flat in the number of images, and the same
from one run to the next (issue 27; docs/reliability.md, "Memory").

glibc raises its mmap threshold each time a large block is freed, up to 32 MiB: after the first
batch, every batch-sized buffer (decoded pixels, the float input, activations) comes from the
heap, where the small blocks that live on between batches pin it, so the heap grows with the
images and by an amount that depends on the threads' timing. A fixed threshold keeps such
buffers in their own mappings, returned to the system when freed. Elsewhere than glibc these
calls do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from typing import Any

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
# Blocks from this size up get their own mapping; below it they come from the heap. Fixed, it
# turns off glibc's dynamic raise: a decoded val image or a batch is above it, the many small
# blocks of the libraries below it.
MMAP_THRESHOLD = 256 * 1024


@functools.cache
def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, TypeError):
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None  # glibc has both


def keep_large_blocks_out_of_the_heap() -> bool:
    """Fix the mmap threshold (see the module's docstring); True where glibc took it. Call it
    early: a heap already grown stays as it is."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1)


def give_back_freed_memory() -> None:
    """Collect, then return the freed parts of every heap to the system: between passes, so that
    a run's level before a pass is its level after it."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
