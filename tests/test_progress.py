"""The run's progress line and time estimate (imagenet_bench.predict.progress), on a fake clock."""

from __future__ import annotations

import io

import pytest

from imagenet_bench.predict.progress import Progress, duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_estimate_is_weighted_by_cost_and_skips_teach_nothing():
    clock, out = Clock(), io.StringIO()
    progress = Progress(["a", "b", "c", "d"], {"a": 1.0, "b": 3.0, "c": None, "d": 2.0}, stream=out, clock=clock)
    assert progress.cost["c"] == pytest.approx(2.0)  # unknown cost: the mean of the known ones
    progress.skip(["d"])  # outputs exist
    progress.start(["a"])
    assert "[1/4 done] a: estimating" in out.getvalue()
    clock.now += 10.0
    progress.finish()
    # 10 s for cost 1; left: b (3) + c (2) = 5 -> 50 s
    assert progress.eta_seconds() == pytest.approx(50.0)
    progress.start(["b", "c"], "group of 2")
    assert out.getvalue().splitlines()[-1] == "[2/4 done] group of 2: about 50s left (weighted by GFLOPs)"
    clock.now += 20.0
    progress.finish()
    assert progress.eta_seconds() == pytest.approx(0.0)
    assert progress.summary() == "4 of 4 models in 30s"


def test_failed_models_count_as_done_but_not_in_the_rate():
    clock = Clock()
    progress = Progress(["a", "b", "c"], stream=io.StringIO(), clock=clock)
    progress.start(["a"])
    clock.now += 99.0
    progress.finish(ran=False)
    assert progress.eta_seconds() is None
    progress.start(["b"])
    clock.now += 4.0
    progress.finish()
    assert progress.eta_seconds() == pytest.approx(4.0)  # unweighted: one model left at 4 s a model
    assert "weighted" not in progress.line("c")


def test_duration():
    assert [duration(s) for s in (0, 59.4, 61, 3599, 3600 * 3 + 7 * 60)] == ["0s", "59s", "1m01s", "59m59s", "3h07m"]


def test_both_runners_report_progress_and_the_total_time(tmp_path, capsys):
    """run_jobs (the Keras script) and run_groups (the PyTorch script) print where the run stands
    before each model or pass, and the closing summary gives the total time."""
    import numpy as np

    from imagenet_bench.outputs import predfiles
    from imagenet_bench.predict import runner

    def job(model, cost=None):
        return runner.Job(model, predfiles.model_files(tmp_path, model, "keras"), {"m": model}, cost=cost)

    def result(j):
        return runner.Result(
            np.tile(np.arange(5), (3, 1)), np.full((3, 5), 0.2, dtype=np.float32), {"request": j.request}
        )

    assert runner.run_jobs([job("a"), job("b")], result) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in err if line.startswith("[")] == ["[0/2 done] a", "[1/2 done] b"]
    assert "about" in next(line for line in err if line.startswith("[1/2 done] b"))
    assert err[-1].startswith("2 done, 0 skipped (already complete), 0 failed; ") and err[-1].endswith(" in all")

    jobs = [job("c", 4.0), job("d", 1.0), job("e", 1.0)]
    status = runner.run_groups([jobs[:1], jobs[1:]], lambda group: {j.model: result(j) for j in group}, ["a"])
    err = capsys.readouterr().err.splitlines()
    assert status == 0
    starts = [line for line in err if line.startswith("[")]
    assert starts[0].startswith("[0/3 done] c: estimating")
    assert starts[1].startswith("[1/3 done] a pass of 2: d, e: about") and "GFLOPs" in starts[1]


def test_models_side_by_side_use_the_runs_wall_clock_rate():
    """--gpus: two models run at once; the rate is the run's (wall-clock since the first start),
    so two slots halve the estimate that one slot would give."""
    clock = Clock()
    progress = Progress(["a", "b", "c", "d"], stream=io.StringIO(), clock=clock, parallel=2)
    progress.start(["a"])
    progress.start(["b"])
    clock.now += 10.0
    progress.finish(models=["b"])
    progress.start(["c"])
    clock.now += 2.0
    progress.finish(models=["a"])
    # 2 models finished in 12 s of wall clock; 2 left (c running, d waiting): 12 s
    assert progress.eta_seconds() == pytest.approx(12.0)
    progress.finish(models=["c"], ran=False)
    assert progress.finished == {"a", "b", "c"} and progress.summary().startswith("3 of 4 models")


def test_the_parallel_runner_reports_each_model_as_it_starts(tmp_path, capsys):
    import numpy as np

    from imagenet_bench.outputs import predfiles
    from imagenet_bench.predict import runner

    def result(j):
        return runner.Result(
            np.tile(np.arange(5), (3, 1)), np.full((3, 5), 0.2, dtype=np.float32), {"request": j.request}
        )

    jobs = [runner.Job(m, predfiles.model_files(tmp_path, m, "keras"), {"m": m}) for m in ("a", "b", "c")]
    assert runner.run_jobs(jobs, result, parallel=2) == 0
    err = capsys.readouterr().err.splitlines()
    starts = sorted(line.split("] ")[1].split(":")[0] for line in err if line.startswith("["))
    assert starts == ["a", "b", "c"]
    assert all(line.split(" done]")[0][1:].split("/")[1] == "3" for line in err if line.startswith("["))
    assert err[-1].startswith("3 done, 0 skipped (already complete), 0 failed; ") and err[-1].endswith(" in all")
