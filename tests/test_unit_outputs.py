"""Unit tests of the outputs layer: prediction files (outputs.predfiles), what a manifest records
(outputs.manifest), and an output folder's dataset files (outputs.output_folder).

Expected values are computed here: sha256 with hashlib, fingerprints from the ordered
'name\\tsize\\tlabel' lines, sorted columns and top-1 with numpy, the commit with git.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imagenet_bench.base.errors import UsageError
from imagenet_bench.datasets.layout import Dataset
from imagenet_bench.outputs import manifest, output_folder, predfiles
from imagenet_bench.outputs.predfiles import BadPredictionFile

from conftest import ROOT


def fake_dataset(n: int = 6, salt: int = 0) -> Dataset:
    """A val-set Dataset of ``n`` images that need not exist (the fingerprint reads names and sizes)."""
    paths = tuple(Path("/data/val") / f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(n))
    labels = np.arange(n, dtype=np.int64) % 3 * 100
    return Dataset(Path("/data/val"), "flat", paths, labels, tuple(1000 + i + salt for i in range(n)), "test labels")


def fingerprint(dataset: Dataset) -> str:
    lines = "".join(
        f"{p.name}\t{s}\t{int(label)}\n"
        for p, s, label in zip(dataset.paths, dataset.sizes, dataset.labels, strict=True)
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def random_outputs(n: int = 8, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    preds = np.stack([rng.choice(1000, k, replace=False) for _ in range(n)]).astype(np.int64)
    return preds, rng.dirichlet(np.ones(k), n).astype(np.float32)


# --- predfiles ----------------------------------------------------------------------------------


def test_save_then_load_round_trip_sorted_with_hashes(tmp_path):
    preds, probs = random_outputs()
    files = predfiles.model_files(tmp_path, "net", "pytorch")
    predfiles.save(files, preds, probs, {"model": "net"})
    assert files.preds_path == tmp_path / "net_pytorch_imagenet_top5preds.npy"
    order = np.argsort(-probs, axis=1, kind="stable")
    want_preds, want_probs = np.take_along_axis(preds, order, 1), np.take_along_axis(probs, order, 1)
    assert np.array_equal(np.load(files.preds_path), want_preds) and np.array_equal(
        np.load(files.probs_path), want_probs
    )

    recorded = json.loads(files.manifest_path.read_text())
    assert recorded["model"] == "net"
    assert recorded["outputs"] == {
        files.preds_path.name: sha256(files.preds_path),
        files.probs_path.name: sha256(files.probs_path),
        "n_images": 8,
        "topk": 5,
    }
    loaded = predfiles.load(files)
    assert (loaded.n, loaded.k, loaded.warnings) == (8, 5, [])
    assert np.array_equal(loaded.preds, want_preds) and np.array_equal(loaded.top1, want_preds[:, 0])
    assert loaded.manifest == recorded
    assert predfiles.outputs_complete(files) == recorded


def test_top1_of_unsorted_files_is_the_most_probable_column(tmp_path):
    preds, probs = random_outputs(seed=1)
    np.save(tmp_path / "old_keras_imagenet_top5preds.npy", preds)  # as the 2019 files: unsorted, no manifest
    np.save(tmp_path / "old_keras_imagenet_top5probs.npy", probs)
    loaded = predfiles.load(predfiles.model_files(tmp_path, "old", "keras"))
    assert loaded.manifest is None
    assert loaded.top1.tolist() == [int(row[np.argmax(p)]) for row, p in zip(preds, probs, strict=True)]


def test_outputs_complete_only_while_the_files_match_the_manifest(tmp_path):
    files = predfiles.model_files(tmp_path, "net", "keras")
    assert predfiles.outputs_complete(files) is None
    predfiles.save(files, *random_outputs(), {})
    assert predfiles.outputs_complete(files) is not None
    probs = np.load(files.probs_path)
    probs[0, 0] = 0.5
    np.save(files.probs_path, probs)
    assert predfiles.outputs_complete(files) is None


def test_discover_finds_top_level_preds_files_sorted(tmp_path):
    for name in ("b_pytorch", "a_pytorch", "z_keras", "x.y-1_keras"):
        np.save(tmp_path / f"{name}_imagenet_top5preds.npy", np.zeros((1, 5), dtype=np.int64))
    np.save(tmp_path / "c_pytorch_imagenet_top5probs.npy", np.zeros((1, 5)))  # probs alone: not a model
    np.save(tmp_path / "d_tf_imagenet_top5preds.npy", np.zeros((1, 5)))  # no such platform
    (tmp_path / "e_pytorch_imagenet_top5preds.npy.bak").write_text("x")
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "f_pytorch_imagenet_top5preds.npy", np.zeros((1, 5)))
    assert [(f.platform, f.model) for f in predfiles.discover(tmp_path)] == [
        ("keras", "x.y-1"),
        ("keras", "z"),
        ("pytorch", "a"),
        ("pytorch", "b"),
    ]
    assert predfiles.discover(tmp_path)[0].label == "keras x.y-1"


def test_model_files_refuses_bad_names():
    with pytest.raises(UsageError, match="may not be empty"):
        predfiles.model_files("/tmp", "a/b", "pytorch")
    with pytest.raises(UsageError, match="tensorflow"):
        predfiles.model_files("/tmp", "a", "tensorflow")


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((7, 5), np.int64),
        np.zeros((7, 3), np.float32),
        np.asfortranarray(np.zeros((7, 5), np.int32)),
        np.zeros((0, 5)),
        np.zeros(7),
    ],
)
def test_npy_rows_reads_the_header(tmp_path, array):
    np.save(tmp_path / "a.npy", array)
    assert predfiles.npy_rows(tmp_path / "a.npy") == len(array)


def test_npy_rows_of_a_bad_file_names_it(tmp_path):
    path = tmp_path / "x_pytorch_imagenet_top5preds.npy"
    with pytest.raises(BadPredictionFile, match="file is missing") as missing:
        predfiles.npy_rows(path)
    path.write_bytes(b"not numpy at all")
    with pytest.raises(BadPredictionFile) as bad:
        predfiles.npy_rows(path)
    assert str(path) in str(missing.value) and str(path) in str(bad.value)


def _damage(files: predfiles.ModelFiles, how: str) -> Path:
    """Damage a saved model's files; return the file the error must name."""
    preds, probs = np.load(files.preds_path), np.load(files.probs_path)
    if how == "truncated":
        files.preds_path.write_bytes(files.preds_path.read_bytes()[:100])
        return files.preds_path
    if how == "missing":
        files.probs_path.unlink()
        return files.probs_path
    if how == "edited":  # same shape, but not the bytes the manifest hashed
        probs[0, 0] += 0.01
        np.save(files.probs_path, probs)
        return files.probs_path
    files.manifest_path.unlink()  # the rest are checked without a manifest
    if how == "float":
        np.save(files.preds_path, preds.astype(np.float32))
        return files.preds_path
    if how == "int_probs":
        np.save(files.probs_path, (probs * 100).astype(np.int64))
        return files.probs_path
    if how == "shape":
        np.save(files.probs_path, probs[:, :3])
        return files.probs_path
    if how in ("class", "negative"):
        preds[2, 1] = 1000 if how == "class" else -1
        np.save(files.preds_path, preds)
        return files.preds_path
    if how == "manifest":
        files.manifest_path.write_text("[1, 2]")
        return files.manifest_path
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how", ["truncated", "missing", "edited", "float", "int_probs", "shape", "class", "negative", "manifest"]
)
def test_a_bad_file_raises_naming_it(tmp_path, how):
    files = predfiles.model_files(tmp_path, "net", "pytorch")
    predfiles.save(files, *random_outputs(), {})
    bad = _damage(files, how)
    with pytest.raises(BadPredictionFile) as raised:
        predfiles.load(files)
    assert str(raised.value).startswith(str(bad)), raised.value
    assert isinstance(raised.value, UsageError)


