"""One run at a time in an output folder, or disjoint --model-shard jobs side by side.

Why: two runs writing the same model's files into one folder both proceed, the last
writer wins, and both report success. So a prediction script locks its output folder
before anything runs and holds the lock to its end; a second run fails at once with one
line naming the folder and the holder's process id.

How:
- The lock is ``flock`` on a file in the folder: the kernel releases it when the
  process ends, however it ends (SIGKILL, out of memory), so a killed run never blocks
  the next, and there is no stale lock to break by hand.
- A run over every model holds ``.imagenet-bench.lock`` exclusively and writes its
  "pid host" into it. A ``--model-shard I/N`` job holds that file shared, plus
  ``.imagenet-bench.shard-I-of-N.lock`` exclusively (with its "pid host"). So disjoint
  shards (a Slurm array) run side by side; a second job for the same shard, or a whole
  run beside shards, is refused.
- One run is one lock holder: under torchrun only rank 0 (which alone writes) locks; the
  Keras script's model processes write only into their own job folders, and the parent,
  which holds the lock, writes the outputs.
- Shards on several machines over a shared file system: flock may not reach across
  machines there (NFS maps it onto byte-range locks, some cluster file systems keep it
  per node). Correctness does not depend on it: shards write disjoint model files, each
  under a temporary name renamed into place, and the dataset files are claimed with an
  exclusive hard link (``output_folder.claim``; atomic on NFS), so exactly one job
  creates them and every other one checks it made them for the same dataset. What an
  unreliable flock loses is only the refusal of a mistaken second job on another machine.
- Temporary files are named for their host and pid (``atomic``), so a run removes only
  what its own host's dead processes left, never a file another machine is writing.
- On the way out a run removes its lock files (unless other shard jobs still hold the
  shared one), and the folder too if it created it and wrote nothing into it, so bad
  input found later leaves nothing behind. A killed run leaves its lock file, which locks
  nothing: the next run takes it over.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from ..base import atomic, errors
from ..base.errors import UsageError

MAIN_LOCK = ".imagenet-bench.lock"
SHARD_LOCK = ".imagenet-bench.shard-{index}-of-{count}.lock"


def _holder_record() -> bytes:
    """What a holder writes into its lock file: ``pid host``."""
    return f"{os.getpid()} {atomic.host()}\n".encode()


def _holder(path: Path) -> str:
    """``pid N`` (``on HOST`` when another machine's) as the lock file records it."""
    try:
        fd = atomic.open_regular(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as handle:
            pid, _, where = handle.read(256).decode(errors="replace").strip().partition(" ")
    except (OSError, UsageError):
        pid, where = "", ""
    if not pid.isdigit():
        return "pid unknown"
    return f"pid {pid}" + ("" if where in ("", atomic.host()) else f" on {where}")


def _shard_holders(folder: Path) -> list[str]:
    """The shard jobs that hold the folder now, as their lock files record them (for the message only)."""
    found = []
    for path in sorted(folder.glob(SHARD_LOCK.format(index="*", count="*"))):
        holder = _holder(path)
        pid = holder.split()[1]
        if pid.isdigit() and (" on " in holder or atomic.pid_running(int(pid))):
            found.append(f"{path.name.split('.')[2].replace('shard-', '').replace('-of-', '/')} ({holder})")
    return found


def _other_count_holder(folder: Path, count: int) -> str | None:
    """``I/N`` of a live --model-shard job into ``folder`` whose N is not ``count`` (two arrays
    of other sizes side by side would compute the same models), else None."""
    for path in sorted(folder.glob(SHARD_LOCK.format(index="*", count="*"))):
        index, _, theirs = path.name.split(".")[2].removeprefix("shard-").partition("-of-")
        if theirs == str(count) or not (index.isdigit() and theirs.isdigit()):
            continue
        try:
            fd = atomic.open_regular(path, os.O_RDONLY)
        except (OSError, UsageError):
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # taken: nobody holds it exclusively
        except BlockingIOError:
            return f"{index}/{theirs}"
        finally:
            os.close(fd)
    return None


class _LockFile:
    """An open lock file: flock'ed, or refused with the reason."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def take(self, mode: int) -> bool:
        """flock without waiting; re-opens if the file was replaced meanwhile (a holder removing it)."""
        while True:
            self.fd = atomic.open_regular(self.path, os.O_RDWR | os.O_CREAT)  # a planted link or FIFO: refused
            try:
                fcntl.flock(self.fd, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                self.release()
                return False
            try:
                same = os.stat(self.path).st_ino == os.fstat(self.fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return True
            self.release()

    def record_holder(self) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, _holder_record(), 0)

    def remove_if_alone(self) -> None:
        """Unlink the file if no other process holds it (we hold it exclusively, then)."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@contextlib.contextmanager
def _full_disk_named(folder: Path, writing: str, needed: int | None = None) -> Iterator[None]:
    """A full disk while the lock is taken: one line naming -o/--output-dir and the lock file."""
    try:
        yield
    except OSError as exc:
        if not errors.full_disk(exc):
            raise
        raise errors.NoSpaceError.of(exc, folder, writing, needed, "-o/--output-dir").named(
            None, "nothing was written"
        ) from None


@contextlib.contextmanager
def hold(folder: str | Path, part: tuple[int, int] | None = None) -> Iterator[None]:
    """Lock ``folder`` (created if missing) for this run, or for part ``(I, N)`` of a
    --model-shard run, until the block ends; UsageError if another run holds it."""
    folder = Path(folder)
    # what this call creates, deepest first (a sweep's OUT/imagenet-c/<corruption>/<severity>)
    created = [p for p in (folder, *folder.absolute().parents) if not p.exists()]
    main = _LockFile(folder / MAIN_LOCK)
    shard = _LockFile(folder / SHARD_LOCK.format(index=part[0], count=part[1])) if part else None
    held: list[_LockFile] = []
    try:
        with _full_disk_named(folder, f"the run's lock file {main.path.name}"):
            folder.mkdir(parents=True, exist_ok=True)
            taken = main.take(fcntl.LOCK_SH if shard else fcntl.LOCK_EX)
        if not taken:
            holders = _shard_holders(folder) if shard is None else []
            if holders:
                raise UsageError(
                    f"-o/--output-dir {folder}: --model-shard jobs are writing into this folder "
                    f"({', '.join(holders)}); wait for them to end, or pick another "
                    "-o/--output-dir"
                )
            raise UsageError(
                f"-o/--output-dir {folder}: another run ({_holder(folder / MAIN_LOCK)}) is writing into "
                "this folder; wait for it to end, or pick another -o/--output-dir"
            )
        held.append(main)
        if shard is not None and part is not None:  # there is a shard lock exactly when part is given
            with _full_disk_named(folder, f"the run's lock file {shard.path.name}"):
                taken = shard.take(fcntl.LOCK_EX)
            if not taken:
                raise UsageError(
                    f"-o/--output-dir {folder}: another job ({_holder(shard.path)}) is running "
                    f"--model-shard {part[0]}/{part[1]} into this folder; wait for it to end, or pick "
                    "another -o/--output-dir"
                )
            held.append(shard)
            other = _other_count_holder(folder, part[1])
            if other is not None:
                raise UsageError(
                    f"-o/--output-dir {folder}: --model-shard {other} is running into this folder; every job "
                    f"of an array gives the same count (here {other.split('/')[1]}, not {part[1]}), or use "
                    "another -o/--output-dir"
                )
        with _full_disk_named(folder, f"the run's lock file {held[-1].path.name}", len(_holder_record())):
            held[-1].record_holder()
        atomic.remove_orphans(folder)
        yield
    finally:
        for lock in reversed(held):
            lock.remove_if_alone()
        for made in created:
            with contextlib.suppress(OSError):
                made.rmdir()  # only if empty: bad input found after the lock leaves nothing
        for lock in reversed(held):
            lock.release()
