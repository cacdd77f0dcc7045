"""Full disks and killed launchers (issue 20, items 7 to 9).

A full disk is made by the test: a tmpfs of a few pages, mounted (as root; CI runs as root)
under the test's folder and unmounted at its end. Where it cannot be mounted the test is
skipped with the reason, except in CI, where that fails it. On it: the pixel cache
(--cache-dir), a run's output folder (-o) and the Keras script's temporary folder
(TMPDIR). Each must end the run with one ``error:`` line naming the folder as the user gave
it, what was being written and its bytes, exit status 2, no traceback, and leave no
temporary file, lock file, job folder or process; what was complete is still ranked.

A torchrun launcher killed with SIGKILL (its whole process group) must take its ranks with
it within seconds, so that the same command, run again at once, is not refused by the
folder's lock and writes what an uninterrupted run writes.

The last tests take the pieces one at a time without a mount: the entry's bytes, a file
system without posix_fallocate, the error's record across processes, a model process with
no room even for its error record.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from imagenet_bench.base import atomic, errors
from imagenet_bench.predict import keras_worker, pixel_cache

from conftest import ROOT, TORCH_WEIGHTS, VAL500, WEIGHTS, in_ci, shared, tiny_dataset, torchrun

TORCH, KERAS = "imagenet_pytorch_get_predictions.py", "imagenet_keras_get_predictions.py"
KERAS_MODEL, KERAS_WEIGHTS = "mobilenet_0.25_128", "keras_mobilenet_alpha0.25_128.weights.h5"
NPY_HEADER = 128  # a .npy header of these shapes, as numpy writes it (format 1.0)


# --- a small file system, made by the test ------------------------------------------------------


def _cannot(reason: str) -> None:
    if in_ci():
        pytest.fail(f"in CI the full-disk tests must run: {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """``folder`` as a tmpfs of ``size`` (``2m``, ``64k``), unmounted when the block ends."""
    folder.mkdir(parents=True)
    if os.geteuid() != 0:
        _cannot(f"mounting a tmpfs needs root (this is uid {os.geteuid()})")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        _cannot(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)  # something still holds it: detach it


def _free(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def _fill(folder: Path, leave: int = 0) -> Path:
    """A ballast file that leaves ``leave`` bytes free in ``folder``'s file system."""
    ballast = folder / "ballast"
    ballast.write_bytes(b"\0" * (_free(folder) - leave))
    assert _free(folder) == leave
    return ballast


# --- what every full-disk run must show -----------------------------------------------------------


def _args(script: str, models: list[str], limit: int = 40) -> list[str]:
    args = [str(shared(VAL500)), "-m", *models, "--limit", str(limit)]
    if script == TORCH:
        for model in models:
            args += ["--weights-file", f"{model}={shared(TORCH_WEIGHTS[model])}"]
        return args + ["-j", "0", "-b", "8"]
    return args + ["--weights-file", str(shared(WEIGHTS / KERAS_WEIGHTS))]


