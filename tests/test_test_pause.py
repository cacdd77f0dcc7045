"""imagenet_bench.base.test_pause, the pause point the fault matrix kills runs at: inert unless the
variable names the moment and an existing FIFO (so it cannot hang a user's run), and otherwise a
wait that the other end of the FIFO starts and ends."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest

from imagenet_bench.base import test_pause


def _returns_at_once(moment: str) -> bool:
    """``wait_at(moment)`` in a thread ends within 10 s (it would block for ever on a FIFO)."""
    waiter = threading.Thread(target=test_pause.wait_at, args=(moment,), daemon=True)
    waiter.start()
    waiter.join(timeout=10)
    return not waiter.is_alive()


def test_inert_unless_the_variable_names_this_moment_and_a_fifo(tmp_path, monkeypatch):
    fifo, regular = tmp_path / "fifo", tmp_path / "file"
    os.mkfifo(fifo)
    regular.write_text("")
    monkeypatch.delenv(test_pause.VARIABLE, raising=False)
    assert _returns_at_once("saved")
    for value in (
        "",
        str(fifo),  # no moment
        f"first-batch:{fifo}",  # another moment
        f"saved:{tmp_path / 'missing'}",
        f"saved:{regular}",
        f"saved:{tmp_path}",  # a folder
    ):
        monkeypatch.setenv(test_pause.VARIABLE, value)
        assert _returns_at_once("saved"), value
    assert fifo.exists()  # nothing was removed, nothing was written


def _open_writer(fifo: Path, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            assert exc.errno == errno.ENXIO and time.monotonic() < deadline, exc
            time.sleep(0.01)


def test_a_fifo_for_this_moment_holds_the_run_until_its_other_end_closes(tmp_path, monkeypatch):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    monkeypatch.setenv(test_pause.VARIABLE, f"cache-build:{fifo}")
    with pytest.raises(OSError) as nobody:  # no reader yet: the test can tell "not there yet"
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    assert nobody.value.errno == errno.ENXIO
    waiter = threading.Thread(target=test_pause.wait_at, args=("cache-build",), daemon=True)
    waiter.start()
    held = _open_writer(fifo)  # succeeds once the waiter has opened its end: it is at the moment
    try:
        waiter.join(timeout=0.5)
        assert waiter.is_alive()  # it reads until every writer has closed: it cannot have gone on
    finally:
        os.close(held)
    waiter.join(timeout=10)
    assert not waiter.is_alive()
