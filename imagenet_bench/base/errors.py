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


class ImageError(UsageError):
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


# How an error is recorded as JSON (the Keras model process's error.json), most specific first.
_RECORD_KINDS: tuple[tuple[str, type[Exception]], ...] = (("image", ImageError), ("usage", UsageError))


def to_record(exc: BaseException) -> dict[str, Any]:
    """A JSON-able record of an error: its kind and what rebuilds it."""
    kind = next((kind for kind, cls in _RECORD_KINDS if isinstance(exc, cls)), "error")
    if isinstance(exc, ImageError):  # kind "image"
        return {"kind": kind, "path": exc.path, "reason": exc.reason}
    return {"kind": kind, "message": " ".join(str(exc).split()) or type(exc).__name__}


def from_record(record: dict[str, Any], other: Callable[[str], Exception] = RuntimeError) -> Exception:
    """The error ``to_record`` described (``other`` builds one that is not bad input)."""
    if record.get("kind") == "image":
        return ImageError(record["path"], record["reason"])
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
