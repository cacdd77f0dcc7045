"""Atomic file writes: a temporary file in the same folder, then a rename; and the
cleanup of the temporary files that killed runs leave.

A kill or Ctrl-C at any point leaves either the old file or the new one, never a
half-written one, because os.replace within one file system is atomic.

A process killed with SIGKILL runs no cleanup, so its temporary file stays (a pixel
cache build leaves gigabytes). Every temporary file is therefore named for its owner,
``.{name}~{host}~{pid}~{random}.tmp``, and flock'ed while it is being written.
``remove_orphans`` deletes one only when it is this host's, its pid is not running and
its lock can be taken: a file another live process writes is never touched, and a file
written from another machine on a shared file system (where flock may not reach) is
left to that machine's runs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import NoSpaceError, UsageError, full_disk, shown

_UMASK = os.umask(0)
os.umask(_UMASK)
TEMP_SUFFIX = ".tmp"


def open_regular(path: str | os.PathLike[str], flags: int, mode: int = 0o666) -> int:
    """``os.open`` that refuses what another user may have planted where we write: a symbolic
    link (O_NOFOLLOW: a link to someone's file would be truncated through), a FIFO (O_NONBLOCK:
    it would hang the run) or a device. One UsageError naming the path."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{shown(path)}: is a symbolic link this project did not make; remove it") from None
        if exc.errno == errno.ENXIO:  # a FIFO opened for writing with no reader
            raise UsageError(f"{shown(path)}: is a FIFO, not a file; remove it") from None
        raise
    kind = os.fstat(fd).st_mode
    if not stat.S_ISREG(kind):
        os.close(fd)
        what = (
            "a FIFO"
            if stat.S_ISFIFO(kind)
            else "a device"
            if stat.S_ISCHR(kind) or stat.S_ISBLK(kind)
            else "not a file"
        )
        raise UsageError(f"{shown(path)}: is {what}, not a regular file; remove it")
    return fd


def regular_opener(path: str, flags: int) -> int:
    """``open(path, mode, opener=regular_opener)``: ``open_regular`` for the built-in open."""
    return open_regular(path, flags)


def host() -> str:
    """This machine's name, safe inside a file name (uname's, which gethostname returns,
    without importing socket: 4 to 8 ms of every table run)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in os.uname().nodename) or "host"


def owner_tag() -> str:
    """``{host}~{pid}``: who made a temporary file or folder (read back by ``orphaned``)."""
    return f"{host()}~{os.getpid()}"


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def orphaned(name: str) -> bool:
    """A name made with ``owner_tag`` whose owner is this host's and no longer runs."""
    parts = name.split("~")
    if len(parts) < 4 or parts[-3] != host() or not parts[-2].isdigit():
        return False
    return not pid_running(int(parts[-2]))


@contextlib.contextmanager
def temp_beside(path: str | os.PathLike[str], suffix: str = TEMP_SUFFIX) -> Iterator[Path]:
    """A new, empty temporary file beside ``path``, named for its owner and flock'ed
    until the block ends; deleted if the block raises (the caller renames it on success)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}~{owner_tag()}~", suffix=suffix, dir=path.parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are meant to be shared
        yield Path(tmp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)


def remove_orphans(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files in ``folder`` that this host's dead processes left; return them."""
    removed: list[Path] = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(folder):
            if (
                entry.name.startswith(".")
                and entry.name.endswith(TEMP_SUFFIX)
                and orphaned(entry.name)
                and _unlink_unlocked(Path(entry.path))
            ):
                removed.append(Path(entry.path))
    return removed


def _unlink_unlocked(path: Path) -> bool:
    """Unlink ``path`` if no process holds its lock (a process that inherited the descriptor may)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    try:
        path.unlink()
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


@contextlib.contextmanager
def full_disk_reported(path: str | os.PathLike[str], needed: int | None = None) -> Iterator[None]:
    """A full file system (ENOSPC, EDQUOT) met in the block, which writes ``path``, as one
    NoSpaceError naming ``path``'s folder, its name and the ``needed`` bytes where known,
    instead of an OSError's traceback."""
    try:
        yield
    except OSError as exc:
        if not full_disk(exc):
            raise
        path = Path(path)
        raise NoSpaceError.of(exc, path.parent, path.name, needed) from None


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "wb", durable: bool = True, size: int | None = None
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it onto ``path`` on success.

    ``durable`` fsyncs the file before the rename, so a power cut cannot leave a torn
    file under ``path``; a cache whose reader rejects a torn file may skip it (an fsync
    took 2 to 10 ms on this project's machine). A full disk is a NoSpaceError naming the
    file and its ``size`` where the caller knows it; the temporary file is removed and
    ``path`` is left as it was."""
    path = Path(path)
    with full_disk_reported(path, size), temp_beside(path) as tmp:
        with open(tmp, mode, opener=regular_opener) as handle:  # still the file mkstemp made
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb", size=len(data)) as handle:
        handle.write(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def create_json(path: str | os.PathLike[str], obj: Any) -> bool:
    """Write ``path`` only if it does not exist, atomically and exclusively: a hard link
    of the complete temporary file (atomic on NFS too). False if another process made it first."""
    path = Path(path)
    data = (json.dumps(obj, indent=2) + "\n").encode("utf-8")
    with full_disk_reported(path, len(data)), temp_beside(path) as tmp:
        with open(tmp, "wb", opener=regular_opener) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # complete on disk before the link publishes it
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:  # e.g. a file system without hard links
            raise UsageError(
                f"{path}: cannot be created exclusively ({exc.strerror}); "
                "use an output folder on a local or NFS file system"
            ) from None
        finally:
            tmp.unlink()
    return True


def npy_bytes(array: np.ndarray) -> int:
    """The size of ``array`` saved as a .npy file (the header numpy writes, then the data)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    return header.tell() + array.nbytes


class _Writes:
    """A file as numpy sees any object with a ``write``: ``np.save`` then writes through
    ``write``, whose full disk is an OSError with its errno (ENOSPC), not through
    ``ndarray.tofile``, whose is an OSError without one ("40000 requested and 13280 written").
    The bytes are the same."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.write = handle.write


def write_npy(handle: IO[bytes], array: np.ndarray) -> None:
    """``np.save(handle, array)``, a full disk an OSError with its errno."""
    np.save(_Writes(handle), array, allow_pickle=False)


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    with atomic_open(path, "wb", size=npy_bytes(array)) as handle:
        write_npy(handle, array)


def validate_folder(folder: str | os.PathLike[str], flag: str) -> None:
    """Refuse, before anything runs, a folder given by ``flag`` that cannot be written:
    a file, a read-only folder, or a path that cannot be created. Writes nothing that stays."""
    folder = Path(folder)
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists() or p.is_symlink())
    if not existing.is_dir():
        what = "is a file" if existing == folder else f"cannot be created: {existing} is not a folder"
        raise UsageError(f"{flag} {folder}: {what}; give a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        reason = "read-only" if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else exc.strerror
        where = "" if existing == folder else f" (in {existing}, which cannot be written)"
        raise UsageError(f"{flag} {folder}: {reason}{where}; give a folder you can write") from None