def test_nan_probabilities_are_kept_and_counted(tmp_path):
    files = predfiles.model_files(tmp_path, "net", "pytorch")
    preds, probs = random_outputs()
    probs[[1, 4], 2] = np.nan
    np.save(files.preds_path, preds)
    np.save(files.probs_path, probs)
    loaded = predfiles.load(files)
    assert len(loaded.warnings) == 1 and str(files.probs_path) in loaded.warnings[0]
    assert " 2 rows hold NaN" in loaded.warnings[0]


def test_renamed_sources_are_named_as_today():
    assert predfiles.current_source("keras.applications") == "keras"
    assert predfiles.current_source("timm") == "timm" and predfiles.current_source(None) is None
    assert predfiles.current_request({"source": "keras.applications", "x": 1}) == {"source": "keras", "x": 1}


# --- manifest -----------------------------------------------------------------------------------


def test_a_manifest_records_model_dataset_request_environment_and_commit():
    dataset = fake_dataset()
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    record = manifest.new("net", "pytorch", dataset, "reference", {"weights": "w", "batch": 2})
    after = datetime.datetime.now(datetime.UTC)
    assert (record["schema"], record["model"], record["platform"], record["protocol"]) == (
        "imagenet-bench/manifest/1",
        "net",
        "pytorch",
        "reference",
    )
    assert record["request"] == {"weights": "w", "batch": 2} and record["labels_source"] == "test labels"
    assert before <= datetime.datetime.fromisoformat(record["created"]) <= after
    assert record["dataset"] == {
        "fingerprint": fingerprint(dataset),
        "layout": "flat",
        "root": "/data/val",
        "n_images": 6,
        "n_classes_present": 3,
        "full_val": False,
        "subset": {},
        "test_set": None,
        "class_subset": None,
    }
    assert record["environment"]["python"] == platform.python_version()
    assert record["environment"]["numpy"] == np.__version__
    assert record["command"] == ["python", *sys.argv]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert record["git"]["commit"] == head.stdout.strip() and isinstance(record["git"]["dirty"], bool)
    json.dumps(record)  # all of it is JSON


