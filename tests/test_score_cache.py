"""The table's score cache: used, never stale, off on request, torn files read as empty, and
a read-only download folder still ranked.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import run_script
from helpers import SCRIPT, N, bench, by_model, by_model_rows, csv_rows, expected, ok_csv, pct, write_model
from helpers import promise as _promise


def _cache_files(home: Path) -> list[Path]:
    return sorted((home / "imagenet-bench" / "scores").glob("*.npz"))


def test_score_cache_is_used_and_never_stale(tmp_path, promised, monkeypatch):
    """In-process: a rerun reads no prediction file; a rewrite of the same size is seen
    (mtime_ns changes), and so is one whose mtime is set back (ctime_ns changes)."""
    from imagenet_bench.outputs import predfiles
    from imagenet_bench.scoring import score as scoring
    from imagenet_bench.scoring.measures import TopK

    folder, labels, models = promised
    root = tmp_path / "cache"
    reads = []
    real_load = predfiles.load
    monkeypatch.setattr(predfiles, "load", lambda files: reads.append(files.model) or real_load(files))

    def counts() -> dict[str, int]:
        [test_set] = scoring.group(scoring.find_files([scoring.PredictionFolder(folder, True)]), [])
        failures: list[str] = []
        cards = scoring.score(test_set, [TopK("acc1", labels, 1), TopK("acc5", labels, 5)], root, failures)
        assert not failures
        return {c.files.model: c.answers["acc1"].count for c in cards}

    want = {m: expected(models[m], labels)[0] for m in "abcd"}
    assert counts() == want and sorted(reads) == ["a", "b", "c", "d"]
    reads.clear()
    assert counts() == want and reads == []  # all from the cache

    # model a's files rewritten with other content of the same size (a legitimate rerun: new manifest)
    new_a = write_model(folder, "a", labels, range(20), seed=9)
    _promise(folder, "a")
    assert counts() == {**want, "a": 20} and reads == ["a"]
    reads.clear()

    # the same again, with every timestamp put back: ctime_ns still moves
    preds = folder / "a_pytorch_imagenet_top5preds.npy"
    before = os.stat(preds)
    array = np.load(preds)
    array[:30] = np.asarray(new_a["preds"])[:30]
    top = np.argmax(np.load(folder / "a_pytorch_imagenet_top5probs.npy"), axis=1)
    array[np.arange(30), top[:30]] = labels[:30]  # right on rows 0..29 now
    np.save(preds, array)
    os.utime(preds, ns=(before.st_atime_ns, before.st_mtime_ns))
    _promise(folder, "a")
    assert os.stat(preds).st_size == before.st_size and os.stat(preds).st_mtime_ns == before.st_mtime_ns
    assert counts()["a"] == int(np.sum(array[np.arange(N), top] == labels)) and reads == ["a"]


@pytest.mark.slow
def test_score_cache_sees_new_labels_and_can_be_off(tmp_path, four_models, score_cache_home):
    folder, labels, models = four_models
    before = set(_cache_files(score_cache_home))
    first = ok_csv("--dir", folder)
    assert len(set(_cache_files(score_cache_home)) - before) == 1
    assert ok_csv("--dir", folder) == first
    relabelled = labels.copy()
    relabelled[:100] = models["d"]["top1"][:100]
    np.save(folder / "dataset_labels.npy", relabelled)
    rows = by_model(bench("--dir", folder, "--format", "csv").stdout)
    assert rows["d"]["Acc@1"] == pct(expected(models["d"], relabelled)[0], N) != by_model_rows(first)["d"]["Acc@1"]

    count = len(_cache_files(score_cache_home))
    assert ok_csv("--dir", folder, "--no-cache") == csv_rows(bench("--dir", folder, "--format", "csv").stdout)
    ok_csv("--dir", folder, "--no-cache", "-l", folder / "dataset_labels.npy")  # new measures, no cache written
    assert len(_cache_files(score_cache_home)) == count

    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")  # the cache can never be written there: the table still comes out
    assert ok_csv("--dir", folder, "--cache-dir", blocked / "sub") == ok_csv("--dir", folder, "--no-cache")


@pytest.mark.slow
def test_torn_score_cache_reads_as_empty(tmp_path, four_models):
    """The cache is written without fsync (a cache may be lost): a file torn by a power cut
    must never give other marks. Here bytes of the first model's Acc@1 marks are flipped in
    place (same size): zip's CRC refuses the file, the marks come from the prediction files
    (--ci's McNemar tests use every mark, not only the counts) and the cache is rewritten."""
    import zipfile

    folder, _, _ = four_models
    cache = tmp_path / "cache"
    want = ok_csv("--dir", folder, "--ci", "--no-cache")
    assert ok_csv("--dir", folder, "--ci", "--cache-dir", cache) == want
    [path] = cache.glob("*.npz")
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("marks_acc1.npy")
        member = archive.read(info)
    local = path.read_bytes()[info.header_offset : info.header_offset + 30]
    start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
    npy_header = 10 + int.from_bytes(member[8:10], "little")  # .npy version 1: magic, version, length, header
    torn = bytearray(path.read_bytes())
    for i in range(start + npy_header, start + npy_header + 5):  # the first 40 images of the first model
        torn[i] ^= 0xFF
    path.write_bytes(bytes(torn))
    assert ok_csv("--dir", folder, "--ci", "--cache-dir", cache) == want
    assert path.read_bytes() != bytes(torn)  # rewritten from the files
    assert ok_csv("--dir", folder, "--ci", "--cache-dir", cache) == want


def test_read_only_download_folder_ranks(tmp_path, four_models):
    """A folder of prediction files the user cannot write (a shared download) still ranks, with the
    score cache where it goes by default, and nothing is written into the folder; run as an
    unprivileged user, since root writes anywhere."""
    folder, _, _ = four_models
    want = ok_csv("--dir", folder, "--no-cache")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)
    try:
        for _ in range(2):  # the cache written, then read
            proc = run_script(SCRIPT, "--dir", folder, "--format", "csv", as_user=True)
            assert proc.returncode == 0, proc.stderr
            assert csv_rows(proc.stdout) == want
    finally:
        folder.chmod(0o755)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["short marks", "index without counts", "wrong schema type"])
def test_an_inconsistent_score_cache_reads_as_empty(tmp_path, four_models, damage):
    """A cache that passes zip's CRC but does not fit itself (marks shorter than its index, an index
    missing a field) is an empty one: the table is computed from the files and the cache rewritten."""
    import json

    folder, _, _ = four_models
    cache = tmp_path / "cache"
    want = ok_csv("--dir", folder, "--ci", "--no-cache")
    assert ok_csv("--dir", folder, "--ci", "--cache-dir", cache) == want
    [path] = cache.glob("*.npz")
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    index = json.loads(bytes(arrays["index"]).decode())
    if damage == "short marks":
        arrays["marks_acc1"] = arrays["marks_acc1"][:1]
    elif damage == "index without counts":
        del index["models"][0]["counts"]
    else:
        index["models"] = 5
    arrays["index"] = np.frombuffer(json.dumps(index).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    assert ok_csv("--dir", folder, "--ci", "--cache-dir", cache) == want
    assert ok_csv("--dir", folder, "--ci", "--cache-dir", cache) == want
