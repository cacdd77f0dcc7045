"""Files another user may plant where a run writes (issue 20, item 1): a symbolic link or a
FIFO in place of the output folder's lock or a shard's, or of a temporary file. Each is
refused with one error line naming it, and what a link points at is left as it was."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from imagenet_bench.base import atomic
from imagenet_bench.base.errors import UsageError

from conftest import ROOT, VAL500, WEIGHTS, bad_run, run_script, shared

TORCH = "imagenet_pytorch_get_predictions.py"


def _args() -> list:
    weights = shared(WEIGHTS / "torchvision_mobilenet_v2_dequantized.pth")
    return [shared(VAL500), "-m", "mobilenet_v2", "--weights-file", weights, "--limit", "2", "-j", "0"]


@pytest.mark.slow
@pytest.mark.parametrize("lock", [".imagenet-bench.lock", ".imagenet-bench.shard-0-of-2.lock"])
@pytest.mark.parametrize("planted", ["link", "fifo"])
def test_a_planted_lock_file_is_refused_and_its_target_untouched(tmp_path, lock, planted):
    out = tmp_path / "shared-out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("a user's own file\n")
    if planted == "link":
        (out / lock).symlink_to(victim)
    else:
        os.mkfifo(out / lock)
    shard = ["--model-shard", "0/2"] if "shard" in lock else []
    line, _ = bad_run(TORCH, out, *_args(), *shard)
    assert line.startswith(f"error: {out / lock}: is a "), line
    assert ("symbolic link" if planted == "link" else "FIFO") in line, line
    assert victim.read_text() == "a user's own file\n"
    assert (out / lock).is_symlink() if planted == "link" else (out / lock).exists()  # not ours to remove


def test_a_temporary_file_swapped_for_a_link_is_not_written_through(tmp_path, monkeypatch):
    """Between mkstemp and the write, the temporary name turned into a link: the write refuses."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep\n")
    made = tempfile.mkstemp

    def swapped(*args, **kwargs):
        fd, name = made(*args, **kwargs)
        os.unlink(name)
        os.symlink(victim, name)
        return fd, name

    monkeypatch.setattr(atomic.tempfile, "mkstemp", swapped)
    with pytest.raises(UsageError, match="is a symbolic link"):
        atomic.write_text(tmp_path / "out.json", "{}")
    assert victim.read_text() == "keep\n" and not (tmp_path / "out.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["victim.txt"]  # the planted name went with the failure


def test_open_regular_refuses_a_fifo_for_writing_without_hanging(tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="is a FIFO, not a file"):
        atomic.open_regular(fifo, os.O_WRONLY)  # no reader: refused at once
    with pytest.raises(UsageError, match="is a FIFO, not a regular file"):
        atomic.open_regular(fifo, os.O_RDONLY)
    with pytest.raises(UsageError, match="is a device, not a regular file"):
        atomic.open_regular(Path("/dev/null"), os.O_WRONLY)


@pytest.mark.slow
def test_names_are_read_as_utf8_whatever_the_locale(tmp_path):
    """Issue 20, item 10: under a plain C locale (no UTF-8 coercion) a valid UTF-8 name was
    refused as not UTF-8 (and under ISO-8859-1 read as mojibake): its bytes are decoded as UTF-8."""
    import shutil

    val = tmp_path / "val" / "n01440764"
    val.mkdir(parents=True)
    sources = sorted(shared(VAL500 / "n01440764").iterdir())[:2]
    names = ["ILSVRC2012_val_00000001.JPEG", "Ünïcødé_日本.JPEG"]
    for source, name in zip(sources, names, strict=True):
        shutil.copyfile(source, val / name)
    c_locale = {"PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "LC_ALL": "C", "LANG": "C"}
    weights = ["--weights-file", shared(WEIGHTS / "torchvision_mobilenet_v2_dequantized.pth")]
    args = [val.parent, "-m", "mobilenet_v2", *weights, "-j", "0", "--device", "cpu"]
    utf8 = run_script(TORCH, *args, "-o", tmp_path / "utf8")
    plain = run_script(TORCH, *args, "-o", tmp_path / "c", env=c_locale)
    assert utf8.returncode == 0 and plain.returncode == 0, plain.stderr
    listed = (tmp_path / "c" / "dataset_files.txt").read_bytes()
    assert listed == "".join(f"{n}\n" for n in sorted(names)).encode("utf-8")  # as a UTF-8 machine writes it
    for name in ("dataset_files.txt", "dataset.json", "mobilenet_v2_pytorch_imagenet_top5preds.npy"):
        assert (tmp_path / "c" / name).read_bytes() == (tmp_path / "utf8" / name).read_bytes(), name
    resumed = run_script(TORCH, *args, "-o", tmp_path / "utf8", env=c_locale)  # into the UTF-8 machine's folder
    assert resumed.returncode == 0 and "0 done, 1 skipped" in resumed.stderr, resumed.stderr


# Issue 20, item 13: noise
@pytest.mark.slow
def test_a_malicious_pickle_runs_nothing_and_the_line_says_why_it_was_refused(tmp_path):
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"features.0.0.weight": Payload()}))
    line, _ = bad_run(TORCH, tmp_path / "out", shared(VAL500), "-m", "mobilenet_v2", "--weights-file", evil, "-j", "0")
    assert not marker.exists()
    assert f"{evil}: --weights-file holds more than tensors" in line and "refused" in line, line
    assert "weights_only" not in line and "will likely succeed" not in line, line  # torch's advice is not ours


@pytest.mark.slow
def test_a_libraries_message_with_terminal_codes_and_line_breaks_is_one_escaped_line(tmp_path):
    spec = tmp_path / "noisy.py"
    spec.write_text(
        "import torch\n"
        "from imagenet_bench.datasets.preprocessing import Preprocess\n"
        "class Noisy(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        raise RuntimeError('\\x1b[31mred\\x1b[0m\\nsecond line')\n"
        "def f():\n"
        "    return Noisy(), Preprocess(32, 36)\n"
    )
    result = run_script(
        TORCH,
        shared(VAL500),
        "--model-spec",
        f"{spec}:f",
        "--name",
        "noisy",
        "--limit",
        "2",
        "-j",
        "0",
        "-o",
        tmp_path / "out",
    )
    assert result.returncode == 1, result.stderr
    assert "\x1b" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line == "error: noisy failed: \\x1b[31mred\\x1b[0m\\nsecond line", line


def test_the_table_does_not_create_a_missing_home_folder(tmp_path, seed_dirs):
    home = tmp_path / "missing" / "home"
    env = {k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"}
    keras, pytorch = seed_dirs
    result = subprocess.run(
        [sys.executable, str(ROOT / "imagenet_benchmarking.py"), "-k", keras, "-p", pytorch],
        env={**env, "HOME": str(home)},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "missing").exists()  # no cache where there is no home: the table is the same
