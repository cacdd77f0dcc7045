"""The CUDA code paths (issue 21) on the CPU: the GPU's side simulated (a model that raises
torch.OutOfMemoryError above a batch size, constructed logits, a fake CUDA_VISIBLE_DEVICES)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imagenet_bench.datasets.preprocessing import Preprocess
from imagenet_bench.predict import torch_predict

from conftest import tiny_dataset

GEOMETRY = Preprocess(crop_size=16, resize_size=16)


class Pixels(torch.nn.Module):
    """Logits that depend on each image's pixels (seeded random projection of an 8 x 8 pooling):
    predictions that vary, and a forward pass whose rows do not depend on each other."""

    def __init__(self, seed: int, fails_above: int | None = None, error: Exception | None = None) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.proj = torch.nn.Linear(3 * 64, 1000, bias=False)
        self.fails_above, self.error, self.calls = fails_above, error, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(x))
        if self.error is not None:
            raise self.error
        if self.fails_above is not None and len(x) > self.fails_above:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {len(x)} images")
        features = torch.nn.functional.adaptive_avg_pool2d(x, 8).flatten(1)
        return self.proj(features - features.mean(1, keepdim=True)) * 10


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("images"), 32)


def _pass(models: dict[str, torch.nn.Module], dataset, batch_size: int) -> dict:
    members = [torch_predict.Member(name, model, GEOMETRY) for name, model in models.items()]
    return torch_predict.predict_group(members, dataset, torch_predict.Numerics("cpu"), batch_size, 0, 5, True)


def test_decay_batch_step_follows_timm():
    # timm.utils.decay_batch_step's sequence from 32 (written out from its rule: two steps
    # between powers of two), and its end at 1
    sizes, size = [], 32
    while size:
        size = torch_predict.decay_batch_step(size)
        sizes.append(size)
    assert sizes == [24, 16, 12, 8, 6, 4, 3, 2, 1, 0]


def test_out_of_memory_retries_at_a_smaller_batch_and_spares_the_neighbours(images):
    alone = _pass({"a": Pixels(1), "oom": Pixels(2), "b": Pixels(3)}, images, 8)
    assert len(set(alone["oom"]["preds"][:, 0])) > 3  # predictions vary: equality below means something
    failing = Pixels(2, fails_above=8)
    out = _pass({"a": Pixels(1), "oom": failing, "b": Pixels(3)}, images, 32)
    assert not isinstance(out["oom"], Exception)
    for name in ("a", "oom", "b"):
        for key in ("preds", "probs", "all_probs"):
            np.testing.assert_array_equal(out[name][key], alone[name][key])
    assert out["oom"]["batch_size"] == 8 and out["a"]["batch_size"] == out["b"]["batch_size"] == 32
    assert failing.calls == [32, 24, 16, 12, 8, 8, 8, 8]  # 24, 16 and 12 failed at their first chunk


def test_an_illegal_memory_access_is_not_retried_and_only_its_message_is_kept(images):
    broken = Pixels(2, error=RuntimeError("CUDA error: an illegal memory access was encountered"))
    out = _pass({"a": Pixels(1), "bad": broken}, images, 16)
    assert broken.calls == [16]
    assert isinstance(out["bad"], RuntimeError) and "illegal memory access" in str(out["bad"])
    assert out["bad"].__traceback__ is None and out["bad"].__context__ is None  # no frames, no activations
    assert not isinstance(out["a"], Exception)


def test_out_of_memory_at_batch_size_one_fails_the_model(images):
    hopeless = Pixels(2, fails_above=0)
    out = _pass({"hopeless": hopeless}, images, 4)
    assert isinstance(out["hopeless"], RuntimeError) and "batch size 1" in str(out["hopeless"])
    assert hopeless.calls == [4, 3, 2, 1]


def test_a_failed_model_leaves_the_device_and_its_cached_blocks_are_given_back(monkeypatch):
    emptied, moved = [], []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    model = Pixels(1)
    monkeypatch.setattr(model, "to", lambda device: moved.append(device))
    state = {"model": model}
    torch_predict._drop(state, torch.device("cuda"))
    assert "model" not in state and moved == ["cpu"] and emptied == [True]


class Constant(torch.nn.Module):
    """The same constructed logits for every image (ties, NaN, inf), whatever the pixels."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), -1)