def _env(tmp_path: Path, tmpdir: Path | None = None) -> dict[str, str]:
    tmp = tmpdir or tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return dict(os.environ, PYTHONUNBUFFERED="1", TMPDIR=str(tmp), OMP_NUM_THREADS="1")


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def _script(script: str, *args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return _run([sys.executable, str(ROOT / script), *map(str, args)], env)


def _one_error(result: subprocess.CompletedProcess, pattern: str, status: int = 2) -> str:
    """Exit ``status``, exactly one ``error:`` line, matching ``pattern`` (a regex), and no
    traceback from the run's own processes; the line."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == status, result.stderr
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(pattern, lines[0]), lines[0]
    return lines[0]


def _no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr


def _leftovers(*folders: Path) -> list[str]:
    """Temporary files, lock files and Keras job folders under ``folders``."""
    return [
        str(path)
        for folder in folders
        for path in (folder.rglob("*") if folder.exists() else ())
        if path.name.endswith(".tmp") or path.name.startswith((".imagenet-bench", "imagenet-bench-keras"))
    ]


def _running(text: str) -> list[int]:
    """Live processes (not zombies) whose command line contains ``text``, but this one."""
    found = []
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        pid = int(path.split("/")[2])
        try:
            if text.encode() not in Path(path).read_bytes() or pid == os.getpid():
                continue
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            found.append(pid)
    return found


def _none_running(text: str, within: float) -> float:
    """Wait until no process names ``text``; fail after ``within`` seconds. The time it took."""
    start = time.monotonic()
    while _running(text):
        assert time.monotonic() - start < within, f"still running after {within} s: {_running(text)}"
        time.sleep(0.02)
    return time.monotonic() - start


def _table(*folders: Path) -> subprocess.CompletedProcess:
    args = [a for folder in folders for a in ("--dir", str(folder))]
    return _run([sys.executable, str(ROOT / "imagenet_benchmarking.py"), *args, "--format", "csv"], dict(os.environ))


def _ranked(table: subprocess.CompletedProcess) -> list[str]:
    return [line.split(",")[1] for line in table.stdout.splitlines()[1:] if line]


# --- item 7: the pixel cache on a disk too small for its entry -----------------------------------

CACHE_CASES = {  # script, models, images, entry bytes (N x crop x crop x 3 + the header)
    "pytorch": (TORCH, ["mobilenet_v2"], 40, 40 * 224 * 224 * 3 + NPY_HEADER),
    "keras": (KERAS, [KERAS_MODEL], 100, 100 * 128 * 128 * 3 + NPY_HEADER),
    "torchrun": (TORCH, ["mobilenet_v2", "quantized_mobilenet_v2"], 40, 40 * 224 * 224 * 3 + NPY_HEADER),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CACHE_CASES))
def test_pixel_cache_on_a_disk_too_small_is_one_error_line(tmp_path, case):
    """Before: SIGBUS writing through the map of a sparse file (exit 135, no message), its
    temporary file and the output folder's lock left behind. Under torchrun (two models, one
    pass each) the second rank also went on alone to the next pass, and died with a traceback."""
    script, models, images, entry = CACHE_CASES[case]
    out, env = tmp_path / "out", _env(tmp_path)
    with small_disk(tmp_path / "cache", "2m") as cache:
        args = [*_args(script, models, images), "-o", str(out), "--cache-dir", str(cache)]
        if case == "torchrun":
            result = _run(torchrun(ROOT / script, *args, "--group-size", "1", log_dir=tmp_path / "logs"), env)
            assert "exitcode  : 2" in result.stderr, result.stderr  # torchrun's own report of rank 0's status
            assert "[rank" not in result.stderr, result.stderr  # no rank's traceback (nor any other line)
            status = 1  # torchrun's, for a rank that failed
        else:
            result = _script(script, *args, env=env)
            _no_traceback(result)
            status = 2
        _one_error(
            result,
            rf"error: --cache-dir {re.escape(str(cache))}: no space left on its device while writing the pixel "
            rf"cache entry [0-9a-f]{{24}}/pixels\.npy \({entry:,} bytes, {_free(cache):,} free\); nothing of the "
            r"entry is left; free space there or give another --cache-dir, then run the same command again",
            status,
        )
        assert list(cache.iterdir()) == []  # no temporary file, no entry folder
        assert not out.exists()  # the lock and the folder it made are gone
        assert f"{len(models) - 1} not run (a disk is full" in result.stderr or len(models) == 1
        assert _running(str(tmp_path)) == []


# --- item 8: a full output folder, a full temporary folder ---------------------------------------


@pytest.mark.slow
def test_output_folder_filling_up_stops_the_run_and_the_table_ranks_what_is_complete(tmp_path):
    """The first model is saved; then the disk is filled but one block, which takes the second
    model's predictions but not its probabilities. Before: an OSError traceback."""
    env, models = _env(tmp_path), list(TORCH_WEIGHTS)
    with small_disk(tmp_path / "out", "1m") as out:
        command = [sys.executable, str(ROOT / TORCH), *_args(TORCH, models), "--group-size", "1", "-o", str(out)]
        run = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        first = out / "mobilenet_v2_pytorch_imagenet_manifest.json"
        deadline = time.monotonic() + 600
        while not first.exists():
            assert run.poll() is None and time.monotonic() < deadline, run.stderr.read() if run.stderr else ""
            time.sleep(0.005)
        block = os.statvfs(out).f_frsize
        ballast = _fill(out, leave=block)  # the second model is still computing (40 images)
        stderr = run.communicate(timeout=600)[1]
        result = subprocess.CompletedProcess(command, run.returncode, "", stderr)
        _no_traceback(result)
        model = "quantized_mobilenet_v2"
        _one_error(
            result,
            rf"error: -o/--output-dir {re.escape(str(out))}: no space left on its device while writing "
            rf"{model}_pytorch_imagenet_top5probs\.npy \({40 * 5 * 4 + NPY_HEADER:,} bytes, 0 free\); {model} is left "
            rf"incomplete \({model}_pytorch_imagenet_top5preds\.npy but no manifest\): the table leaves it out, "
            r"and a rerun redoes it; free space there or give another -o/--output-dir, then run the same "
            r"command again",
        )
        assert "1 done, 0 skipped (already complete), 1 failed: quantized_mobilenet_v2" in stderr
        assert _leftovers(out) == []
        assert (out / f"{model}_pytorch_imagenet_top5preds.npy").exists()  # as the error line says
        assert not (out / f"{model}_pytorch_imagenet_top5probs.npy").exists()

        table = _table(out)  # ranks the complete model, and says the other is incomplete
        assert _ranked(table) == ["mobilenet_v2"], table.stdout
        assert f"{model}_pytorch_imagenet_manifest.json: missing, so these outputs are incomplete" in table.stderr

        ballast.unlink()  # space again: the same command completes the folder
        again = _run(command, env)
        assert again.returncode == 0, again.stderr
        assert "1 done, 1 skipped (already complete), 0 failed" in again.stderr
        assert sorted(_ranked(_table(out))) == sorted(models)
        assert _leftovers(out) == []
    assert _running(str(tmp_path)) == []


