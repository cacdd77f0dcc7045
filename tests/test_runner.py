"""Model selection, sharding across jobs (Slurm arrays) and grouping into passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagenet_bench.base.errors import UsageError
from imagenet_bench.outputs import predfiles
from imagenet_bench.predict import runner

IDS = ["alexnet", "resnet18", "resnet50", "resnet50.IMAGENET1K_V2", "vgg16", "quantized_resnet50"]


def test_select_models_patterns_all_and_exclude():
    assert runner.select_models(IDS, ["all"]) == IDS
    assert runner.select_models(IDS, ["resnet*"]) == ["resnet18", "resnet50", "resnet50.IMAGENET1K_V2"]
    assert runner.select_models(IDS, ["vgg16", "alexnet"]) == ["alexnet", "vgg16"]  # registry order
    assert runner.select_models(IDS, ["all"], ["*.IMAGENET1K_V2", "quantized_*"]) == IDS[:3] + ["vgg16"]
    with pytest.raises(UsageError, match="'nope': no such model"):
        runner.select_models(IDS, ["nope"])


def test_shards_cover_every_model_exactly_once():
    models = [f"m{i}" for i in range(23)]
    parts = [runner.shard(models, (i, 5)) for i in range(5)]
    assert sorted(m for p in parts for m in p) == sorted(models)
    assert sum(len(p) for p in parts) == len(models)
    assert runner.shard(models, None) == models


def test_shard_from_flag_or_slurm_array():
    assert runner.parse_shard("2/4", {}) == (2, 4)
    assert runner.parse_shard(None, {}) is None
    env = {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert runner.parse_shard(None, env) == (2, 3)
    assert runner.parse_shard("0/2", env) == (0, 2)  # the flag wins
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(UsageError, match="--model-shard"):
            runner.parse_shard(bad, {})
    with pytest.raises(UsageError, match="N must be at least 1"):
        runner.parse_shard("0/0", {})


def _job(name: str) -> runner.Job:
    return runner.Job(name, predfiles.ModelFiles(Path("."), name, "pytorch"), {})


def test_groups_by_key_size_and_memory():
    jobs = [_job(n) for n in ("a1", "b1", "a2", "a3", "a4", "b2", "big")]
    key = lambda j: "big" if j.model == "big" else j.model[0]
    size = lambda j: 100 if j.model == "big" else 10
    groups = runner.group(jobs, key, max_size=3, size_of=size, max_bytes=25)
    assert [[j.model for j in g] for g in groups] == [["a1", "a2"], ["a3", "a4"], ["b1", "b2"], ["big"]]
    groups = runner.group(jobs, key, max_size=1, size_of=size, max_bytes=25)
    assert all(len(g) == 1 for g in groups) and len(groups) == 7


def test_stepped_or_broken_slurm_arrays_are_refused():
    stepped = {"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4"}
    with pytest.raises(UsageError, match="contiguous array"):
        runner.parse_shard(None, stepped)
    with pytest.raises(UsageError, match="not integers"):
        runner.parse_shard(None, {"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"})


def _output_job(folder, model):
    return runner.Job(model, predfiles.model_files(folder, model, "keras"), {"m": model})


def _result(job):
    return runner.Result(
        np.tile(np.arange(5), (3, 1)), np.full((3, 5), 0.2, dtype=np.float32), {"request": job.request}
    )


def test_an_image_that_cannot_be_decoded_ends_the_run_with_one_error_line(tmp_path, capsys):
    """Every model would meet the same bad file: the first failure is reported, the models
    after it are not run, and the exit status is 2. Other failures do not stop the run."""
    from imagenet_bench.base.errors import ImageError

    started = []

    def run_one(job):
        started.append(job.model)
        if job.model == "other":
            raise RuntimeError("boom")
        if job.model != "a":
            raise ImageError("val/x.JPEG", "OSError: truncated")
        return _result(job)

    jobs = [_output_job(tmp_path, m) for m in ("a", "other", "b", "c", "d")]
    status = runner.run_jobs(jobs, run_one)
    err = capsys.readouterr().err
    assert status == 2 and started == ["a", "other", "b"]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: other failed: boom",
        "error: val/x.JPEG: cannot decode image (OSError: truncated); replace the file or remove it from the val set",
    ]
    assert "1 done, 0 skipped (already complete), 2 failed: other, b; 2 not run" in err
    assert (tmp_path / "a_keras_imagenet_manifest.json").exists()


def test_a_bad_image_in_a_grouped_pass_is_reported_once(tmp_path, capsys):
    from imagenet_bench.base.errors import ImageError

    groups = [[_output_job(tmp_path, "a"), _output_job(tmp_path, "b")], [_output_job(tmp_path, "c")]]
    passes = []

    def run_group(jobs):
        passes.append([job.model for job in jobs])
        raise ImageError("val/x.JPEG", "OSError: truncated")

    status = runner.run_groups(groups, run_group, [])
    err = capsys.readouterr().err
    assert status == 2 and passes == [["a", "b"]]
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: val/x.JPEG: cannot decode image (OSError: truncated); replace the file or remove it from the val set"
    ]
    assert "0 done, 0 skipped (already complete), 2 failed: a, b; 1 not run" in err


def test_a_bad_image_under_parallel_jobs_is_reported_once_and_finished_work_is_kept(tmp_path, capsys):
    import threading

    from imagenet_bench.base.errors import ImageError

    release = threading.Event()

    def run_one(job):
        if job.model == "slow":  # runs alongside the failure, and ends after it
            release.wait(10)
            return _result(job)
        release.set()
        raise ImageError("val/x.JPEG", "OSError: truncated")

    jobs = [_output_job(tmp_path, m) for m in ("slow", "b", "c", "d", "e")]
    status = runner.run_jobs(jobs, run_one, parallel=2)
    err = capsys.readouterr().err
    assert status == 2
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert (tmp_path / "slow_keras_imagenet_manifest.json").exists()
    assert "1 done, 0 skipped" in err  # the others failed on the image, or never started


def test_one_weights_file_list_serves_every_job_of_a_shard_array(tmp_path):
    """A Slurm array runs one command line: each job takes its own models' ID=PATH values
    and passes over those of the other shards' models, but still refuses an unknown id."""
    import argparse

    from imagenet_bench.predict import cli, sweep

    paths = {m: tmp_path / f"{m}.pth" for m in ("a", "b", "c")}
    for path in paths.values():
        path.write_bytes(b"x")
    values = [f"{m}={p}" for m, p in paths.items()]
    args = argparse.Namespace(model=["a", "b", "c"], exclude=[], protocol="reference")
    seen = {}
    for index in range(2):
        _shares, mine, elsewhere = sweep.this_job(1, cli.choose_models(["a", "b", "c", "d"], args, []), (index, 2))
        assert sorted(mine + elsewhere) == ["a", "b", "c"] and not set(mine) & set(elsewhere)
        seen.update(runner.parse_weights_files(values, mine, other_shards=elsewhere))
        assert set(runner.parse_weights_files(values, mine, other_shards=elsewhere)) == set(mine)
    assert seen == paths
    with pytest.raises(UsageError, match="d is not among the selected models"):
        runner.parse_weights_files([*values, f"d={paths['a']}"], ["a", "c"], other_shards=["b"])
