"""``python -m imagenet_bench.corrupt``: ImageNet-C regenerated from real val images, seeded per
image. The same bytes with one worker and with two, after a kill and a resume; Ctrl-C leaves
no temporary file and no worker; every corruption changes the image, severity 5 more than 1;
the folders it writes are recognised as ImageNet-C's test sets."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagenet_bench.base.errors import UsageError
from imagenet_bench.datasets import imagenet_c, layout, test_sets
from imagenet_bench.datasets.preprocessing import Preprocess

from conftest import ROOT, TORCH_WEIGHTS, VAL500, run_script, shared, sweep_enabled

# glass blur compiles on its first call: time to kill the run
KILLED = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur")
TWICE = ("impulse_noise", "glass_blur", "snow", "frost", "spatter", "elastic_transform")  # own generators; random draws


def _command(*args: object) -> list[str]:
    return [sys.executable, "-m", "imagenet_bench.corrupt", *map(str, args)]


def _corrupt(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(*args), cwd=ROOT, capture_output=True, text=True, timeout=600)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _images(folder: Path) -> dict[str, bytes]:
    return {k: v for k, v in _files(folder).items() if k.endswith(".JPEG")}


def _val(root: Path, classes: int, per_class: int = 1) -> Path:
    """A val folder of links to the first images of the first ``classes`` classes of the 500."""
    val = root / "val"
    for wnid_dir in sorted(p for p in shared(VAL500).iterdir() if p.is_dir())[:classes]:
        (val / wnid_dir.name).mkdir(parents=True)
        for image in sorted(wnid_dir.iterdir())[:per_class]:
            (val / wnid_dir.name / image.name).symlink_to(image)
    return val


def _wait_for(folder: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while len(list(folder.rglob("*.JPEG"))) < count:
        assert process.poll() is None, f"ended before {count} files: {process.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "no files appeared"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """Every corruption at severities 1 and 5 of two images with one worker; some with two (all
    of them in the sweep below)."""
    root = tmp_path_factory.mktemp("corrupt")
    val = _val(root, 2)
    for jobs, chosen in ((1, ("all",)), (2, TWICE)):
        result = _corrupt(val, root / f"j{jobs}", "--corruptions", *chosen, "--severities", "1,5", "-j", jobs)
        assert result.returncode == 0, result.stderr[-3000:]
    return {"val": val, "j1": root / "j1", "j2": root / "j2", "root": root}


@pytest.mark.slow
def test_one_and_two_workers_write_the_same_bytes(made):
    one, two = _images(made["j1"]), _images(made["j2"])
    assert len(one) == 2 * 19 * 2 and len(two) == 2 * len(TWICE) * 2
    assert {k: v for k, v in one.items() if k.split("/")[0] in TWICE} == two
    assert [p for p in made["j1"].rglob("*") if p.name.endswith(".tmp")] == []


@pytest.mark.slow
def test_the_record_says_how_they_were_made(made):
    import json

    record = json.loads((made["j1"] / "corruption.json").read_text())
    assert record["regenerated"] is True
    assert (record["package"], record["version"]) == ("imagecorruptions-imaug", "1.1.5")
    assert record["corruptions"] == list(imagenet_c.CORRUPTIONS) and record["severities"] == [1, 5]
    assert "sha256" in record["seed_rule"]


@pytest.mark.slow
def test_each_corruption_changes_the_image_and_severity_5_more_than_1(made):
    """Against the clean crop (torchvision's Resize(256) + CenterCrop(224), saved at JPEG 85 as the
    outputs are): each file differs, and by more at severity 5 (mean absolute pixel difference)."""
    from torchvision import transforms

    source = next(made["val"].rglob("*.JPEG"))
    with Image.open(source) as image:
        crop = transforms.CenterCrop(224)(transforms.Resize(256)(image.convert("RGB")))
    buffer = io.BytesIO()
    crop.save(buffer, format="JPEG", quality=85)
    clean = np.asarray(Image.open(buffer), dtype=float)
    difference = {}
    for path in made["j1"].glob(f"*/*/{source.parent.name}/{source.name}"):
        corruption, severity = path.parts[-4], int(path.parts[-3])
        difference[corruption, severity] = np.abs(np.asarray(Image.open(path), dtype=float) - clean).mean()
    assert len(difference) == 2 * 19
    for corruption in imagenet_c.CORRUPTIONS:
        assert difference[corruption, 1] > 0, corruption
        assert difference[corruption, 5] > difference[corruption, 1], corruption


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_bytes(made):
    out = made["root"] / "killed"
    process = subprocess.Popen(
        _command(made["val"], out, "--corruptions", *KILLED, "--severities", "1,5"),
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(out, 3, process)
    process.kill()
    process.communicate()
    partial = _images(out)
    assert 3 <= len(partial) < 2 * len(KILLED) * 2, "killed after it ended: nothing to resume"
    for name, data in partial.items():  # whatever is there is whole
        assert data == _images(made["j1"])[name]
    result = _corrupt(made["val"], out, "--corruptions", *KILLED, "--severities", "1,5")
    assert result.returncode == 0, result.stderr[-2000:]
    reference = {k: v for k, v in _images(made["j1"]).items() if k.split("/")[0] in KILLED}
    assert _images(out) == reference
    assert [p for p in out.rglob("*") if p.name.endswith(".tmp")] == []


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


@pytest.mark.slow
def test_ctrl_c_leaves_no_temporary_file_and_no_worker(made):
    out = made["root"] / "interrupted"
    process = subprocess.Popen(
        _command(made["val"], out, "--corruptions", *KILLED, "--severities", "1,5", "-j", "2"),
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(out, 2, process)
    workers = _children(process.pid)
    assert len(workers) == 2
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-2000:]
    assert [p for p in out.rglob("*") if p.name.startswith(".")] == []
    assert [w for w in workers if Path(f"/proc/{w}").exists()] == []
    assert len(_images(out)) < 2 * len(KILLED) * 2


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*classes of imagenet-c")
def test_its_folders_are_imagenet_c_test_sets(made, tmp_path):
    """A generated ``<corruption>/<severity>/`` is recognised, as the regenerated family (its
    corruption.json), the same files without one as the released; the authors' centre crop is
    the default and feeds the 224 x 224 file unchanged to a 224 model (the model's rule resizes it)."""
    folder = made["j1"] / "gaussian_noise" / "5"
    dataset = layout.scan(folder)
    assert dataset.test_set == "imagenet-c-regenerated/gaussian_noise/5"
    assert layout.scan(folder, test_set="imagenet-c-regenerated").test_set == dataset.test_set
    for wrong in ("imagenet-c", "imagenet-c/gaussian_noise/5"):
        with pytest.raises(UsageError, match=r"not --test-set .* but imagenet-c-regenerated/gaussian_noise/5; pass"):
            layout.scan(folder, test_set=wrong)
    released = tmp_path / "released" / "gaussian_noise" / "5"
    shutil.copytree(folder, released)
    assert layout.scan(released).test_set == "imagenet-c/gaussian_noise/5"
    assert layout.scan(released, test_set="imagenet-c").test_set == "imagenet-c/gaussian_noise/5"
    declared = test_sets.TEST_SETS[dataset.test_set]
    resnet = Preprocess(224, 256)
    authors, model = declared.prepare(resnet), declared.prepare(resnet, authors=False)
    assert (authors.rule, model.rule) == ("authors: centre crop, no resize", "model")
    with Image.open(dataset.paths[0]) as image:
        rgb = image.convert("RGB")
    assert np.array_equal(authors.pixels(rgb), np.asarray(rgb))
    assert not np.array_equal(model.pixels(rgb), np.asarray(rgb))  # 224 -> 256 -> crop 224
    assert declared.prepare(Preprocess(192, 219)).pixels(rgb).shape == (192, 192, 3)
    assert declared.prepare(Preprocess(299, 342)).rule == "authors: resized up to 299"
    assert imagenet_c.regenerated(folder)["version"] == "1.1.5"
    assert imagenet_c.regenerated(made["val"] / "n01440764") is None  # no corruption.json: the release


def test_every_corruption_and_severity_is_a_test_set():
    for family in ("imagenet-c", "imagenet-c-regenerated"):
        names = {n for n in test_sets.TEST_SETS if n.startswith(f"{family}/")}
        assert len(names) == 19 * 5
        assert f"{family}/glass_blur/3" in names and f"{family}/saturate/5" in names
        assert f"{family}/..." in test_sets._choices()
    assert "glass_blur" not in test_sets._choices()


def test_a_family_name_needs_a_folder_that_names_a_variant(tmp_path):
    with pytest.raises(UsageError, match=r"--test-set imagenet-c takes the variant"):
        test_sets.recognise(tmp_path / "val", "wnid", [0], "imagenet-c")


@pytest.mark.slow
def test_the_script_records_the_rule_it_ran(made, tmp_path):
    """The PyTorch script on a generated folder with real weights: the test set and the authors'
    rule (its default) are in the manifest."""
    weights = shared(TORCH_WEIGHTS["mobilenet_v2"])
    folder = made["j1"] / "snow" / "5"
    result = run_script(
        "imagenet_pytorch_get_predictions.py",
        folder,
        "-m",
        "mobilenet_v2",
        "--weights-file",
        weights,
        "-j",
        "0",
        "-o",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (manifest,) = tmp_path.rglob("*manifest*.json")
    text = manifest.read_text()
    assert '"authors: centre crop, no resize"' in text and '"imagenet-c-regenerated/snow/5"' in text


@pytest.mark.parametrize(
    "args, says",
    [
        (("{tmp}/missing", "{tmp}/out"), r"missing: VAL_DIR does not exist"),
        (("{val}", "{tmp}/out", "--severities", "0-6"), r"--severities '0-6': severities are 1 to 5"),
        (("{val}", "{tmp}/out", "--severities", "a"), r"--severities 'a': expected a range"),
        (("{val}", "{tmp}/out", "--corruptions", "fogg"), r"--corruptions 'fogg': expected benchmark"),
        (("{val}", "{val}/n01440764/c"), r"OUT is inside VAL_DIR"),
        (("{val}", "{tmp}"), r"OUT holds VAL_DIR"),
        (("{val}", "{tmp}/out", "-j", "0"), r"-j/--jobs: must be at least 1"),
    ],
)
def test_bad_input_is_one_error_line(tmp_path, args, says):
    val = _val(tmp_path, 1)
    result = _corrupt(*(a.format(tmp=tmp_path, val=val) for a in args))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and re.search(says, line), line
    assert not (tmp_path / "out").exists()


def test_only_the_command_imports_the_package():
    code = (
        "import sys; sys.argv = ['x', '--help']\nimport imagenet_pytorch_get_predictions, imagenet_benchmarking\n"
        "from imagenet_bench.datasets import test_sets, imagenet_c\n"
        "assert 'imagecorruptions' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, env=dict(os.environ))


@pytest.mark.sweep
@pytest.mark.skipif(not sweep_enabled(), reason="opt-in sweep: IMAGENET_BENCH_SWEEP=1")
def test_every_folder_is_the_same_with_one_and_two_workers(tmp_path):
    """All 19 corruptions x 5 severities of 10 images (one a class): 950 files, twice."""
    val = _val(tmp_path, 10)
    for jobs in (1, 2):
        result = _corrupt(val, tmp_path / f"j{jobs}", "--corruptions", "all", "-j", jobs)
        assert result.returncode == 0, result.stderr[-3000:]
    one = _images(tmp_path / "j1")
    assert len(one) == 950 and one == _images(tmp_path / "j2")


def test_a_preprocessing_that_runs_elsewhere_cannot_take_the_authors_crop():
    declared = test_sets.TEST_SETS["imagenet-c/fog/2"]
    with pytest.raises(UsageError, match=r"imagenet-c/fog/2: its images are centre-cropped .* use --model-rule"):
        declared.prepare(object())
    assert declared.prepare(object(), authors=False) is not None  # the model's own: nothing to change
