"""Process and file lifecycle, piece by piece (issue 9, defects 2, 3, 4, 9): temporary files
and job folders that dead runs leave are removed and live ones kept; the output-folder
lock; the exclusive claim of an output folder; the pre-flight check of folders.

Holders are real processes (a lock or a file held by another pid, then killed), since
what is tested is what the operating system does when a process dies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from imagenet_bench.base import atomic
from imagenet_bench.base.errors import UsageError
from imagenet_bench.outputs import output_folder
from imagenet_bench.predict import child_process, folder_lock, pixel_cache

from conftest import ROOT, tiny_dataset, unprivileged


def _holder(code: str) -> subprocess.Popen:
    """A Python process that runs ``code`` (which prints one line when ready) and then sleeps."""
    process = subprocess.Popen(
        [sys.executable, "-c", f"import time\n{code}\ntime.sleep(600)"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline(), "the holder did not start"
    return process


def _end(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()


def test_temporary_files_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    """A killed pixel-cache build left its temporary file forever (defect 3)."""
    code = (
        "from imagenet_bench.base import atomic\n"
        "with atomic.temp_beside({!r}) as tmp:\n    print(tmp, flush=True)\n    time.sleep(600)"
    )
    live = _holder(code.format(str(tmp_path / "live.npy")))
    dead = _holder(code.format(str(tmp_path / "dead.npy")))
    _end(dead)
    other_host = tmp_path / f".x.npy~not-{atomic.host()}~1~abc.tmp"  # another machine's: not ours to judge
    other_host.write_bytes(b"x")
    try:
        names = sorted(p.name for p in tmp_path.iterdir())
        assert len(names) == 3 and names[0].startswith(".dead.npy~") and names[1].startswith(".live.npy~")
        removed = atomic.remove_orphans(tmp_path)
        assert [p.name for p in removed] == [names[0]]
        assert sorted(p.name for p in tmp_path.iterdir()) == names[1:]
    finally:
        _end(live)
    assert [p.name for p in atomic.remove_orphans(tmp_path)] == [names[1]]
    assert other_host.exists()


def test_pixel_cache_removes_what_killed_builds_left_in_every_entry(tmp_path):
    dataset = tiny_dataset(tmp_path, 2)
    from imagenet_bench.datasets.preprocessing import Preprocess

    geometry = Preprocess(crop_size=56, resize_size=64)
    entry = pixel_cache.PixelCache(tmp_path / "cache", dataset, geometry)
    other = tmp_path / "cache" / "another-entry"
    other.mkdir(parents=True)
    code = (
        "from imagenet_bench.base import atomic\nimport os\n"
        "with atomic.temp_beside({!r}) as tmp:\n    tmp.write_bytes(bytes(1000))\n    os.kill(os.getpid(), 9)"
    )
    for folder in (other, entry.folder):
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-c", code.format(str(folder / "pixels.npy"))], cwd=ROOT)
        assert len(list(folder.glob(".pixels.npy~*.tmp"))) == 1
    entry.ensure(dataset, geometry, threads=1)
    assert entry.valid()
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_output_folder_lock_is_released_when_its_holder_dies(tmp_path):
    out = tmp_path / "out"
    holder = _holder(
        f"from imagenet_bench.predict import folder_lock\nlock = folder_lock.hold({str(out)!r})\n"
        "lock.__enter__()\nprint('ready', flush=True)"
    )
    try:
        with pytest.raises(UsageError) as refused, folder_lock.hold(out):
            pass
        assert str(refused.value).startswith(f"-o/--output-dir {out}: another run (pid {holder.pid})")
        with pytest.raises(UsageError), folder_lock.hold(out, (0, 2)):  # a shard job beside a whole run
            pass
    finally:
        _end(holder)  # SIGKILL: no cleanup ran
    with folder_lock.hold(out):  # the kernel released it
        assert (out / folder_lock.MAIN_LOCK).read_text().split() == [str(os.getpid()), atomic.host()]
    assert list(out.iterdir()) == []  # the dead holder's lock file was taken over, then removed


def test_model_shards_share_a_folder_but_not_a_shard(tmp_path):
    out = tmp_path / "out"
    holder = _holder(
        f"from imagenet_bench.predict import folder_lock\nlock = folder_lock.hold({str(out)!r}, (0, 2))\n"
        "lock.__enter__()\nprint('ready', flush=True)"
    )
    try:
        with folder_lock.hold(out, (1, 2)):
            pass
        with pytest.raises(UsageError) as same_shard, folder_lock.hold(out, (0, 2)):
            pass
        assert f"another job (pid {holder.pid}) is running --model-shard 0/2" in str(same_shard.value)
        with pytest.raises(UsageError) as whole, folder_lock.hold(out):
            pass
        assert f"--model-shard jobs are writing into this folder (0/2 (pid {holder.pid}))" in str(whole.value)
        # issue 20, item 11: an array of another size beside it would compute the same models
        for other in ((0, 3), (2, 3)):
            with pytest.raises(UsageError) as count, folder_lock.hold(out, other):
                pass
            assert "--model-shard 0/2 is running into this folder" in str(count.value), count.value
            assert f"(here 2, not {other[1]})" in str(count.value)
        assert not (out / ".imagenet-bench.shard-0-of-3.lock").exists()  # the refused job left nothing
    finally:
        _end(holder)
    with folder_lock.hold(out):
        pass
    with folder_lock.hold(out, (0, 3)):  # once the array of 2 has ended, another count may follow
        pass


def test_output_folder_is_claimed_by_one_dataset_only(tmp_path):
    """The dataset files are created exclusively: a second dataset never overwrites them."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tiny_dataset(tmp_path / "a", 2), tiny_dataset(tmp_path / "b", 3)
    out = tmp_path / "out"
    out.mkdir()
    # dataset.json of the first appears between the second's check and its claim (a race)
    assert atomic.create_json(
        out / output_folder.DATASET_JSON, {"schema": output_folder.SCHEMA, "protocol": "common", **first.describe()}
    )
    assert not atomic.create_json(out / output_folder.DATASET_JSON, {"other": 1})
    with pytest.raises(UsageError, match="holds outputs of another dataset"):
        output_folder.claim(out, second, "common")
    output_folder.claim(out, first, "common")  # the owner completes its files
    np.testing.assert_array_equal(np.load(out / output_folder.DATASET_LABELS), first.labels)
    assert (out / output_folder.DATASET_FILES).read_text().splitlines() == list(first.names)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_job_folders_of_dead_parents_are_removed(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    left = tmp_path / f"{child_process.FOLDER_PREFIX}~{atomic.host()}~{dead_pid}~abcd"
    (left / "sub").mkdir(parents=True)
    with child_process.job_folder() as mine:
        assert mine.parent == tmp_path and mine.name.startswith(f"{child_process.FOLDER_PREFIX}~{atomic.owner_tag()}~")
        assert child_process.remove_orphan_folders() == [left]
        assert mine.exists() and not left.exists()
    assert not mine.exists()


def test_unwritable_folders_are_refused_by_name(tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(UsageError, match=r"^--cache-dir .*/f: is a file"):
        atomic.validate_folder(a_file, "--cache-dir")
    with pytest.raises(UsageError, match=r"^-o/--output-dir .*/f/g/h: cannot be created: .*/f is not a folder"):
        atomic.validate_folder(a_file / "g" / "h", "-o/--output-dir")
    atomic.validate_folder(tmp_path / "new" / "folder", "--cache-dir")  # creatable
    assert not (tmp_path / "new").exists()  # the check writes nothing that stays
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o555)
    # root writes anywhere: the check runs as an unprivileged user (as root, in a user namespace)
    check = (
        "import pathlib, sys\n"
        "from imagenet_bench.base import atomic\n"
        "atomic.validate_folder(pathlib.Path(sys.argv[1]), '--cache-dir')"
    )
    result = subprocess.run(
        unprivileged([sys.executable, "-c", check, str(read_only)]), capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 1, result.stderr
    assert f"UsageError: --cache-dir {read_only}: read-only" in result.stderr
    assert list(read_only.iterdir()) == []


def test_child_ends_when_its_parent_is_killed(tmp_path):
    """A child started with child_process.run and calling end_with_parent (as the Keras
    model process does) is killed by the kernel when its parent dies, however it dies."""
    pid_file = tmp_path / "child.pid"
    child = (
        "import os, time\nfrom imagenet_bench.predict import child_process\nchild_process.end_with_parent()\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)"
    )
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys\nfrom imagenet_bench.predict import child_process\n"
            f"child_process.run([sys.executable, '-c', {child!r}], dict(os.environ))",
        ],
        cwd=ROOT,
    )
    deadline = time.time() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
        time.sleep(0.02)
    child_pid = int(pid_file.read_text())
    assert _alive(child_pid)
    _end(parent)  # SIGKILL: the parent runs no cleanup
    deadline = time.time() + 5
    while _alive(child_pid) and time.time() < deadline:
        time.sleep(0.02)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    """Running and not a zombie (an orphan is reaped by init, maybe not at once)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
