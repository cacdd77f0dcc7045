"""Issue 27: what a pass keeps of each image (``predict.top_k_rows``), the allocator's policy
(``base.memory``) and bench/bench_memory.py at a tiny size. The memory figures themselves are
the bench's (BENCHMARKS.md), never a threshold here."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from imagenet_bench.base import memory
from imagenet_bench.predict.top_k_rows import TopKRows

from conftest import ROOT


@pytest.mark.parametrize("batch", [1, 3, 7])
def test_rows_written_in_place_equal_the_batches_concatenated(batch):
    rng = np.random.default_rng(batch)
    n, k = 20, 5
    batches = []
    for start in range(0, n, batch):
        rows = min(batch, n - start)
        probs = rng.random((rows, 1000), dtype=np.float32)
        batches.append((rng.integers(0, 1000, (rows, k)), rng.random((rows, k), dtype=np.float32), probs))
    kept = TopKRows(n, all_probs=True)
    for top_i, top_p, probs in batches:
        kept.add(top_i, top_p, probs)
    preds, probs, all_probs = kept.arrays()
    assert preds.dtype == np.int64 and probs.dtype == np.float32 and preds.shape == (n, k)
    for got, column in zip((preds, probs, all_probs), range(3), strict=True):
        assert np.array_equal(got, np.concatenate([b[column] for b in batches]))


def test_rows_take_k_from_the_first_batch_and_refuse_to_end_short():
    kept = TopKRows(4)
    kept.add(np.arange(6).reshape(2, 3), np.ones((2, 3), np.float32))
    assert kept.preds is not None and kept.preds.shape == (4, 3) and kept.all_probs is None
    with pytest.raises(AssertionError):
        kept.arrays()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the policy is glibc's; elsewhere it is a no-op")
def test_glibc_takes_the_fixed_mmap_threshold():
    """In a fresh process (the setting is the process's): mallopt says it took it."""
    code = "from imagenet_bench.base import memory; print(memory.keep_large_blocks_out_of_the_heap())"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
    memory.give_back_freed_memory()  # callable at any time


@pytest.mark.slow
def test_the_memory_bench_runs_at_a_tiny_size(tmp_path):
    """This tree, two sizes, one repeat, the PyTorch runs (the Keras ones take the same path
    through the bench, at twice the start-up time): every figure is there and plausible."""
    figures = tmp_path / "figures.json"
    command = [sys.executable, str(ROOT / "bench" / "bench_memory.py"), "--sizes", "10", "20", "--classes", "10"]
    command += ["--repeats", "1", "--passes", "2", "--work", str(tmp_path / "work"), "--json", str(figures)]
    command += ["--configurations", "pytorch -j 0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    result = json.loads(figures.read_text())
    runs = {(r["configuration"], r["images"]): r for r in result["runs"]}
    assert set(runs) == {("pytorch -j 0", 10), ("pytorch -j 0", 20)}
    for run in runs.values():
        assert len(run["peaks_mb"]) == 1 and 100 < run["peaks_mb"][0] < 20_000  # a whole framework's process
    assert "growth_kb_per_image" in runs["pytorch -j 0", 20]
    assert [len(levels) for levels in result["levels_before_passes"]["this"]] == [2]
    assert "KB/image" in done.stdout and "before each of 2 passes" in done.stdout


def test_pixel_cache_rows_are_read_not_mapped(tmp_path):
    """The batches equal the rows np.load gives, and the file is never mapped into the process
    (a mapping keeps every row read resident: 150 KB an image at 224)."""
    from pathlib import Path

    from imagenet_bench.datasets import images

    pixels = np.random.default_rng(0).integers(0, 256, (11, 8, 8, 3), dtype=np.uint8)
    path = tmp_path / "pixels.npy"
    np.save(path, pixels)
    for offset, n, batch in [(0, 11, 4), (3, 8, 3), (10, 1, 8)]:
        batches = images.cached_batches(path, n, batch, offset)
        first = next(batches)
        assert str(path) not in Path("/proc/self/maps").read_text()
        assert np.array_equal(np.concatenate([first, *batches]), np.load(path)[offset : offset + n])
    with pytest.raises(ValueError, match="not rows"):
        next(images.cached_batches(path, 5, 4, 8))


def test_path_list_gives_back_the_paths_it_was_given(tmp_path):
    """Indexing, negative indices, slices, take, iteration and equality, against the list of
    Paths itself; names that are not UTF-8 come back as the same bytes."""
    from pathlib import Path

    from imagenet_bench.datasets.path_list import PathList

    paths = [tmp_path / "n01440764" / f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(7)]
    paths.append(tmp_path / "x" / Path(os.fsdecode(b"caf\xe9 \xe6\x97\xa5.JPEG")))
    kept = PathList(paths)
    assert len(kept) == len(paths) and list(kept) == paths and kept == paths
    assert [kept[i] for i in range(-len(paths), len(paths))] == paths + paths
    assert list(kept[2:6]) == paths[2:6] and list(kept[::-3]) == paths[::-3]
    assert list(kept.take(np.array([5, 0, 5]))) == [paths[5], paths[0], paths[5]]
    assert os.fsencode(kept[-1]) == os.fsencode(paths[-1])
    with pytest.raises(IndexError):
        kept[len(paths)]
    assert kept != paths[:-1] and PathList([]) == []
