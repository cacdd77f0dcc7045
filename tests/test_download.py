"""imagenet_bench.outputs.download against a local HTTP server serving the 2019 reference files.

The server serves the read-only copy in ../shared/reference/seed-2019 (beside the
project root), which is byte-identical to the files on GitHub, so every hash in
imagenet_bench/data/seed-2019.sha256 is checked for real. Handlers can break off
mid-file, ignore Range, corrupt a byte or answer 404, to exercise resume, restart
and the error messages.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from imagenet_bench.base.errors import UsageError
from imagenet_bench.outputs import download

from helpers import closed_port_url, local_server

SEED = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "seed-2019"
NAME = "seed-2019"
FILES = download.read_file_list(download.DATASETS[NAME].file_list)
KERAS_FILE = "keras_imagenet/mobilenet_keras_imagenet_top5preds.npy"
TORCH_FILE = "pytorch_imagenet/resnet18_pytorch_imagenet_top5probs.npy"


@pytest.fixture(scope="session")
def seed_dir() -> Path:
    if not SEED.is_dir():
        message = f"reference files missing: {SEED}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return SEED


class _Handler(BaseHTTPRequestHandler):
    """Serves ``root``; class attributes (set per server) choose the misbehaviour."""

    root: Path
    requests: list  # (relative path, Range header or None), in arrival order
    seen: set
    honour_range = True
    break_first = False  # first request of each file: full Content-Length, half the body
    corrupt: str | None = None  # this relative path is served with one byte flipped
    missing: str | None = None  # this relative path answers 404

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        rng = self.headers.get("Range")
        self.requests.append((rel, rng))
        path = (self.root / rel).resolve()
        if rel == self.missing or not path.is_relative_to(self.root) or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        if rel == self.corrupt:
            data = data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]) + data[len(data) // 2 + 1 :]
        start = 0
        if rng and self.honour_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.break_first and rel not in self.seen:
            self.seen.add(rel)
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def serve(seed_dir):
    """serve(**handler_attributes) -> (base URL, request log)."""
    with contextlib.ExitStack() as servers:

        def start(**attrs) -> tuple[str, list]:
            log: list = []
            handler = type(
                "Handler", (_Handler,), {"root": seed_dir.resolve(), "requests": log, "seen": set(), **attrs}
            )
            return servers.enter_context(local_server(handler)), log

        yield start


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch):
    monkeypatch.setattr(download, "RETRY_DELAY_S", 0.0)


def _all_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_file_list_is_the_68_reference_files(seed_dir):
    on_disk = sorted(p.relative_to(seed_dir).as_posix() for p in seed_dir.glob("*_imagenet/*.npy"))
    assert len(FILES) == 68
    assert sorted(FILES) == on_disk


def test_full_download_verifies_every_file_and_rerun_fetches_nothing(serve, seed_dir, tmp_path, capsys):
    url, log = serve()
    dest = tmp_path / "seed"
    assert download.fetch(NAME, dest=dest, base_url=url, progress=False) == dest
    assert _all_files(dest) == sorted(FILES)  # no partial files, nothing extra
    for rel, sha in FILES.items():
        assert hashlib.sha256((dest / rel).read_bytes()).hexdigest() == sha, rel
    for rel in (KERAS_FILE, TORCH_FILE):
        assert (dest / rel).read_bytes() == (seed_dir / rel).read_bytes()
    assert sorted(rel for rel, _ in log) == sorted(FILES)
    assert all(rng is None for _, rng in log)
    assert capsys.readouterr() == ("", "")  # progress=False is silent

    download.fetch(NAME, dest=dest, base_url=url, progress=False)
    assert len(log) == 68  # rerun: every file already verified, no request


def test_connection_broken_mid_file_is_resumed_with_range(serve, seed_dir, tmp_path):
    url, log = serve(break_first=True)
    dest = tmp_path / "seed"
    download.fetch(NAME, dest=dest, base_url=url, progress=False)
    assert _all_files(dest) == sorted(FILES)
    for rel in FILES:
        size = (seed_dir / rel).stat().st_size
        assert [rng for r, rng in log if r == rel] == [None, f"bytes={size // 2}-"], rel
        assert (dest / rel).read_bytes() == (seed_dir / rel).read_bytes(), rel


def test_server_ignoring_range_restarts_the_file(serve, seed_dir, tmp_path):
    url, log = serve(honour_range=False)
    dest = tmp_path / "seed"
    part = download.partial_path(dest / KERAS_FILE)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1000)  # would corrupt the file if appended to
    download.fetch(NAME, dest=dest, base_url=url, progress=False, only=[KERAS_FILE])
    assert log == [(KERAS_FILE, "bytes=1000-")]
    assert (dest / KERAS_FILE).read_bytes() == (seed_dir / KERAS_FILE).read_bytes()
    assert not part.exists()


def test_stale_partial_is_dropped_and_downloaded_again(serve, seed_dir, tmp_path):
    url, log = serve()
    dest = tmp_path / "seed"
    part = download.partial_path(dest / KERAS_FILE)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1000)  # not a prefix of the real file: resume hashes wrong
    download.fetch(NAME, dest=dest, base_url=url, progress=False, only=[KERAS_FILE])
    assert log == [(KERAS_FILE, "bytes=1000-"), (KERAS_FILE, None)]
    assert (dest / KERAS_FILE).read_bytes() == (seed_dir / KERAS_FILE).read_bytes()
    assert not part.exists()


def test_corrupt_file_raises_and_leaves_no_file(serve, tmp_path):
    url, _ = serve(corrupt=TORCH_FILE)
    dest = tmp_path / "seed"
    with pytest.raises(UsageError) as info:
        download.fetch(NAME, dest=dest, base_url=url, progress=False, only=[KERAS_FILE, TORCH_FILE])
    message = str(info.value)
    assert "\n" not in message
    assert Path(TORCH_FILE).name in message and "sha256" in message
    assert _all_files(dest) == [KERAS_FILE]  # the good one stays; no final or partial for the bad one


def test_http_404_is_not_retried(serve, tmp_path):
    url, log = serve(missing=KERAS_FILE)
    with pytest.raises(UsageError, match="HTTP 404"):
        download.fetch(NAME, dest=tmp_path / "seed", base_url=url, progress=False, only=[KERAS_FILE])
    assert len(log) == 1


def test_unreachable_server_says_how_to_place_files_by_hand(tmp_path):
    base = closed_port_url()
    dest = tmp_path / "seed"
    with pytest.raises(UsageError) as info:
        download.fetch(NAME, dest=dest, base_url=base, progress=False, only=[KERAS_FILE])
    message = str(info.value)
    assert "\n" not in message
    assert base + KERAS_FILE in message
    assert "87d43d84dda12803a759f78b3762beb88cc0277c" in message  # where to get them by hand
    assert str(dest / "keras_imagenet") in message and str(dest / "pytorch_imagenet") in message
    assert not dest.exists() or _all_files(dest) == []


def test_default_destination_and_progress_lines(serve, tmp_path, monkeypatch, capsys):
    url, _ = serve()
    monkeypatch.chdir(tmp_path)
    assert download.fetch(NAME, base_url=url, only=[KERAS_FILE]) == download.DEFAULT_ROOT / NAME
    assert (tmp_path / "downloads" / NAME / KERAS_FILE).is_file()
    assert Path(KERAS_FILE).name in capsys.readouterr().err


def test_unknown_name_lists_known_names():
    with pytest.raises(UsageError, match="seed-2019"):
        download.fetch("no-such-set", progress=False)
