"""Issue 9's bad inputs: each gets one clear line (or is converted correctly), in both
prediction scripts, never a traceback.

File names that cannot be recorded as one line of UTF-8 text, an image file that is not an
image, another framework's weights file, numeric flags out of range, earlier outputs made
with other options, high-bit-depth images, a GPU that does not exist, and the libraries'
start-up noise. Expected values come from numpy or hashlib here, never from the code under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import NO_NETWORK, ROOT, VAL500, WEIGHTS, bad_run, run_script, shared

TORCH, KERAS = "imagenet_pytorch_get_predictions.py", "imagenet_keras_get_predictions.py"
MNV2 = "torchvision_mobilenet_v2_dequantized.pth"
QMNV2 = "torchvision_quantized_mobilenet_v2_qnnpack.pth"
KMN025 = "keras_mobilenet_alpha0.25_128.weights.h5"
KMNV2 = "keras_mobilenetv2_alpha1.0_224.weights.h5"
ONE_MODEL = {TORCH: ["-m", "mobilenet_v2", "-j", "0"], KERAS: ["-m", "mobilenet_0.25_128"]}


def _weights(script: str) -> list[str]:
    name = MNV2 if script == TORCH else KMN025
    return ["--weights-file", str(shared(WEIGHTS / name))]


def _class_folder(root: Path, n: int = 2) -> Path:
    """An ImageFolder with one class and ``n`` small real-looking JPEGs."""
    folder = root / "n01440764"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(
            folder / f"ILSVRC2012_val_0000000{i + 1}.JPEG"
        )
    return folder


# --- 1: file names -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("script", [TORCH, KERAS])
@pytest.mark.parametrize(
    "name, says",
    [
        (b"bad\xff\xfename.JPEG", r"bad\xff\xfename.JPEG: file name is not valid UTF-8"),
        (b"two\nlines.JPEG", r"two\nlines.JPEG: file name holds a line break"),
    ],
)
def test_a_name_that_is_not_one_line_of_utf8_is_refused_by_name(tmp_path, script, name, says):
    folder = _class_folder(tmp_path / "val")
    with open(os.path.join(os.fsencode(folder), name), "wb") as handle:
        handle.write((folder / "ILSVRC2012_val_00000001.JPEG").read_bytes())
    line, out = bad_run(script, tmp_path / "out", tmp_path / "val", *ONE_MODEL[script])
    assert says in line and "rename the file" in line
    assert not out.exists()


def test_fingerprints_of_normal_names_are_unchanged():
    """The fingerprint is sha256 over 'name<TAB>size<TAB>label<LF>' in canonical order: computed
    here from the files themselves, it must equal the layout's (the real-weight tests compare
    files made before this change byte for byte)."""
    from imagenet_bench.datasets import layout

    root = shared(VAL500)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    from imagenet_bench.base.classes import wnid_to_index

    index = wnid_to_index()
    rows = sorted(
        (index[f.name], p.name, p.stat().st_size) for f in folders for p in f.iterdir() if p.suffix == ".JPEG"
    )
    digest = hashlib.sha256()
    for label, name, size in rows:
        digest.update(f"{name}\t{size}\t{label}\n".encode())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert layout.scan(root).fingerprint == digest.hexdigest()


# --- 5: an image file that is not an image ------------------------------------------------------


@pytest.mark.slow
def test_both_scripts_print_the_same_line_for_a_file_that_is_not_an_image(tmp_path):
    """A zero-byte .JPEG; PyTorch through a DataLoader worker process (-j 1)."""
    folder = _class_folder(tmp_path / "val")
    (folder / "ILSVRC2012_val_00000002.JPEG").write_bytes(b"")
    lines = {}
    for script, extra in ((TORCH, ["-j", "1"]), (KERAS, [])):
        line, out = bad_run(
            script, tmp_path / f"out-{len(lines)}", tmp_path / "val", *ONE_MODEL[script][:2], *_weights(script), *extra
        )
        lines[(script, *extra)] = line
        assert not out.exists()
    expected = (
        f"error: {folder}/ILSVRC2012_val_00000002.JPEG: cannot decode image (UnidentifiedImageError: "
        "cannot identify image file); replace the file or remove it from the val set"
    )
    assert set(lines.values()) == {expected}, lines


def test_a_text_file_named_jpeg_names_the_file_once():
    from imagenet_bench.base.errors import ImageError
    from imagenet_bench.datasets.images import load_rgb

    path = Path(__file__)  # text
    with pytest.raises(ImageError) as refused:
        load_rgb(path)
    assert str(refused.value) == (
        f"{path}: cannot decode image (UnidentifiedImageError: cannot identify image "
        "file); replace the file or remove it from the val set"
    )


def test_an_image_error_travels_as_an_object():
    """Pickled (DataLoader workers, torchrun ranks) and as a JSON record (the Keras model
    process), it comes back as an ImageError with its file and reason."""
    from imagenet_bench.base import errors
    from imagenet_bench.predict import torch_distributed

    exc = errors.ImageError("/val/n1/x.JPEG", "UnidentifiedImageError: cannot identify image file")
    for back in (
        pickle.loads(pickle.dumps(exc)),
        pickle.loads(pickle.dumps(torch_distributed.portable(exc))),
        errors.from_record(json.loads(json.dumps(errors.to_record(exc)))),
    ):
        assert type(back) is errors.ImageError and back.path == exc.path and back.reason == exc.reason
        assert str(back) == str(exc)
    usage = errors.from_record(errors.to_record(errors.UsageError("bad\nflag")))
    assert type(usage) is errors.UsageError and str(usage) == "bad flag"
    other = errors.from_record(errors.to_record(ValueError("boom")), RuntimeError)
    assert type(other) is RuntimeError and str(other) == "boom"


# --- 6: another framework's weights file ---------------------------------------------------------


@pytest.mark.slow
def test_a_keras_h5_given_to_the_pytorch_script_is_one_line(tmp_path):
    keras_file = shared(WEIGHTS / KMNV2)
    result = run_script(
        TORCH,
        shared(VAL500),
        "-m",
        "mobilenet_v2",
        "--weights-file",
        keras_file,
        "--limit",
        "2",
        "-j",
        "0",
        "-o",
        tmp_path / "out",
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: mobilenet_v2 failed: {keras_file}: --weights-file is an HDF5 file (Keras weights, .h5), "
        "not a PyTorch state dict saved by torch.save (.pth, .pt)"
    ]
    assert "Weights only load failed" not in result.stderr and "Traceback" not in result.stderr


# --- 7: numeric flags ----------------------------------------------------------------------------

NUMERIC = [
    (TORCH, ["--group-memory", "nan"], "argument --group-memory: must be a finite number of GiB above 0, not nan"),
    (TORCH, ["--group-memory", "-1"], "argument --group-memory: must be a finite number of GiB above 0, not -1"),
    (TORCH, ["--group-memory", "lots"], "argument --group-memory: must be a number of GiB, not 'lots'"),
    (TORCH, ["--group-size", "0"], "argument --group-size: must be at least 1, not 0"),
    (TORCH, ["-g", "-1"], "argument -g/--gpu: must be at least 0, not -1"),
    (TORCH, ["-k", "2000"], "argument -k/--topk: must be at most the 1000 classes, not 2000"),
    (TORCH, ["-k", "4"], "argument -k/--topk: must be at least 5, not 4"),
    (TORCH, ["-j", "-1"], "argument -j/--workers: must be at least 0, not -1"),
    (TORCH, ["--limit", "0"], "argument --limit: must be at least 1, not 0"),
    (TORCH, ["--per-class", "1.5"], "argument --per-class: must be an integer, not '1.5'"),
    (KERAS, ["-k", "1001"], "argument -k/--topk: must be at most the 1000 classes, not 1001"),
    (KERAS, ["-b", "0"], "argument -b/--batch-size: must be at least 1, not 0"),
    (KERAS, ["--check-batching", "0"], "argument --check-batching: must be at least 1, not 0"),
    (KERAS, ["-g", "-2"], "argument -g/--gpu: must be at least 0, not -2"),
]


@pytest.mark.parametrize("script, flags, says", NUMERIC, ids=[f"{s[:5]} {' '.join(f)}" for s, f, _ in NUMERIC])
def test_numeric_flags_are_checked(tmp_path, script, flags, says):
    line, out = bad_run(script, tmp_path / "out", tmp_path / "val", *ONE_MODEL[script], *flags)
    assert line.startswith(f"error: {says}"), line
    assert not out.exists()


def test_the_topk_limit_is_a_parameter():
    """Class subsets will score on fewer classes: -k is checked against the number given."""
    from imagenet_bench.predict import cli

    parser = cli.new_parser("x")
    cli.add_run_args(parser, Path("out"), "pytorch", 1, "", "")
    args = parser.parse_args(["-k", "10"])
    cli.validate_args(parser, args, num_classes=10)
    with pytest.raises(SystemExit) as stop:
        cli.validate_args(parser, args, num_classes=9)
    assert stop.value.code == 2


# --- 8: earlier outputs made with other options ---------------------------------------------------


def _fake_outputs(folder: Path, model: str, request: dict):
    from imagenet_bench.outputs import predfiles
    from imagenet_bench.predict import runner

    files = predfiles.model_files(folder, model, "pytorch")
    predfiles.save(files, np.tile(np.arange(5), (2, 1)), np.full((2, 5), 0.2, dtype=np.float32), {"request": request})
    return runner.Job(model, files, dict(request))


def test_outputs_of_other_options_are_refused_for_every_model_at_once(tmp_path):
    from imagenet_bench.base.errors import UsageError
    from imagenet_bench.predict import runner

    same = _fake_outputs(tmp_path, "same", {"topk": 5, "amp": None})
    jobs = [same]
    for i in range(5):
        job = _fake_outputs(tmp_path, f"m{i}", {"topk": 10, "amp": None})
        job.request["topk"] = 5
        jobs.append(job)
    jobs[1].request["amp"] = "bf16"
    with pytest.raises(UsageError) as refused:
        runner.pending(jobs, overwrite=False)
    line = str(refused.value)
    assert "\n" not in line and str(tmp_path) in line
    assert 'm0 (amp null there, "bf16" asked, topk 10 there, 5 asked); m1 (topk 10 there, 5 asked)' in line
    assert "and 2 more" in line and "--overwrite" in line and "another -o/--output-dir" in line
    to_run, skipped = runner.pending(jobs, overwrite=True)
    assert [j.model for j in to_run] == [j.model for j in jobs] and skipped == []
    assert runner.pending([same], overwrite=False) == ([], ["same"])  # resume: the same request


def test_also_needs_still_reruns_outputs_of_the_same_request(tmp_path):
    """The Keras --check-batching rule: the same request, but the manifest lacks the check."""
    from imagenet_bench.predict import runner

    job = _fake_outputs(tmp_path, "a", {"topk": 5})
    job.also_needs = lambda manifest: "check_batching" in manifest
    assert runner.pending([job], overwrite=False) == ([job], [])


@pytest.mark.slow
def test_a_rerun_with_another_topk_keeps_the_earlier_outputs(tmp_path):
    out = tmp_path / "out"
    args = [
        shared(VAL500),
        "-m",
        "mobilenet_v2",
        "--weights-file",
        shared(WEIGHTS / MNV2),
        "--limit",
        "4",
        "-j",
        "0",
        "-o",
        out,
    ]
    first = run_script(TORCH, *args, "-k", "10")
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    refused = run_script(TORCH, *args, "-k", "5")
    assert refused.returncode == 2, refused.stderr
    [line] = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert line == (
        f"error: {out}: holds complete outputs made with other options: mobilenet_v2 (topk 10 there, "
        "5 asked); pass --overwrite to replace them, or another -o/--output-dir"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    replaced = run_script(TORCH, *args, "-k", "5", "--overwrite")
    assert replaced.returncode == 0 and "1 done" in replaced.stderr
    assert np.load(out / "mobilenet_v2_pytorch_imagenet_top5preds.npy").shape == (4, 5)


# --- 11: high bit depth and other pixel modes -----------------------------------------------------


def _png16(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (big-endian samples, filter 0), grey or RGB by shape."""
    height, width = pixels.shape[:2]
    color_type = {2: 0, 3: 2}[pixels.ndim]
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_16_bit_images_keep_their_high_byte(tmp_path):
    from imagenet_bench.datasets.images import load_rgb

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 65536, (24, 32), dtype=np.uint16)
    grey[0, :4] = [0, 255, 256, 65535]
    (tmp_path / "grey.png").write_bytes(_png16(grey))
    got = np.asarray(load_rgb(tmp_path / "grey.png"))
    expected = (grey // 256).astype(np.uint8)
    np.testing.assert_array_equal(got, np.stack([expected] * 3, axis=-1))
    assert got[0, :4, 0].tolist() == [0, 0, 1, 255]  # not clipped to white
    rgb = rng.integers(0, 65536, (24, 32, 3), dtype=np.uint16)
    (tmp_path / "rgb.png").write_bytes(_png16(rgb))
    np.testing.assert_array_equal(np.asarray(load_rgb(tmp_path / "rgb.png")), (rgb // 256).astype(np.uint8))


def test_float_pixels_are_refused_by_name(tmp_path):
    from imagenet_bench.base.errors import ImageError
    from imagenet_bench.datasets.images import load_rgb

    path = tmp_path / "float.tiff"
    Image.fromarray(np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)).save(path)
    with pytest.raises(ImageError, match=re.escape(f"{path}: cannot decode image (32-bit float pixels (PIL mode F)")):
        load_rgb(path)


def test_alpha_palette_and_cmyk_images_convert_as_expected(tmp_path):
    from imagenet_bench.datasets.images import load_rgb

    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    alpha = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    Image.fromarray(np.stack([grey, alpha], axis=-1), mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(np.asarray(load_rgb(tmp_path / "la.png")), np.stack([grey] * 3, axis=-1))
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    index = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette.tobytes())
    image.save(tmp_path / "p.png")
    np.testing.assert_array_equal(np.asarray(load_rgb(tmp_path / "p.png")), palette[index])
    cmyk = rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "cmyk.tiff")
    c, m, y, k = (cmyk[..., i].astype(int) for i in range(4))
    expected = np.stack([np.round((255 - v) * (255 - k) / 255) for v in (c, m, y)], axis=-1)  # 255(1-c)(1-k)
    np.testing.assert_array_equal(np.asarray(load_rgb(tmp_path / "cmyk.tiff")), expected)


def test_16_bit_greyscale_tiffs_keep_their_high_byte(tmp_path):
    """PIL's I;16 (little-endian, as PIL writes a uint16 array) and I;16B TIFFs."""
    from imagenet_bench.datasets.images import load_rgb

    grey = np.random.default_rng(5).integers(0, 65536, (24, 32), dtype=np.uint16)
    grey[0, :4] = [0, 255, 256, 65535]
    Image.fromarray(grey).save(tmp_path / "little.tiff")
    Image.frombytes("I;16B", (32, 24), grey.astype(">u2").tobytes()).save(tmp_path / "big.tiff")
    expected = np.stack([(grey // 256).astype(np.uint8)] * 3, axis=-1)
    for name, mode in (("little.tiff", "I;16"), ("big.tiff", "I;16B")):
        with Image.open(tmp_path / name) as image:
            assert image.mode == mode  # what the test means to give the loader
        got = np.asarray(load_rgb(tmp_path / name))
        np.testing.assert_array_equal(got, expected)
        assert got[0, :4, 0].tolist() == [0, 0, 1, 255], name  # the high byte, not PIL's clip to white


def test_palette_with_alpha_drops_the_alpha(tmp_path):
    """A PA image (palette index plus alpha, here a TIFF) becomes its palette colours."""
    from imagenet_bench.datasets.images import load_rgb

    rng = np.random.default_rng(6)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    index = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette.tobytes())
    image = image.convert("PA")
    image.putalpha(Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)))
    image.save(tmp_path / "pa.tiff")
    with Image.open(tmp_path / "pa.tiff") as reread:
        assert reread.mode == "PA"
    np.testing.assert_array_equal(np.asarray(load_rgb(tmp_path / "pa.tiff")), palette[index])


@pytest.mark.slow
def test_32_bit_integer_pixels_end_the_run_naming_the_file(tmp_path):
    """PIL mode I (a TIFF of int32 pixels) in a val folder: the PyTorch script ends with one
    line naming the file and the mode, exit 2, nothing written."""
    folder = _class_folder(tmp_path / "val")
    path = folder / "ILSVRC2012_val_00000003.tiff"
    Image.fromarray(np.arange(48 * 64, dtype=np.int32).reshape(48, 64) * 1000).save(path)
    with Image.open(path) as image:
        assert image.mode == "I"
    line, out = bad_run(TORCH, tmp_path / "out", tmp_path / "val", *ONE_MODEL[TORCH], *_weights(TORCH))
    assert line == (
        f"error: {path}: cannot decode image (32-bit integer pixels (PIL mode I) have no standard 8-bit "
        "range; convert the file to 8-bit); replace the file or remove it from the val set"
    ), line
    assert not out.exists() or not list(out.glob("*_manifest.json"))


# --- 12: a GPU that does not exist ----------------------------------------------------------------


@pytest.mark.slow
def test_keras_refuses_a_gpu_that_does_not_exist(tmp_path):
    from imagenet_bench.predict import cuda_devices

    val = _class_folder(tmp_path / "val").parent
    line, _ = bad_run(
        KERAS, tmp_path / "out", val, *ONE_MODEL[KERAS], "-g", "1", env={"IMAGENET_BENCH_ASSUME_GPUS": "1"}
    )
    assert line == ("error: -g 1: this machine has 1 GPU(s), indices 0..0; leave out -g/--gpus to run on the CPU")
    line, _ = bad_run(
        KERAS, tmp_path / "out", val, *ONE_MODEL[KERAS], "--gpus", "0,1", env={"IMAGENET_BENCH_ASSUME_GPUS": "1"}
    )
    assert line.startswith("error: --gpus 0,1: this machine has 1 GPU(s)")
    if cuda_devices.probe().count == 0:  # this machine, as it is: the driver is asked
        line, _ = bad_run(KERAS, tmp_path / "out", val, *ONE_MODEL[KERAS], "-g", "0")
        assert line.startswith("error: -g 0: this machine has no GPU that CUDA can use")


# --- 13: the libraries' noise --------------------------------------------------------------------

TORCH_NOISE = ("TypedStorage", "quantize_per_tensor", "calculate_qparams")
KERAS_NOISE = re.compile(r"cuInit|absl::InitializeLog|oneDNN|^[IWE]\d{4} \d\d:\d\d", re.MULTILINE)


@pytest.mark.slow
def test_pytorch_noise_only_with_verbose(tmp_path):
    args = [
        shared(VAL500),
        "-m",
        "quantized_mobilenet_v2",
        "--weights-file",
        shared(WEIGHTS / QMNV2),
        "--limit",
        "2",
        "-j",
        "0",
    ]
    quiet = run_script(TORCH, *args, "-o", tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert not [noise for noise in TORCH_NOISE if noise in quiet.stderr], quiet.stderr
    loud = run_script(TORCH, *args, "-o", tmp_path / "loud", "-v")
    assert loud.returncode == 0 and "TypedStorage" in loud.stderr, loud.stderr


@pytest.mark.slow
def test_keras_noise_only_with_verbose(tmp_path):
    args = [shared(VAL500), "-m", "mobilenet_0.25_128", "--weights-file", shared(WEIGHTS / KMN025), "--limit", "2"]
    quiet = run_script(KERAS, *args, "-o", tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert not KERAS_NOISE.search(quiet.stderr), quiet.stderr
    assert "mobilenet_0.25_128: Acc@1" in quiet.stderr  # the script's own lines are all there
    loud = run_script(KERAS, *args, "-o", tmp_path / "loud", "--verbose")
    assert loud.returncode == 0 and KERAS_NOISE.search(loud.stderr), loud.stderr


TRACEBACK = re.compile(
    r"^Traceback \(most recent call last\):\n(?:  .*\n)+RuntimeError: cannot download https://", re.M
)


@pytest.mark.slow
@pytest.mark.parametrize("script, model", [(TORCH, "squeezenet1_1"), (KERAS, "mobilenet_0.25_160")])
def test_verbose_shows_the_traceback_of_a_model_that_failed(tmp_path, script, model):
    """A model whose weights cannot be downloaded (no weights file; the download goes to a closed
    port whatever the network) fails with one line; -v adds the traceback down to the raise
    (for Keras, in the model process). Bad input stays one line with -v."""
    env = {**NO_NETWORK, "TORCH_HOME": str(tmp_path / "th"), "KERAS_HOME": str(tmp_path / "kh")}
    args = [shared(VAL500), "-m", model, "--limit", "2", *(["-j", "0"] if script == TORCH else [])]
    quiet = run_script(script, *args, "-o", tmp_path / "quiet", env=env)
    loud = run_script(script, *args, "-o", tmp_path / "loud", "-v", env=env)
    for result in (quiet, loud):
        assert result.returncode == 1, result.stderr
        assert f"error: {model} failed: cannot download https://" in result.stderr
    assert "Traceback" not in quiet.stderr, quiet.stderr
    assert TRACEBACK.search(loud.stderr), loud.stderr
    if script == TORCH:  # a weights file that does not fit the model is bad input: no traceback, even with -v
        weights = ["--weights-file", shared(WEIGHTS / MNV2)]
        bad = run_script(TORCH, shared(VAL500), "-m", "resnet18", "-j", "0", *weights, "-o", tmp_path / "bad", "-v")
        assert bad.returncode == 2 and "does not fit resnet18" in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr, bad.stderr


def test_a_library_warning_that_matters_is_shown_without_verbose(capsys):
    from imagenet_bench.base import errors

    library = "/usr/lib/python3/site-packages/torch/nn/modules/module.py"
    try:
        for verbose in (False, True):
            errors.show_library_messages(verbose)
            errors._show_warning(UserWarning("TypedStorage is deprecated"), UserWarning, library, 1)
            errors._show_warning(UserWarning("Missing key(s) in state_dict: fc.weight"), UserWarning, library, 1)
            errors._show_warning(UserWarning("3 of 1000 classes present"), UserWarning, errors.__file__, 1)
            err = capsys.readouterr().err
            assert "Missing key(s) in state_dict: fc.weight" in err
            assert "warning: 3 of 1000 classes present" in err
            assert ("TypedStorage" in err) == verbose
    finally:
        errors.show_library_messages(False)


@pytest.mark.slow
@pytest.mark.parametrize("script", [TORCH, KERAS])
def test_read_only_output_and_cache_folders_are_refused(tmp_path, script):
    """The README's promise: an -o or --cache-dir that cannot be written is one error line naming
    the flag, exit 2, before anything runs; checked as an unprivileged user (root writes anywhere)."""
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o555)
    base = [shared(VAL500), *ONE_MODEL[script], *_weights(script), "--limit", "2"]
    for flags, named in (
        (["-o", read_only], f"-o/--output-dir {read_only}: read-only"),
        (["--cache-dir", read_only / "cache", "-o", tmp_path / "out"], f"--cache-dir {read_only / 'cache'}: read-only"),
    ):
        result = run_script(script, *base, *flags, as_user=True)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == 2 and len(errors) == 1, result.stderr
        assert errors[0].startswith(f"error: {named}"), errors
        assert list(read_only.iterdir()) == [] and not (tmp_path / "out").exists()


# --- the Keras script's temporary folder -----------------------------------------------------------

_NO_TEMP_FOLDER = (
    'set -e; mount -t tmpfs none /var/tmp; mkdir /var/tmp/out; mount --bind "$0" /var/tmp/out; '
    'mount -o remount,ro /var/tmp; mount -t tmpfs -o ro none /tmp; cd /tmp; exec "$@"'
)


@pytest.mark.slow
def test_keras_without_any_usable_temporary_folder_is_one_error_line(tmp_path):
    """TMPDIR a missing folder, /tmp, /var/tmp and the current folder read-only (in a mount
    namespace of its own, where /var/tmp/out is this test's folder): one error line, exit 2,
    no prediction file."""
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        message = f"no user and mount namespace (unshare: {probe.stderr.decode().strip()})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    args = [str(shared(VAL500)), *ONE_MODEL[KERAS], *map(str, _weights(KERAS)), "--limit", "2", "-o", "/var/tmp/out/o"]
    env = {k: v for k, v in os.environ.items() if k not in ("TEMP", "TMP")}
    env.update(TMPDIR=str(tmp_path / "missing"), PYTHONUNBUFFERED="1")
    command = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", _NO_TEMP_FOLDER, str(tmp_path)]
    result = subprocess.run(
        [*command, sys.executable, str(ROOT / KERAS), *args], capture_output=True, text=True, env=env, timeout=300
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr
    assert errors[0] == (
        "error: no writable temporary folder for the model processes' job folders: set TMPDIR to a folder you can write"
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "missing").exists()
    assert not list(tmp_path.glob("o/*.npy"))
