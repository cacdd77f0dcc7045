"""User-facing errors and the exit statuses the scripts promise.

Bad input is reported as one line naming the file or flag and what to do, with
exit status 2. A run where some models failed but others succeeded exits 1.

Errors travel as objects, never as text parsed back: across DataLoader workers
and torchrun ranks by pickling, and out of the Keras model process as a JSON
record (``to_record`` / ``from_record``), so that each script prints the same
line for the same bad file.

The libraries' own warnings and start-up messages stay off the terminal unless
the user asks for them (-v/--verbose): deprecations inside torch or TensorFlow are
nothing a user can act on. The ones that can matter (a weights file with missing or
unexpected keys) are always shown.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TextIO

EXIT_OK = 0
EXIT_PARTIAL_FAILURE = 1
EXIT_USAGE = 2


def shown(path: str | os.PathLike[str]) -> str:
    """A path as one printable line, losslessly: bytes that are not UTF-8 as ``\\xNN``,
    control characters (a newline in a file name) as escapes."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def one_line(text: str) -> str:
    """A message as one printable line: control characters that a file name or id brought in (a
    newline forging a line, an escape sequence reaching the terminal) escaped as ``shown`` does."""
    return text if text.isprintable() else shown(text)


class UsageError(Exception):
    """Bad input (a file, folder or flag): printed as one line, exit status 2."""


class StopsTheRun(UsageError):
    """Bad input that every model would meet: it ends the run (reported once, with no model's
    name), instead of failing each model in turn. The models not yet started are not run."""


class ImageError(StopsTheRun):
    """An image that cannot be decoded. Every model would meet the same file, so it ends
    the run (reported once, with no model's name: the file is at fault) instead of
    failing each model."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(
            f"{shown(path)}: cannot decode image ({reason}); replace the file or remove it from the val set"
        )

    # pickled by its fields (DataLoader workers, torchrun ranks)
    def __reduce__(self) -> tuple[type[ImageError], tuple[str, str]]:
        return type(self), (self.path, self.reason)


FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


def full_disk(exc: BaseException) -> bool:
    """An OSError that says the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in FULL_DISK


def free_bytes(folder: str | os.PathLike[str]) -> int | None:
    """The bytes an unprivileged user may still write in ``folder``'s file system (statvfs; it
    knows nothing of quotas), None where it cannot tell."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


# How a message names the temporary folder (where the Keras script's model processes write):
# TMPDIR when it is set and used, else what Python chose.
TEMPORARY_FOLDER_FLAGS = ("TMPDIR", "the temporary folder")


class NoSpaceError(StopsTheRun):
    """A folder whose file system is full (ENOSPC, or EDQUOT: the quota), met while writing
    ``writing`` (a file's name, or what it is) of ``needed`` bytes where known. ``flag`` names
    the folder as the user gave it (``-o/--output-dir``, ``--cache-dir``, ``TMPDIR``) and
    ``state`` says what the failure left (``mobilenet_v2 is left incomplete ...``), added by
    the caller that knows them (``named``). Every later model would meet the same full disk,
    so it ends the run."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        writing: str,
        needed: int | None = None,
        quota: bool = False,
        flag: str | None = None,
        state: str = "",
        free: int | None = None,
    ) -> None:
        self.folder, self.writing, self.needed, self.quota = str(folder), writing, needed, quota
        self.flag, self.state, self.free = flag, state, free
        where = f"{flag} {shown(folder)}" if flag else shown(folder)
        reason = "disk quota exceeded" if quota else "no space left on its device"
        sizes = ([] if needed is None else [f"{needed:,} bytes"]) + ([] if free is None else [f"{free:,} free"])
        size = f" ({', '.join(sizes)})" if sizes else ""
        elsewhere = (
            "set TMPDIR to another folder"
            if flag in TEMPORARY_FOLDER_FLAGS
            else f"give another {flag}"
            if flag
            else "write elsewhere"
        )
        super().__init__(
            f"{where}: {reason} while writing {writing}{size}{'; ' + state if state else ''}; "
            f"free space there or {elsewhere}, then run the same command again"
        )

    @classmethod
    def of(
        cls,
        exc: OSError,
        folder: str | os.PathLike[str],
        writing: str,
        needed: int | None = None,
        flag: str | None = None,
    ) -> NoSpaceError:
        """The error for ``exc`` (ENOSPC or EDQUOT), with the space now free in ``folder``
        (after the caller removed what it had begun: what another write could still use)."""
        quota = exc.errno == errno.EDQUOT
        return cls(folder, writing, needed, quota, flag, "", None if quota else free_bytes(folder))

    def named(self, flag: str | None, state: str = "") -> NoSpaceError:
        """The same error, naming the folder by its flag and saying what the failure left."""
        return NoSpaceError(
            self.folder, self.writing, self.needed, self.quota, flag or self.flag, state or self.state, self.free
        )

    def _fields(self) -> tuple[str, str, int | None, bool, str | None, str, int | None]:
        return self.folder, self.writing, self.needed, self.quota, self.flag, self.state, self.free

    # pickled by its fields (torchrun ranks)
    def __reduce__(self) -> tuple[type[NoSpaceError], tuple[str, str, int | None, bool, str | None, str, int | None]]:
        return type(self), self._fields()


