"""Child processes that never outlive their run, and job folders that never outlive it either.

The Keras script runs each model in a child process that can work for hours and hold a
GPU. If the parent ends, whatever ends it, the child must end too:
- SIGKILL (or any death) of the parent: the child asks Linux for a parent-death signal
  (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) as its first act, then checks ``getppid()``
  once, for a parent that died before the request. Elsewhere a watcher thread in the
  child polls its parent and ends the child when the parent is gone. (Linux sends the
  signal when the parent *thread* that started the child ends: ``start`` is called from
  the thread that then waits for the child, so that thread outlives it.)
- SIGTERM or SIGINT to the parent: ``supervise`` turns them into an exception in the
  parent after killing every child still running, so the parent's cleanup runs (job
  folders removed) and threads waiting on children return at once.

torchrun's ranks likewise end with their launcher (``end_with_launcher``): torchrun starts
each rank in a session of its own, where a kill of the launcher or of its process group does
not reach it.

A parent killed with SIGKILL runs no cleanup, so its job folders stay. They are made
under the temporary folder with a known prefix and the owner's host and pid in their
name (``imagenet-bench-keras~HOST~PID~RANDOM``), and every later run removes those
whose owner no longer runs (``remove_orphan_folders``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..base import atomic
from ..base.errors import NoSpaceError, UsageError, full_disk

if TYPE_CHECKING:
    from types import FrameType

PARENT_ENV = "IMAGENET_BENCH_PARENT_PID"
POLL_S = 0.5
_PR_SET_PDEATHSIG = 1

_children: set[subprocess.Popen[bytes]] = set()
_children_lock = threading.RLock()  # re-entrant: the signal handler takes it in the thread that may hold it


# --- in the child -----------------------------------------------------------------------------


def end_with_parent() -> None:
    """Make this process end when the parent named by ``PARENT_ENV`` ends (no-op without it)."""
    parent = int(os.environ.get(PARENT_ENV, "0") or 0)
    if parent:
        _end_with(parent)


TORCHRUN_ENV = "TORCHELASTIC_RUN_ID"  # set by torchrun (torch.distributed.run) in every rank it starts


def end_with_launcher() -> None:
    """Under torchrun, make this rank end when its launcher ends, however it ends (no-op otherwise).

    torchrun starts each rank in a session of its own, so a kill of the launcher, or of its
    process group, does not reach the ranks: they computed on and held the output folder's
    lock. A rank's parent is torchrun's agent (the launcher itself, which starts the ranks from
    its main thread), so the parent-death signal ends it within milliseconds of the launcher.
    Only under torchrun: a rank started by hand (RANK, WORLD_SIZE) may have a parent that
    rightly ends first, such as a shell that started it in the background. Called first thing
    in the script; a launcher that died before this rank got here left it to init (pid 1)."""
    if not os.environ.get(TORCHRUN_ENV):
        return
    parent = os.getppid()
    if parent == 1:
        os._exit(1)
    _end_with(parent)


def _end_with(parent: int) -> None:
    if sys.platform.startswith("linux") and _request_parent_death_signal():
        if os.getppid() != parent:  # the parent died before the request
            os._exit(1)
        return
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch-parent").start()


def _request_parent_death_signal() -> bool:
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        status: int = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        return status == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    import time

    while os.getppid() == parent:
        time.sleep(POLL_S)
    os._exit(1)


# --- in the parent ----------------------------------------------------------------------------


def run(argv: Sequence[str], env: dict[str, str]) -> int:
    """Run ``argv`` as a child that ends with this process; its exit status. The child is
    killed if this call is interrupted (an exception, Ctrl-C, SIGTERM under ``supervise``)."""
    process = subprocess.Popen(list(argv), env={**env, PARENT_ENV: str(os.getpid())})
    with _children_lock:
        _children.add(process)
    try:
        return process.wait()
    finally:
        with _children_lock:
            _children.discard(process)
        if process.poll() is None:
            process.kill()
            process.wait()


def kill_children() -> None:
    with _children_lock:
        for process in _children:
            with contextlib.suppress(OSError):
                process.kill()


def _interrupted(signum: int, frame: FrameType | None) -> None:
    kill_children()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def supervise() -> Iterator[None]:
    """For a parent's whole run: remove the job folders dead runs left, and make SIGTERM and
    SIGINT kill every child at once and then end this process through its cleanup."""
    try:
        tempfile.gettempdir()
    except FileNotFoundError:
        raise UsageError(
            "no writable temporary folder for the model processes' job folders: set TMPDIR to a folder you can write"
        ) from None
    remove_orphan_folders()
    in_main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, _interrupted) for s in (signal.SIGTERM, signal.SIGINT)} if in_main else {}
    try:
        yield
    finally:
        kill_children()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


FOLDER_PREFIX = "imagenet-bench-keras"


def temporary_folder_full(exc: NoSpaceError, writing: str, model: str) -> NoSpaceError:
    """A full disk met in a model's job folder, as the user knows it: the temporary folder (TMPDIR
    where it is set and used), what was being written there, and that the model wrote nothing."""
    root = tempfile.gettempdir()
    named = os.environ.get("TMPDIR") and Path(os.environ["TMPDIR"]).absolute() == Path(root).absolute()
    return NoSpaceError(
        root,
        writing,
        exc.needed,
        exc.quota,
        "TMPDIR" if named else "the temporary folder",
        f"nothing of {model} was written to the output folder",
        exc.free,
    )


@contextlib.contextmanager
def job_folder(model: str = "") -> Iterator[Path]:
    """A new temporary folder for one child's job (for ``model``), removed when the block ends."""
    try:
        folder = tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}~{atomic.owner_tag()}~")
    except OSError as exc:
        if not full_disk(exc):
            raise
        full = NoSpaceError.of(exc, tempfile.gettempdir(), "a job folder")
        raise temporary_folder_full(full, f"a job folder for {model}", model) from None
    try:
        yield Path(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_orphan_folders() -> list[Path]:
    """Remove the job folders (under the temporary folder) whose owner no longer runs on this host."""
    removed = []
    root = Path(tempfile.gettempdir())
    for folder in root.glob(f"{FOLDER_PREFIX}~*"):
        if folder.is_dir() and atomic.orphaned(folder.name):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
