"""Fetching a published set of prediction files, so a table can be reproduced in seconds.

A set is a list of relative paths with their sha256 (``sha256sum`` format, kept in
``imagenet_bench/data/``) and a base URL the paths are appended to. Downloads go to
a folder of their own (``downloads/NAME/`` by default), never into the project's
``keras_imagenet/`` or ``pytorch_imagenet/``, so fetched files cannot be mistaken
for predictions made here.

Each file is written to ``.<name>.part`` beside its final name and renamed onto it
only once its sha256 checks out, so a final name always holds a verified file. A
connection that breaks off leaves the partial file; the next attempt (within this
call, or a later run) asks for the rest with an HTTP Range header. Files already
present with the right hash are skipped, so a rerun costs one hash per file.

Standard library only (urllib), so the table script stays import-light.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..base import atomic
from ..base.errors import UsageError
from .predfiles import sha256_file

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DEFAULT_ROOT = Path("downloads")
ATTEMPTS = 3
RETRY_DELAY_S = 1.0  # before a retry after an attempt that received nothing
TIMEOUT_S = 60.0
CHUNK = 1 << 20
USER_AGENT = "imagenet-bench-download/1"


@dataclass(frozen=True)
class Download:
    """Where a set's files come from and what they must hash to."""

    base_url: str  # a relative path of the file list is appended to it
    file_list: Path  # sha256sum format: "<hex>  <relative path>" per line
    source_url: str  # for people: where to get the files by hand


_SEED_COMMIT = "87d43d84dda12803a759f78b3762beb88cc0277c"
_SEED_REPO = "cgnorthcutt/benchmarking-keras-pytorch"

DATASETS: dict[str, Download] = {
    "seed-2019": Download(
        base_url=f"https://raw.githubusercontent.com/{_SEED_REPO}/{_SEED_COMMIT}/",
        file_list=DATA_DIR / "seed-2019.sha256",
        source_url=f"https://github.com/{_SEED_REPO}/tree/{_SEED_COMMIT}",
    ),
}

_LABEL_ERRORS_COMMIT = "5457895eee26e49187de5c4d6617b9de6f172221"
_LABEL_ERRORS_REPO = "cleanlab/label-errors"
DATASETS["label-errors"] = Download(  # not predictions: the crowd-worker votes --clean-labels reads
    base_url=f"https://raw.githubusercontent.com/{_LABEL_ERRORS_REPO}/{_LABEL_ERRORS_COMMIT}/",
    file_list=DATA_DIR / "label-errors.sha256",
    source_url=f"https://github.com/{_LABEL_ERRORS_REPO}/tree/{_LABEL_ERRORS_COMMIT}",
)


def default_dest(name: str) -> Path:
    return DEFAULT_ROOT / name


_LINE_RE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


def read_file_list(path: Path) -> dict[str, str]:
    """{relative path: sha256 hex} from a sha256sum-format file; rejects unsafe paths."""
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE_RE.match(line)
        rel = match.group(2) if match else ""
        parts = rel.split("/")
        if not match or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise UsageError(f"{path}:{number}: expected '<sha256>  <relative path>', got {line!r}")
        entries[rel] = match.group(1)
    return entries


def partial_path(final: Path) -> Path:
    """The partial file a download of ``final`` is written to before the rename."""
    return final.with_name(f".{final.name}.part")


class _Retry(Exception):
    """An attempt failed in a way another attempt may fix (reason in the message)."""

    def __init__(self, reason: str, received: int = 0):
        super().__init__(reason)
        self.received = received