def test_for_model_adds_the_run_then_the_platforms_extra():
    run = manifest.ModelRun(
        framework={"torch": "x"},
        weights={"sha256": "ab"},
        published=None,
        preprocessing={"crop_size": 224},
        device={"name": "cpu"},
        numerics={"amp": False},
        batch_size=32,
        workers=2,
        throughput={"images_per_s": 10.0},
        params=1_000,
        gflops=None,
    )
    record = manifest.for_model("net", "keras", fake_dataset(), "common", {}, run, {"child": {"pid": 1}, "workers": 0})
    assert record["batch_size"] == 32 and record["params"] == 1_000 and record["gflops"] is None
    assert record["preprocessing"] == {"crop_size": 224} and record["throughput"] == {"images_per_s": 10.0}
    assert record["child"] == {"pid": 1} and record["workers"] == 0  # the extra comes last
    assert record["model"] == "net" and record["dataset"]["fingerprint"] == fingerprint(fake_dataset())


# --- output_folder ------------------------------------------------------------------------------


def test_claim_writes_dataset_files_that_read_back(tmp_path):
    dataset, folder = fake_dataset(), tmp_path / "out"
    output_folder.claim(folder, dataset, "reference")
    info = output_folder.read_info(folder)
    assert (info["schema"], info["protocol"], info["fingerprint"], info["n_images"]) == (
        "imagenet-bench/dataset/1",
        "reference",
        fingerprint(dataset),
        6,
    )
    assert info["classes_present"] == [0, 100, 200] and info["full_val"] is False
    assert np.array_equal(output_folder.read_labels(folder), dataset.labels)
    assert output_folder.read_files(folder) == [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 7)]
    output_folder.claim(folder, dataset, "reference")  # the same dataset again: nothing to do
    assert output_folder.read_info(folder) == info


def test_a_folder_of_another_dataset_or_protocol_is_refused(tmp_path):
    folder = tmp_path / "out"
    output_folder.claim(folder, fake_dataset(), "reference")
    for other, protocol in (
        (fake_dataset(salt=1), "reference"),
        (fake_dataset(n=5), "reference"),
        (fake_dataset(), "common"),
    ):
        with pytest.raises(UsageError, match="another dataset or protocol") as raised:
            output_folder.validate(folder, other, protocol)
        assert str(folder) in str(raised.value)
        with pytest.raises(UsageError):
            output_folder.claim(folder, other, protocol)
    assert output_folder.read_info(folder)["fingerprint"] == fingerprint(fake_dataset())


def test_prediction_files_without_dataset_json_are_refused(tmp_path):
    np.save(tmp_path / "m_pytorch_imagenet_top5preds.npy", np.zeros((6, 5), dtype=np.int64))
    with pytest.raises(UsageError, match="unknown dataset"):
        output_folder.validate(tmp_path, fake_dataset(), "reference")
    output_folder.validate(tmp_path / "new", fake_dataset(), "reference")  # a folder yet to be made is fine
    assert not (tmp_path / "new").exists()


def test_unreadable_dataset_files_name_the_file(tmp_path):
    assert output_folder.read_info(tmp_path) is None and output_folder.read_labels(tmp_path) is None
    assert output_folder.read_files(tmp_path) is None
    (tmp_path / "dataset.json").write_text(json.dumps({"n_images": 3}))  # no fingerprint
    with pytest.raises(UsageError, match=re.escape("dataset.json")):
        output_folder.read_info(tmp_path)
    np.save(tmp_path / "dataset_labels.npy", np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(UsageError, match="1-D integer"):
        output_folder.read_labels(tmp_path)