@pytest.mark.slow
@pytest.mark.parametrize("script", [TORCH, KERAS])
def test_full_output_folder_is_one_error_line_before_and_after_the_lock(tmp_path, script):
    """A folder with no block free fails at the run's lock file; one with two blocks free at
    the dataset files (on 4 KiB pages: the lock, dataset.json, then the labels). Before: an
    OSError traceback from the lock or the atomic writer."""
    model = "mobilenet_v2" if script == TORCH else KERAS_MODEL
    env = _env(tmp_path)
    with small_disk(tmp_path / "full", "64k") as full:
        ballast = _fill(full)
        result = _script(script, *_args(script, [model]), "-o", full, env=env)
        _no_traceback(result)
        _one_error(
            result,
            rf"error: -o/--output-dir {re.escape(str(full))}: no space left on its device while writing the run's "
            r"lock file \.imagenet-bench\.lock \([\d,]+ bytes, 0 free\); nothing was written; free space there or "
            r"give another -o/--output-dir, then run the same command again",
        )
        assert sorted(p.name for p in full.iterdir()) == [ballast.name]
    with small_disk(tmp_path / "small", "8k") as small:
        result = _script(script, *_args(script, [model]), "-o", small, env=env)
        _no_traceback(result)
        line = _one_error(
            result,
            rf"error: -o/--output-dir {re.escape(str(small))}: no space left on its device while writing "
            rf"(dataset\.json|dataset_labels\.npy|dataset_files\.txt) \([\d,]+ bytes, [\d,]+ free\); nothing of "
            rf"{model} was written; the folder's dataset files are completed by the rerun; free space there or give "
            r"another -o/--output-dir, then run the same command again",
        )
        assert "dataset_labels.npy (448 bytes" in line or os.statvfs(small).f_frsize != 4096
        assert _leftovers(small, tmp_path / "tmp") == []
        assert not list(small.glob("*_top5*.npy"))
    assert _running(str(tmp_path)) == []