class _Fatal(Exception):
    """An attempt failed in a way retrying will not fix (reason in the message)."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _attempt(url: str, part: Path) -> bool:
    """Download (the rest of) ``url`` onto ``part``; return whether it was appended to a partial file.

    Resumes from the partial file's size with a Range request. A 206 is appended;
    a 200 (Range ignored) starts the file over. A body shorter than its
    Content-Length raises _Retry, with what arrived kept in the partial file.
    """
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:  # partial is as long as the file, or longer: stale
            part.unlink()
            raise _Retry("HTTP 416 for a resumed download; starting over") from None
        reason = f"HTTP {exc.code} {_one_line(exc.reason)}"
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Retry(reason) from None
        raise _Fatal(reason) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Retry(_one_line(getattr(exc, "reason", None) or exc) or type(exc).__name__) from None

    received = 0
    with response:
        mode = "wb"
        if offset and response.status == 206:
            start = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
            if not start or int(start.group(1)) != offset:
                part.unlink()
                raise _Retry(f"bad Content-Range {response.headers.get('Content-Range')!r}; starting over")
            mode = "ab"
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        with open(part, mode, opener=atomic.regular_opener) as handle:  # an OSError here is the disk's
            while True:
                try:
                    block = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    why = _one_line(exc) or type(exc).__name__
                    raise _Retry(f"connection broke off: {why}", received) from None
                if not block:
                    break
                handle.write(block)
                received += len(block)
    if expected is not None and received < expected:
        raise _Retry(f"connection broke off after {received} of {expected} bytes", received)
    return mode == "ab"


def _download(url: str, final: Path, sha256: str) -> None:
    """Download ``url`` to ``final`` via its partial file, verified; raises _Fatal."""
    part = partial_path(final)
    reason = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            resumed = _attempt(url, part)
        except _Retry as exc:
            reason = str(exc)
            if attempt < ATTEMPTS and not exc.received:
                time.sleep(RETRY_DELAY_S * attempt)
            continue
        got = sha256_file(part)
        if got == sha256:
            os.replace(part, final)
            return
        part.unlink()
        reason = f"sha256 mismatch for {final.name}: got {got}, expected {sha256}"
        if not resumed:  # a whole fresh download that hashes wrong: the server's copy is bad
            raise _Fatal(reason)
        # else the old partial may have been stale: try once more from scratch
    raise _Fatal(f"gave up after {ATTEMPTS} attempts: {reason}")


def _progress_wrap(items: list[str], name: str, enabled: bool) -> tuple[Iterable[str], Callable[[str], None]]:
    """A tqdm bar over files when tqdm is installed, else a short line per file on stderr."""
    if not enabled:
        return items, lambda _msg: None
    try:
        from tqdm import tqdm
    except ImportError:
        return items, lambda msg: print(msg, file=sys.stderr, flush=True)
    bar = tqdm(
        items, desc=f"download {name}", unit="file", file=sys.stderr, disable=None
    )  # no bar when stderr is not a terminal
    return bar, lambda msg: tqdm.write(msg, file=sys.stderr)


def fetch(
    name: str,
    dest: Path | None = None,
    base_url: str | None = None,
    progress: bool = True,
    only: list[str] | None = None,
) -> Path:
    """Download set ``name`` into ``dest`` (default DEFAULT_ROOT / name), verify every file's sha256, return dest.

    Result layout: dest/keras_imagenet/*.npy and dest/pytorch_imagenet/*.npy (the
    relative paths of the set's sha256 list). ``base_url`` overrides where files are
    fetched from; ``only`` restricts the download to some relative paths of the list.
    Raises UsageError, one line: what failed and how to place the files by hand.
    """
    if name not in DATASETS:
        raise UsageError(f"unknown download {name!r}; known: {', '.join(sorted(DATASETS))}")
    spec = DATASETS[name]
    dest = Path(dest) if dest is not None else default_dest(name)
    base = base_url if base_url is not None else spec.base_url
    if not base.startswith(("http://", "https://")):
        raise UsageError(f"--download-url {base}: expected an http:// or https:// address")
    if not base.endswith("/"):
        base += "/"
    files = read_file_list(spec.file_list)
    folders = sorted({rel.split("/")[0] for rel in files if "/" in rel})
    if only is not None:
        unknown = [rel for rel in only if rel not in files]
        if unknown:
            raise UsageError(f"not in the {name} file list: {', '.join(unknown)}")
        files = {rel: files[rel] for rel in only}
    by_hand = (
        f"offline? download the files from {spec.source_url} and put them under "
        + " and ".join(str(dest / folder) for folder in folders)
        + ", then run again"
    )

    items, say = _progress_wrap(sorted(files), name, progress)
    skipped = 0
    try:
        for rel in items:
            final = dest / rel
            if final.is_file() and sha256_file(final) == files[rel]:
                skipped += 1
                continue
            url = base + rel
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
                _download(url, final, files[rel])
            except _Fatal as exc:
                raise UsageError(f"cannot download {url} ({exc}); {by_hand}") from None
            except OSError as exc:
                raise UsageError(
                    f"cannot write {final} ({_one_line(exc)}); check the folder's permissions and free space"
                ) from None
            say(f"{rel}: {final.stat().st_size / 1e6:.1f} MB, sha256 ok")
    finally:
        with contextlib.suppress(AttributeError):
            items.close()  # type: ignore[attr-defined]  # tqdm (untyped) closes its bar; a plain list has no close
    say(f"{name}: {len(files)} files verified in {dest} ({skipped} already present)")
    return dest