def test_non_finite_logits_fail_the_model_and_are_counted(images):
    overflow = torch.zeros(1000)
    overflow[3] = float("inf")
    nan = torch.zeros(1000)
    nan[7] = float("nan")
    out = _pass({"inf": Constant(overflow), "nan": Constant(nan), "fine": Pixels(1)}, images, 16)
    for name in ("inf", "nan"):
        assert isinstance(out[name], RuntimeError), out[name]
        assert f"{len(images)} of {len(images)} images gave non-finite logits" in str(out[name])
    assert out["fine"]["nonfinite_rows"] == 0


def test_ties_go_to_the_lower_class(images):
    logits = torch.zeros(1000)
    logits[[900, 7, 3]] = 2.0  # three equal best, then 997 equal
    out = _pass({"ties": Constant(logits)}, images, 2)
    expected = np.argsort(-torch.softmax(logits, 0).numpy(), kind="stable")[:5]  # lower class first
    assert expected.tolist() == [3, 7, 900, 0, 1]
    assert (out["ties"]["preds"] == expected).all()


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_resume_key_holds_the_device_kind_alone(device, tmp_path):
    from types import SimpleNamespace

    from imagenet_bench.predict import runner, torch_run

    options = SimpleNamespace(
        model_spec="spec.py:f", amp=None, channels_last=False, output_dir=tmp_path, protocol="reference"
    )
    state = torch_run.TorchRun(options, None, {}, {}, {}, torch_predict.Numerics(device), None)  # type: ignore[arg-type]
    request = state.job("m", {"topk": 5}).request
    assert request["device"] == "cuda"
    # torchrun's rank 3 recorded cuda:3 (before: the index), or cuda; one process on cuda resumes either
    for recorded in ("cuda:3", "cuda"):
        assert runner.request_changes({"request": {**request, "device": recorded}}, request) == []
    assert runner.request_changes({"request": {**request, "device": "cpu"}}, request) == [
        'device "cpu" there, "cuda" asked'
    ]


def test_keras_gpu_indices_go_into_the_callers_visible_list():
    from imagenet_bench.base.errors import UsageError
    from imagenet_bench.predict import cuda_devices

    slurm = {"CUDA_VISIBLE_DEVICES": "4,6"}  # a Slurm task's two GPUs of the machine
    assert cuda_devices.visible_slots(["1"], slurm) == ["6"]
    assert cuda_devices.visible_slots(["0", "1"], slurm) == ["4", "6"]
    assert cuda_devices.visible_slots(["0"], {"CUDA_VISIBLE_DEVICES": "GPU-a1, GPU-b2"}) == ["GPU-a1"]
    assert cuda_devices.visible_slots(["1", None], {}) == ["1", None]  # no list: the machine's numbering
    with pytest.raises(UsageError, match="CUDA_VISIBLE_DEVICES='4,6' lists 2 GPU"):
        cuda_devices.visible_slots(["2"], slurm)