@pytest.mark.slow
def test_full_temporary_folder_of_the_keras_model_process_names_the_cause(tmp_path):
    """The model process cannot write its all-probabilities file into its job folder. Before:
    two tracebacks of the model process, then "exited with status 1 without a result
    (killed, out of memory, or crashed)", which hid the cause."""
    out = tmp_path / "out"
    with small_disk(tmp_path / "tmp", "64k") as tmp:
        env = _env(tmp_path, tmp)
        result = _script(KERAS, *_args(KERAS, [KERAS_MODEL]), "--save-all-probs", "-o", out, env=env)
        _no_traceback(result)
        _one_error(
            result,
            rf"error: TMPDIR {re.escape(str(tmp))}: no space left on its device while writing all_probs\.npy of the "
            rf"model process for {KERAS_MODEL} \({40 * 1000 * 4 + NPY_HEADER:,} bytes, [\d,]+ free\); nothing of "
            rf"{KERAS_MODEL} was written to the output folder; free space there or set TMPDIR to another folder, "
            r"then run the same command again",
        )
        assert "without a result" not in result.stderr
        assert list(tmp.iterdir()) == []  # the job folder is gone
        assert not out.exists() or not list(out.glob("*_top5*.npy"))
    assert _running(str(tmp_path)) == []


# --- item 9: a killed torchrun takes its ranks with it -------------------------------------------


def _torchrun(tmp_path: Path, out: Path, logs: str) -> list[str]:
    args = [str(shared(VAL500)), "-m", "mobilenet_v2", "--limit", "200", "-b", "1", "-j", "0", "-o", str(out)]
    args += ["--weights-file", str(shared(TORCH_WEIGHTS["mobilenet_v2"]))]
    return torchrun(ROOT / TORCH, *args, log_dir=tmp_path / logs)


@pytest.mark.slow
def test_killed_torchrun_launcher_takes_its_ranks_with_it(tmp_path):
    """torchrun starts each rank in a session of its own, so SIGKILL of the launcher's process
    group left both ranks computing (here: for seconds more, 100 images each at one a call),
    and a rerun was refused: "another run (pid N) is writing into this folder"."""
    out, env = tmp_path / "out", _env(tmp_path)
    reference = _run(_torchrun(tmp_path, tmp_path / "reference", "logs-reference"), env)
    assert reference.returncode == 0, reference.stderr

    stderr = tmp_path / "killed.stderr"
    with open(stderr, "wb") as sink:
        launcher = subprocess.Popen(
            _torchrun(tmp_path, out, "logs-killed"),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,  # its own process group, killed whole below
        )
    try:
        deadline = time.monotonic() + 300
        while not re.search(rb"mobilenet_v2:\s+\d+%\|", stderr.read_bytes()):  # rank 0 is computing
            assert launcher.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, "no progress bar within 300 s"
            time.sleep(0.02)
        ranks = [pid for pid in _running(str(out)) if pid != launcher.pid]
        assert len(ranks) == 2, ranks
        assert all(os.getsid(pid) == pid for pid in ranks)  # sessions of their own: the kill below misses them
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
    took = _none_running(str(out), within=3)
    assert not list(out.glob("*_manifest.json"))  # killed before the model was written

    again = _run(_torchrun(tmp_path, out, "logs-again"), env)  # at once: the lock is free
    assert again.returncode == 0, again.stderr
    assert "1 done, 0 skipped" in again.stderr
    names = ["mobilenet_v2_pytorch_imagenet_top5preds.npy", "mobilenet_v2_pytorch_imagenet_top5probs.npy"]
    names += ["dataset_labels.npy", "dataset_files.txt"]
    for name in names:
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
    assert _leftovers(out) == []
    assert _running(str(tmp_path)) == [], f"ranks ended {took:.2f} s after the kill"