# How an error is recorded as JSON (the Keras model process's error.json), most specific first.
_RECORD_KINDS: tuple[tuple[str, type[Exception]], ...] = (
    ("image", ImageError),
    ("no space", NoSpaceError),
    ("stops the run", StopsTheRun),
    ("usage", UsageError),
)
_NO_SPACE_FIELDS = ("folder", "writing", "needed", "quota", "flag", "state", "free")


def to_record(exc: BaseException) -> dict[str, Any]:
    """A JSON-able record of an error: its kind and what rebuilds it."""
    kind = next((kind for kind, cls in _RECORD_KINDS if isinstance(exc, cls)), "error")
    if isinstance(exc, ImageError):  # kind "image"
        return {"kind": kind, "path": exc.path, "reason": exc.reason}
    if isinstance(exc, NoSpaceError):
        return {"kind": kind, **{field: getattr(exc, field) for field in _NO_SPACE_FIELDS}, "message": str(exc)}
    return {"kind": kind, "message": " ".join(str(exc).split()) or type(exc).__name__}


def from_record(record: dict[str, Any], other: Callable[[str], Exception] = RuntimeError) -> Exception:
    """The error ``to_record`` described (``other`` builds one that is not bad input)."""
    if record.get("kind") == "image":
        return ImageError(record["path"], record["reason"])
    if record.get("kind") == "no space":
        return NoSpaceError(
            record["folder"],
            record["writing"],
            record.get("needed"),
            bool(record.get("quota")),
            record.get("flag"),
            record.get("state") or "",
            record.get("free"),
        )
    if record.get("kind") == "stops the run":
        return StopsTheRun(record["message"])
    if record.get("kind") == "usage":
        return UsageError(record["message"])
    return other(record["message"])


def die(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 2."""
    print(f"error: {one_line(message)}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


_PROJECT = str(Path(__file__).resolve().parents[2])  # the repository: the package, scripts, tests
# Library warnings shown even without -v: a weights file that only partly fits.
_MATTERS = re.compile(r"missing key|unexpected key|size mismatch|not be loaded|skipping loading", re.IGNORECASE)
_verbose = False


def show_library_messages(verbose: bool) -> None:
    """-v/--verbose: the libraries' warnings in their usual form (and, in the Keras model
    process, TensorFlow's C++ log); without it only ours and those that matter."""
    global _verbose
    _verbose = verbose


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Our own warnings as one ``warning:`` line; the libraries' only with -v or when they matter."""
    if str(filename).startswith(_PROJECT):
        print(f"warning: {one_line(str(message))}", file=sys.stderr)
    elif _verbose or _MATTERS.search(str(message)):
        (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))


def install_warning_display() -> None:
    warnings.showwarning = _show_warning


def run_main(main: Callable[[], int]) -> NoReturn:
    """Run a script's ``main`` and turn a UsageError into one line and exit status 2."""
    install_warning_display()
    try:
        status = main()
    except UsageError as exc:
        die(str(exc))
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
        raise SystemExit(0) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    raise SystemExit(status)