def test_the_gpu_probe_counts_the_callers_visible_gpus(monkeypatch):
    import subprocess

    from imagenet_bench.predict import cuda_devices

    seen = {}

    def fake_run(command, env, **kwargs):
        seen.update(env)
        return subprocess.CompletedProcess(command, 0, '{"count": 2, "why": ""}', "")

    monkeypatch.delenv("IMAGENET_BENCH_ASSUME_GPUS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    monkeypatch.setattr(cuda_devices.subprocess, "run", fake_run)
    assert cuda_devices.probe().count == 2
    assert seen["CUDA_VISIBLE_DEVICES"] == "4,6"  # the driver counts what the caller may use


class _NoGpuTensorFlow:
    """TensorFlow 2.21 beside torch for CUDA 13: built for CUDA 12, it lists no GPU."""

    __version__ = "2.21.0"

    class config:  # as TensorFlow spells it
        @staticmethod
        def list_physical_devices(kind: str) -> list:
            return []

    class sysconfig:
        @staticmethod
        def get_build_info() -> dict:
            return {"cuda_version": "12.5.1"}


def test_a_keras_model_process_refuses_the_cpu_when_a_gpu_was_asked_for(monkeypatch):
    from imagenet_bench.base import errors
    from imagenet_bench.predict import keras_predict

    monkeypatch.setattr(keras_predict, "_tf", _NoGpuTensorFlow)
    monkeypatch.delenv("IMAGENET_BENCH_ASSUME_GPUS", raising=False)
    with pytest.raises(errors.StopsTheRun) as refused:
        keras_predict.require_gpu("3")
    message = str(refused.value)
    assert "lists no GPU" in message and "CUDA 12.5.1" in message and "requirements-keras-gpu.txt" in message
    # it travels from the model process to the parent as what it is: one line, and the run stops
    assert isinstance(errors.from_record(errors.to_record(refused.value)), errors.StopsTheRun)
    monkeypatch.setenv("IMAGENET_BENCH_ASSUME_GPUS", "1")
    keras_predict.require_gpu("3")  # the tests' stand-in for GPUs runs on the CPU


def test_keras_model_processes_get_a_persistent_kernel_cache(tmp_path):
    from imagenet_bench.predict import keras_worker

    env = keras_worker.child_env("5", {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/bin"})
    assert env["CUDA_VISIBLE_DEVICES"] == "5"
    assert env["CUDA_CACHE_PATH"] == str(tmp_path / "imagenet_bench" / "cuda-kernels")
    assert int(env["CUDA_CACHE_MAXSIZE"]) >= 2**30  # the driver's default, 256 MiB, holds few models
    mine = keras_worker.child_env(None, {"CUDA_CACHE_PATH": "/mine", "CUDA_CACHE_MAXSIZE": "1"})
    assert mine["CUDA_CACHE_PATH"] == "/mine" and mine["CUDA_CACHE_MAXSIZE"] == "1"


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_the_process_group_waits_hours_for_rank_0_and_names_its_gpu(device, monkeypatch):
    from datetime import timedelta

    from imagenet_bench.predict import torch_distributed

    asked = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: asked.setdefault("set_device", index))
    monkeypatch.setattr(torch_distributed.dist, "init_process_group", lambda **kwargs: asked.update(kwargs))
    monkeypatch.setattr(torch_distributed.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(torch_distributed.dist, "get_world_size", lambda: 2)
    group = torch_distributed.init(device)
    assert group is not None and group.backend == ("nccl" if device == "cuda" else "gloo")
    assert asked["timeout"] >= timedelta(hours=2)  # NCCL's default is 10 minutes; a cache fill takes longer
    if device == "cuda":
        assert asked["device_id"] == torch.device("cuda", 1) and asked["set_device"] == 1


def test_normalisation_divides_by_a_tensor_on_the_device(monkeypatch, images):
    divisors = []
    real_div_ = torch.Tensor.div_

    def spy(self, other, *args, **kwargs):
        divisors.append(other)
        return real_div_(self, other, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "div_", spy)
    out = _pass({"a": Pixels(1)}, images, 16)
    assert not isinstance(out["a"], Exception)
    # CUDA multiplies by the reciprocal of a Python number: a tensor divides as the CPU does
    assert divisors and all(isinstance(d, torch.Tensor) and d.device.type == "cpu" for d in divisors)
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).float()
    got = real_div_(x, torch.full((1, 1, 1, 1), 255.0)).numpy().ravel()
    np.testing.assert_array_equal(got, np.arange(256, dtype=np.float32) / np.float32(255))


def test_keras_records_the_dtype_its_layers_ran_in():
    import keras

    from imagenet_bench.predict import keras_predict

    inputs = keras.Input((4,))
    plain = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    assert keras_predict.dtype_of(plain) == "float32"
    half = keras.Model(inputs, keras.layers.Dense(3, dtype="bfloat16")(keras.layers.Dense(3)(inputs)))
    assert keras_predict.dtype_of(half) == "bfloat16, float32"


def test_the_tables_images_per_s_is_the_models_own_per_gpu():
    from imagenet_bench.report import table

    # a pass of 8 models: end to end 100 images/s for all, this model alone 800
    grouped = {"throughput": {"images_per_s": 100.0, "model_images_per_s": 800.0, "ranks": 1}}
    assert table.model_rate(grouped) == (800.0, 1)
    # torchrun over 4 GPUs, as recorded now: the rate is per GPU already
    assert table.model_rate({"throughput": {"images_per_s": 900.0, "model_images_per_s": 250.0, "ranks": 4}}) == (
        250.0,
        4,
    )
    # as recorded before (no ranks): the model's rate was over all 4 ranks
    old = {"throughput": {"images_per_s": 900.0, "model_images_per_s": 1000.0}, "distributed": {"world_size": 4}}
    assert table.model_rate(old) == (250.0, 4)
    assert table.model_rate({"throughput": {"images_per_s": 50.0}}) == (50.0, 1)  # no model time recorded


def test_a_torchrun_models_rate_is_per_gpu_over_its_ranks():
    from imagenet_bench.predict import torch_distributed

    def part(rows, model_s):
        throughput = {"wall_time_s": 2.0, "model_time_s": model_s, "models_in_pass": 3, "ranks": 1, "batch_size": 8}
        return {
            "preds": np.zeros((rows, 5), np.int64),
            "probs": np.zeros((rows, 5), np.float32),
            "all_probs": None,
            "batch_size": 8,
            "nonfinite_rows": 0,
            "throughput": throughput,
            "pass": {"images_decoded": rows},
        }

    merged = torch_distributed.merge([part(300, 1.0), part(300, 2.0)], 600)
    assert merged["throughput"]["model_images_per_s"] == 200.0  # 600 images in 3 GPU-seconds
    assert merged["throughput"]["ranks"] == 2 and merged["throughput"]["models_in_pass"] == 3


def test_a_quantized_cpu_pass_of_a_gpu_run_shares_the_cores_among_the_ranks():
    from imagenet_bench.predict import torch_run

    assert torch_run.quantized_threads(16, {"LOCAL_WORLD_SIZE": "8"}) == 2  # torchrun would give each one
    assert torch_run.quantized_threads(16, {}) == 16
    assert torch_run.quantized_threads(4, {"LOCAL_WORLD_SIZE": "8"}) == 1
    before = torch.get_num_threads()
    with torch_run._cpu_threads(before + 1) as threads:
        assert threads == torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before


def test_keras_cache_fills_of_two_geometries_run_at_once_and_of_one_in_turn(monkeypatch, tmp_path):
    import threading
    from types import SimpleNamespace

    from imagenet_bench.predict import keras_run, pixel_cache

    both_in = threading.Barrier(2, timeout=5)  # broken (an error) unless both fills are inside at once
    inside, most = [0], [0]
    guard = threading.Lock()

    class Fill:
        def __init__(self, root, dataset, preprocess):
            self.pixels_path = tmp_path / str(preprocess.crop_size)

        def ensure(self, dataset, preprocess, workers):
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            if preprocess.crop_size != 16:  # the two geometries meet here
                both_in.wait()
            with guard:
                inside[0] -= 1
            return self

    monkeypatch.setattr(pixel_cache, "PixelCache", Fill)
    options = SimpleNamespace(cache_dir=str(tmp_path), workers=2, batch_size=1, check_batching=None)
    dataset = SimpleNamespace(paths=[], __len__=lambda: 0)
    state = keras_run.KerasRun(options, dataset, {}, {}, {}, [None])  # type: ignore[arg-type]
    errors = []

    def fill(geometry: Preprocess) -> None:
        try:
            state.cached_pixels(geometry)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fill, args=(Preprocess(c, c),)) for c in (24, 32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and most[0] == 2
    most[0] = 0
    threads = [threading.Thread(target=fill, args=(Preprocess(16, 16),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and most[0] == 1  # one geometry: one fill at a time


@pytest.mark.parametrize("channels_last", [False, True])
def test_pixel_cache_batches_go_to_the_device_as_read_and_give_the_same_outputs(images, tmp_path, channels_last):
    from imagenet_bench.predict import pixel_cache

    cache = pixel_cache.PixelCache(tmp_path, images, GEOMETRY).ensure(images, GEOMETRY, 1)
    first = next(torch_predict.pixel_batches(images, GEOMETRY, 8, 0, False, cache))
    assert first.shape == (8, 16, 16, 3)  # N x H x W x 3, as read: permuted on the device
    numerics = torch_predict.Numerics("cpu", channels_last=channels_last)
    members = [torch_predict.Member("a", Pixels(1), GEOMETRY)]
    read = torch_predict.predict_group(members, images, numerics, 8, 0, 5, True, cache)["a"]
    decoded = torch_predict.predict_group(members, images, numerics, 8, 0, 5, True)["a"]
    assert len(set(decoded["preds"][:, 0])) > 3
    for key in ("preds", "probs", "all_probs"):
        np.testing.assert_array_equal(read[key], decoded[key])


def test_a_read_error_in_the_prefetch_thread_is_raised_in_order():
    def batches():
        yield torch.zeros(1)
        raise OSError("disk gone")

    got = torch_predict._prefetched(batches())
    assert next(got).shape == (1,)
    with pytest.raises(OSError, match="disk gone"):
        next(got)


def test_the_first_batch_is_warm_up_kept_apart_from_the_steady_rate(images):
    import time

    class SlowStart(Pixels):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not self.calls:
                time.sleep(0.3)  # kernels chosen, memory first allocated: paid once
            return super().forward(x)

    t = _pass({"slow": SlowStart(1)}, images, 8)["slow"]["throughput"]
    assert t["first_batch_s"] >= 0.3 and t["first_batch_images"] == 8
    assert t["steady_images_per_s"] > 3 * t["model_images_per_s"]  # 24 images in milliseconds, against 0.3 s


class KerasLike:
    """A stand-in for a built Keras model (``predict_on_batch``): probabilities from the pixels,
    and a first call that traces, slowly, as Keras's compiled predict function does. Its time
    is a clock of its own: 10 s for the first call, 0.1 s for each after it."""

    def __init__(self) -> None:
        self.calls, self.now = 0, 0.0
        self.proj = np.random.default_rng(0).standard_normal((16 * 16 * 3, 1000)).astype(np.float32)

    def perf_counter(self) -> float:
        return self.now

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        self.now += 10.0 if not self.calls else 0.1  # the tf.function traced (on a GPU: kernels compiled)
        self.calls += 1
        flat = x.reshape(len(x), -1)
        logits = (flat - flat.mean(axis=1, keepdims=True)) @ self.proj
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def test_the_keras_trace_is_warm_up_kept_apart_from_the_steady_rate(images, monkeypatch):
    from imagenet_bench.predict import keras_predict

    model = KerasLike()
    monkeypatch.setattr(keras_predict, "time", model)
    out = keras_predict.predict(model, images.paths, GEOMETRY, lambda x: x / 255.0, 1, 5, threads=1)
    t = out["throughput"]
    assert model.calls == len(images.paths) == 32 and len(set(out["preds"][:, 0])) > 3
    assert t["first_batch_s"] == 10.0 and t["first_batch_images"] == 1
    assert t["steady_images_per_s"] == pytest.approx(31 / 3.1)  # the 31 images after the trace
    assert t["model_images_per_s"] == pytest.approx(32 / 13.1, abs=0.01)  # the whole run's, trace in it


def test_with_several_gpus_the_first_keras_model_runs_alone_then_the_rest_side_by_side(tmp_path):
    import threading

    from imagenet_bench.outputs import predfiles
    from imagenet_bench.predict import keras_run, runner

    assert keras_run.warms_kernels_first(["0", "1"]) and not keras_run.warms_kernels_first(["0"])
    assert not keras_run.warms_kernels_first([None])
    first_done, side_by_side = threading.Event(), threading.Barrier(2, timeout=10)
    seen: dict[str, bool] = {}

    def run_one(job: runner.Job) -> runner.Result:
        seen[job.model] = first_done.is_set()
        if job.model == "a":
            first_done.set()
        else:
            side_by_side.wait()  # passes only if b and c run at the same time
        return runner.Result(np.zeros((2, 5), np.int16), np.zeros((2, 5), np.float32), {"request": job.request})

    jobs = [runner.Job(m, predfiles.model_files(tmp_path, m, "keras"), {"model": m}) for m in "abc"]
    status = runner.run_jobs(jobs, run_one, parallel=2, first_alone=True)
    assert status == 0 and seen == {"a": False, "b": True, "c": True}
    assert all(predfiles.model_files(tmp_path, m, "keras").preds_path.exists() for m in "abc")
