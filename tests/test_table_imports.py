"""The table script's imports (no framework, nothing a plain table has no use for) and
--download of the 2019 files from a local server.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SEED, SHARED, VAL500, VAL_FULL_TXT, shared
from helpers import HEAVY, bench, closed_port_url, csv_rows, run_light, serving, val500_models


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra, allowed",
    [
        ((), ()),
        (("--published", "--format", "json"), ()),
        (("--real-labels", "--val-ground-truth", VAL_FULL_TXT), ()),
        (("--ci",), ("scipy",)),
        (("--factors", "--calibration", "--selective", "--val-ground-truth", VAL_FULL_TXT, "--no-cache"), ()),
        (
            (
                "--clean-labels",
                SHARED / "data" / "label-errors" / "imagenet_mturk.json",
                "--val-ground-truth",
                VAL_FULL_TXT,
                "--speed",
                "--sort",
                "Clean@1",
                "--no-cache",
            ),
            (),
        ),
    ],
    ids=["plain", "published-json", "real-labels", "ci", "factors", "clean-speed-sort"],
)
def test_never_imports_heavy_modules(extra, allowed):
    shared(SEED)
    proc = run_light(
        "-k",
        SEED / "keras_imagenet",
        "-p",
        SEED / "pytorch_imagenet",
        *extra,
        allowed=allowed,
        heavy=HEAVY + ("imagenet_x", "pandas"),
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) >= 34


# Modules a plain table (no option) has no use for. At 34 models most of the table's time over a
# bare numpy script is fixed cost, and importing (here: compiling) each of these is part of it.
NOT_FOR_A_PLAIN_TABLE = HEAVY + (
    "imagenet_bench.report.label_issues",
    "imagenet_bench.scoring.clean_labels",
    "imagenet_bench.datasets.layout",
    "imagenet_bench.models.published",
    "PIL",
    "socket",
    "numpy.ma",
    "imagenet_x",
    "pandas",
)


def test_plain_table_imports_only_what_it_uses(tmp_path):
    shared(SEED)
    proc = run_light(
        "-k",
        SEED / "keras_imagenet",
        "-p",
        SEED / "pytorch_imagenet",
        "--cache-dir",
        tmp_path,
        heavy=NOT_FOR_A_PLAIN_TABLE,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2 + 34
    assert list(tmp_path.glob("*.npz")), "the score cache was not written (its write is part of the test)"


def test_never_imports_heavy_modules_with_val_dir_and_selection(tmp_path):
    shared(VAL500)
    folder, _labels, _ = val500_models(tmp_path)
    np.save(tmp_path / "keep.npy", np.arange(100))
    proc = run_light(VAL500, "--dir", folder, "-j", tmp_path / "keep.npy", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert len(csv_rows(proc.stdout)) == 2


@pytest.fixture
def seed_server():
    with serving(shared(SEED)) as url:
        yield url


@pytest.mark.slow
def test_download_then_rank(tmp_path, seed_server, seed_table):
    dest = tmp_path / "dl"
    proc = run_light(
        "--download",
        "seed-2019",
        "--download-dir",
        dest,
        "--download-url",
        seed_server,
        "--format",
        "csv",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(list(dest.glob("*_imagenet/*.npy"))) == 68
    rows = csv_rows(proc.stdout)
    assert [(r["Platform"], r["Model"], r["Acc@1"], r["Acc@5"]) for r in rows] == [
        (p, m, r["acc1"], r["acc5"]) for (p, m), r in seed_table.items()
    ]


@pytest.mark.slow
def test_download_offline_is_one_error_line(tmp_path):
    url = closed_port_url()
    proc = bench("--download", "seed-2019", "--download-dir", tmp_path / "dl", "--download-url", url)
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert url in errors[0] and "offline?" in errors[0]
    assert str(tmp_path / "dl" / "keras_imagenet") in errors[0]