RANK = """
import sys, time
from imagenet_bench.predict import child_process
child_process.end_with_launcher()
print("ready", flush=True)
time.sleep(60)
"""
LAUNCHER = """
import subprocess, sys, time
rank = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, start_new_session=True, text=True)
assert rank.stdout.readline() == "ready\\n"
print(rank.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("torchrun", [True, False], ids=["under-torchrun", "started-by-hand"])
def test_a_rank_ends_with_its_launcher_only_under_torchrun(torchrun):
    """A process started in a session of its own, as torchrun starts ranks, its launcher then
    killed: under torchrun (TORCHELASTIC_RUN_ID) it ends at once; started otherwise (a shell
    that puts ranks in the background may rightly end first) it lives on."""
    env = {k: v for k, v in os.environ.items() if k != "TORCHELASTIC_RUN_ID"}
    if torchrun:
        env["TORCHELASTIC_RUN_ID"] = "test"
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, RANK], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    rank = int(launcher.stdout.readline())
    launcher.kill()
    launcher.wait()
    try:
        deadline = time.monotonic() + (3 if torchrun else 1)
        while _alive(rank) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _alive(rank) is not torchrun
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(rank, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- the pieces, without a mount ------------------------------------------------------------------


def _pieces(pixels: np.ndarray, rows: int = 3) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, len(pixels), rows):
        yield start, pixels[start : start + rows]


def _entry(tmp_path: Path) -> tuple[pixel_cache.PixelCache, np.ndarray]:
    from imagenet_bench.datasets.preprocessing import Preprocess

    folder = tmp_path / "val"
    folder.mkdir()
    dataset = tiny_dataset(folder, 7)
    preprocess = Preprocess(crop_size=32, resize_size=40)
    cache = pixel_cache.PixelCache(tmp_path / "cache", dataset, preprocess)
    pixels = np.random.default_rng(0).integers(0, 256, cache.shape, dtype=np.uint8)
    return cache, pixels


def test_pixel_cache_entry_is_the_npy_file_it_always_was(tmp_path):
    """Written with pwrite into a reserved file, not through a map: the same bytes as np.save
    (and numpy's open_memmap, which the build used), a valid entry that reads back the pixels."""
    cache, pixels = _entry(tmp_path)
    cache.build(_pieces(pixels))
    expected = tmp_path / "expected.npy"
    np.save(expected, pixels)
    assert cache.pixels_path.read_bytes() == expected.read_bytes()
    assert cache.valid()
    assert np.array_equal(np.load(cache.pixels_path, mmap_mode="r"), pixels)
    assert sorted(p.name for p in cache.folder.iterdir()) == ["key.json", "pixels.npy"]


def test_pixel_cache_on_a_file_system_without_fallocate_reports_the_full_disk_at_the_write(tmp_path, monkeypatch):
    """Where posix_fallocate is not supported (EOPNOTSUPP) the build writes on, and the write
    that meets the full disk is the same one error, naming --cache-dir; nothing is left."""
    cache, pixels = _entry(tmp_path)
    entry = NPY_HEADER + pixels.nbytes

    def unsupported(fd: int, offset: int, length: int) -> None:
        assert (offset, length) == (0, entry)
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    written = []
    real_pwrite = os.pwrite

    def pwrite(fd: int, data, offset: int) -> int:
        if sum(written) > entry // 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(real_pwrite(fd, data, offset))
        return written[-1]

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    monkeypatch.setattr(os, "pwrite", pwrite)
    with pytest.raises(errors.NoSpaceError) as full:
        cache.build(_pieces(pixels))
    assert str(full.value).startswith(
        f"--cache-dir {tmp_path / 'cache'}: no space left on its device while writing the pixel cache entry "
        f"{cache.folder.name}/pixels.npy ({entry:,} bytes, "
    )
    assert len(written) > 1  # it did write, then met the full disk
    assert not (tmp_path / "cache").exists()  # the entry folder and the root it made are gone


def test_pixel_cache_reserves_the_entry_before_decoding(tmp_path, monkeypatch):
    """posix_fallocate's ENOSPC comes before the first piece is asked for (nothing decoded)."""
    cache, pixels = _entry(tmp_path)
    (tmp_path / "cache").mkdir()

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def pieces() -> Iterator[tuple[int, np.ndarray]]:
        raise AssertionError("decoded before the space was reserved")
        yield 0, pixels

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(errors.NoSpaceError, match="nothing of the entry is left"):
        cache.build(pieces())
    assert list((tmp_path / "cache").iterdir()) == []  # the root was there: it stays, empty


def test_no_space_error_travels_by_pickle_and_record():
    """Across torchrun ranks (pickle) and out of the Keras model process (its JSON record) it
    stays a NoSpaceError with its fields, so every process prints the same line."""
    exc = errors.NoSpaceError("/o", "x.npy", 1234, False, "-o/--output-dir", "nothing of m was written", 0)
    for back in (pickle.loads(pickle.dumps(exc)), errors.from_record(errors.to_record(exc))):
        assert type(back) is errors.NoSpaceError and str(back) == str(exc)
        assert isinstance(back, errors.StopsTheRun)
    assert str(exc) == (
        "-o/--output-dir /o: no space left on its device while writing x.npy (1,234 bytes, 0 free); nothing of m "
        "was written; free space there or give another -o/--output-dir, then run the same command again"
    )
    quota = errors.NoSpaceError.of(OSError(errno.EDQUOT, "Disk quota exceeded"), "/o", "x.npy")
    assert "disk quota exceeded while writing x.npy;" in str(quota)  # statvfs knows no quota: no free count


def test_save_npy_on_a_full_disk_names_the_file_and_leaves_the_old_one(tmp_path, monkeypatch):
    """np.save writes a large array with ndarray.tofile, whose full disk is an OSError without
    errno ("N requested and M written"): written through the file's write instead, it is ENOSPC."""
    target = tmp_path / "a.npy"
    target.write_bytes(b"old")
    array = np.zeros((300, 1000), np.float32)

    class Full:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "_Writes", Full)
    with pytest.raises(errors.NoSpaceError) as full:
        atomic.save_npy(target, array)
    assert str(full.value).startswith(
        f"{tmp_path}: no space left on its device while writing a.npy ({array.nbytes + NPY_HEADER:,} bytes"
    )
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.npy"]


def test_model_process_without_room_for_its_error_record_still_names_the_cause(tmp_path, monkeypatch):
    """The model process's last channel is its exit status (EXIT_NO_SPACE): the parent names
    the temporary folder from it, not "killed, out of memory, or crashed"."""

    def full(path, text) -> None:
        raise errors.NoSpaceError(Path(path).parent, Path(path).name, len(text))

    monkeypatch.setattr(atomic, "write_text", full)
    assert (
        keras_worker._report(tmp_path, errors.NoSpaceError(tmp_path, "preds.npy", 10), "") == keras_worker.EXIT_NO_SPACE
    )

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    monkeypatch.setattr(keras_worker.child_process, "run", lambda argv, env: keras_worker.EXIT_NO_SPACE)
    with pytest.raises(errors.NoSpaceError) as full_tmp:
        keras_worker.launch({"model": "m"})
    assert str(full_tmp.value).startswith(
        f"TMPDIR {tmp_path}: no space left on its device while writing the outputs or the error record of the "
        "model process for m ("
    )
    assert "nothing of m was written to the output folder" in str(full_tmp.value)
    assert list(tmp_path.iterdir()) == []  # the job folder is gone
