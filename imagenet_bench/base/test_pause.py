"""For tests only: a run waits at a named moment, so that a test can kill it exactly there."""

from __future__ import annotations

import os
import stat

VARIABLE = "IMAGENET_BENCH_TEST_PAUSE"
# first-batch: a prediction pass's first batch has gone through its models (torch_predict; keras_predict, in
# the Keras script's model process); saved: a model's outputs and manifest are written (runner, in the process
# that saves); cache-build: a pixel-cache entry is being written, its temporary file open (pixel_cache).
MOMENTS = ("first-batch", "saved", "cache-build")


def wait_at(moment: str) -> None:
    """With ``IMAGENET_BENCH_TEST_PAUSE=MOMENT:FIFO`` naming this moment and an existing FIFO: open it
    for reading (which blocks until a writer opens it) and read until every writer has closed it.
    Otherwise, and always when the variable is unset (one ``os.environ`` lookup), return at once: a
    missing path, a regular file or a folder is passed over, so the variable cannot hang a real run."""
    value = os.environ.get(VARIABLE)
    if not value:
        return
    name, sep, path = value.partition(":")
    if not sep or name != moment:
        return
    try:
        if not stat.S_ISFIFO(os.stat(path).st_mode):
            return
    except OSError:
        return
    with open(path, "rb") as fifo:  # blocks until the test opens the other end
        fifo.read()  # until the test closes it (or kills this process)
