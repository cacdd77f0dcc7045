"""User-facing errors and the exit statuses the scripts promise.

Bad input is reported as one line naming the file or flag and what to do, with
exit status 2. A run where some models failed but others succeeded exits 1.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Callable, NoReturn

EXIT_OK = 0
EXIT_PARTIAL_FAILURE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input (a file, folder or flag): printed as one line, exit status 2."""


class ImageError(UsageError):
    """An image that cannot be decoded; the message names the file. Every model would
    meet the same file, so it ends the run (reported once) instead of failing each."""


def die(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


_PROJECT = str(Path(__file__).resolve().parents[1])
_default_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings as one ``warning:`` line; the libraries' in their usual form."""
    if str(filename).startswith(_PROJECT):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


def run_main(main: Callable[[], int]) -> NoReturn:
    """Run a script's ``main`` and turn a UsageError into one line and exit status 2."""
    warnings.showwarning = _show_warning
    try:
        status = main()
    except UsageError as exc:
        die(str(exc))
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
        raise SystemExit(0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130)
    raise SystemExit(status)
