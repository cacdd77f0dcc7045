"""Running PyTorch classifiers over a dataset: batched, in grouped passes, top-k kept
while streaming (building them is ``models.torch_build``'s).

Decoding and the protocol's geometry run in DataLoader workers (uint8 tensors), or
come from a pixel cache entry; normalisation runs on the device, per model. Only
the top-k of each batch is kept, never an N x 1000 array, unless all
probabilities are asked for.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from ..base import test_pause
from ..base.classes import NUM_CLASSES
from ..base.errors import ImageError, UsageError
from ..datasets import images
from ..datasets.layout import Dataset
from ..datasets.preprocessing import Preprocess
from . import runner
from .top_k_rows import TopKRows


class PixelDataset(TorchDataset[torch.Tensor | ImageError]):
    """The dataset's images as uint8 C x H x W tensors, in row order."""

    def __init__(self, paths: Sequence[Path], preprocess: Preprocess) -> None:
        self.paths, self.preprocess = paths, preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor | ImageError:
        """The pixels, or the ImageError itself: the DataLoader would re-raise it in this
        process as a new exception built from its traceback text, losing the object."""
        try:
            pixels = images.load_pixels(self.paths[index], self.preprocess)
        except ImageError as exc:
            return exc
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def _collate(items: list[torch.Tensor | ImageError]) -> torch.Tensor | ImageError:
    """One batch, or the first image error in it (pickled back by its fields)."""
    error = next((item for item in items if isinstance(item, ImageError)), None)
    if error is not None:
        return error
    return torch.stack([item for item in items if isinstance(item, torch.Tensor)])  # all of them, here


@dataclass
class Numerics:
    device: str = "cpu"
    amp: str | None = None  # "bf16" or "fp16"
    channels_last: bool = False
    tf32: bool = False

    def apply(self) -> dict[str, Any]:
        """Set the global numeric switches; return what the manifest records."""
        torch.backends.cuda.matmul.allow_tf32 = self.tf32
        torch.backends.cudnn.allow_tf32 = self.tf32
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        return {
            "dtype": "float32" if self.amp is None else f"autocast {self.amp}",
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "cudnn_deterministic": True,
            "cudnn_benchmark": False,
            "channels_last": self.channels_last,
            "quantized_engine": torch.backends.quantized.engine,
        }

    def device_name(self) -> str:
        if self.device.startswith("cuda"):
            return torch.cuda.get_device_name(torch.device(self.device))
        return "cpu"


def resolve_device(device: str | None, gpu: int | None) -> str:
    """--device wins; -g/--gpu N means cuda:N; default cuda when available."""
    if device is None:
        device = f"cuda:{gpu}" if gpu is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (kind == "cpu" and index) or (index and not index.isdigit()):
        raise UsageError(f"--device {device}: expected cpu, cuda or cuda:N")
    if kind == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    if index and int(index) >= torch.cuda.device_count():
        raise UsageError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s)")
    return device


@dataclass
class Member:
    """One model of a group that shares one pass over the data (same geometry and device)."""

    name: str
    model: torch.nn.Module
    preprocess: Preprocess


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Hold SIGINT while the workers are forked, so that none is born able to take it: a
    terminal's Ctrl-C reaches the whole process group, and a worker still starting up would print
    a KeyboardInterrupt traceback after our one line. A Ctrl-C in the window reaches the main
    process when it is let go."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _ignore_ctrl_c(worker_id: int) -> None:
    """A worker leaves Ctrl-C to the main process, which ends the workers as it stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def pixel_batches(
    dataset: Dataset,
    preprocess: Preprocess,
    batch_size: int,
    workers: int,
    pin: bool,
    cache: Any = None,
    cache_offset: int = 0,
) -> Iterator[torch.Tensor]:
    """uint8 batches in row order: N x 3 x H x W decoded by DataLoader workers, or N x H x W x 3
    as read from a pixel cache entry (imagenet_bench.predict.pixel_cache) when one is given, to
    be permuted on the device (``on_device``): on the CPU the permutation and its copy cost one
    thread per torchrun rank, and with --channels-last it was undone there. Cache batches are
    read, and pinned for an asynchronous copy, a batch or two ahead in a thread while the
    models run. A torchrun rank's rows start at ``cache_offset`` in the entry."""
    if cache is not None:
        read = images.cached_batches(cache.pixels_path, len(dataset), batch_size, cache_offset)
        yield from _prefetched(torch.from_numpy(b).pin_memory() if pin else torch.from_numpy(b) for b in read)
        return
    loader = DataLoader(
        PixelDataset(dataset.paths, preprocess),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin,
        collate_fn=_collate,
        worker_init_fn=_ignore_ctrl_c if workers else None,
    )
    with _ctrl_c_held():
        batches = iter(loader)  # forks the workers
    for batch in batches:
        if isinstance(batch, ImageError):
            raise batch
        yield batch


def _prefetched(batches: Iterator[torch.Tensor], depth: int = 2) -> Iterator[torch.Tensor]:
    """``batches``, produced up to ``depth`` ahead in a thread (reads with pread and pinning
    release the GIL); an error there is raised here, in order."""
    import queue
    import threading

    ahead: queue.Queue[torch.Tensor | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: torch.Tensor | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        with contextlib.closing(batches):  # type: ignore[type-var]  # a generator: closing ends its pread loop
            try:
                for batch in batches:
                    if not put(batch):
                        return
            except BaseException as exc:  # handed to the consumer
                put(exc)
                return
        put(None)

    thread = threading.Thread(target=produce, name="pixel-cache-prefetch", daemon=True)
    thread.start()
    try:
        while (item := ahead.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def on_device(batch: torch.Tensor, device: torch.device, nhwc: bool) -> torch.Tensor:
    """A batch on the device as N x 3 x H x W (a permuted view of a cache batch: ``_forward``'s
    ``contiguous`` lays it out as the memory format asks, the only copy)."""
    pixels = batch.to(device, non_blocking=True)
    return pixels.permute(0, 3, 1, 2) if nhwc else pixels


def predict_group(
    members: list[Member],
    dataset: Dataset,
    numerics: Numerics,
    batch_size: int,
    workers: int,
    k: int,
    save_all_probs: bool = False,
    cache: Any = None,
    cache_offset: int = 0,
) -> dict[str, dict[str, Any] | Exception]:
    """Run every member over ``dataset`` in one pass: each decoded batch goes through
    every model. Returns, per member, its top-k preds/probs, optional all probs and
    timings, or the exception that stopped it (the others go on). An image that
    cannot be decoded stops the whole pass (ImageError)."""
    from tqdm import tqdm

    device = torch.device(numerics.device)
    memory_format = torch.channels_last if numerics.channels_last else torch.contiguous_format
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(numerics.amp or "")
    state: dict[str, dict[str, Any]] = {}
    failed: dict[str, Exception] = {}
    for m in members:
        norm = None
        if m.preprocess.normalization == "mean_std":
            norm = (
                torch.tensor(m.preprocess.mean, device=device).view(1, 3, 1, 1),
                torch.tensor(m.preprocess.std, device=device).view(1, 3, 1, 1),
            )
        state[m.name] = {
            "model": m.model.eval().to(device, memory_format=memory_format),  # type: ignore[call-overload]  # Module.to takes a device and memory_format together; torch's stubs list them apart
            "norm": norm,
            "rows": TopKRows(len(dataset), save_all_probs),
            "seconds": 0.0,
            "batch_size": batch_size,  # lowered after an out-of-memory error (_run_batch)
            "nonfinite": 0,  # rows whose logits hold a NaN or an infinity
            "first_s": None,  # the first batch's model time (warm-up), and its images
            "first_n": 0,
        }
    # The class subset (imagenet_bench.datasets.class_subset): outputs indexed to it before the softmax
    # and top-k, the top-k mapped back to global class indices.
    subset = None if dataset.class_subset is None else torch.tensor(dataset.class_subset.indices, device=device)
    scale = torch.full((1, 1, 1, 1), 255.0, device=device)
    how = _How(device, memory_format, amp_dtype, subset, k, save_all_probs, scale)
    decoded = 0
    first = True
    start = time.perf_counter()
    desc = members[0].name if len(members) == 1 else f"{len(members)} models"
    with (
        tqdm(total=len(dataset), desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True, leave=False) as bar,
        torch.inference_mode(),
    ):
        for batch in pixel_batches(
            dataset, members[0].preprocess, batch_size, workers, device.type == "cuda", cache, cache_offset
        ):
            decoded += 0 if cache is not None else len(batch)
            pixels = on_device(batch, device, nhwc=cache is not None)
            if device.type == "cuda":  # the copy is the pass's, not the first model's
                torch.cuda.synchronize(device)
            for name, s in state.items():
                if name in failed:
                    continue
                t0 = time.perf_counter()
                try:
                    outs = _run_batch(s, pixels, how)
                    for top_i, top_p, all_p, nonfinite in outs:
                        s["rows"].add(top_i, top_p, all_p)
                        s["nonfinite"] += nonfinite
                except Exception as exc:  # this model stops; the rest of the group goes on
                    failed[name] = _message_only(exc)
                    _drop(s, device)
                s["seconds"] += time.perf_counter() - t0  # .cpu() in _forward synchronises
                if s["first_s"] is None:  # warm-up: kernels chosen and loaded, memory first allocated
                    s["first_s"], s["first_n"] = s["seconds"], len(batch)
            bar.update(len(batch))
            if first:
                first = False
                test_pause.wait_at("first-batch")
    wall = time.perf_counter() - start
    n = len(dataset)
    results: dict[str, dict[str, Any] | Exception] = dict(failed)
    for name, s in state.items():
        if name in failed:
            continue
        if s["nonfinite"]:  # its top-1 of those rows would be arbitrary: no outputs rather than wrong ones
            results[name] = RuntimeError(
                f"{s['nonfinite']} of {n} images gave non-finite logits (NaN or inf)"
                + (f" under --amp {numerics.amp}: run it in float32 (no --amp) or bf16" if numerics.amp else "")
            )
            continue
        preds, probs, all_probs = s["rows"].arrays()
        results[name] = {
            "preds": preds,
            "probs": probs,
            "all_probs": all_probs,
            # images_per_s is the pass's end to end (shared by its models); model_images_per_s the
            # model's own (its forward passes, synchronised by .cpu()): the table's, per model and GPU
            "throughput": {
                "wall_time_s": round(wall, 3),
                "images_per_s": round(n / wall, 2),
                "model_time_s": round(s["seconds"], 3),
                "model_images_per_s": round(n / s["seconds"], 2) if s["seconds"] else None,
                "models_in_pass": len(members),
                "ranks": 1,
                "batch_size": s["batch_size"],
                **runner.warm_up(n, s["seconds"], s["first_s"] or 0.0, s["first_n"]),
            },
            "batch_size": s["batch_size"],
            "nonfinite_rows": s["nonfinite"],
            "pass": {
                "models": [m.name for m in members],
                "batch_size": batch_size,  # the pass's; a model's own, lower after out of memory, is beside
                "images_decoded": decoded,
                "pixel_cache": str(cache.folder) if cache is not None else None,
            },
        }
    return results


def decay_batch_step(batch_size: int, num_intra_steps: int = 2) -> int:
    """The next smaller batch size to try after an out-of-memory error: timm's rule
    (timm.utils.decay_batch_step), two steps between powers of two; 0 after 1."""
    if batch_size <= 1:
        return 0
    base = 1 << ((batch_size - 1).bit_length() - 1)  # the largest power of two below batch_size
    step = max(base // num_intra_steps, 1)
    return base + ((batch_size - base - 1) // step) * step


def _message_only(exc: Exception) -> Exception:
    """The failure as a new exception of the same kind and text: the original's traceback
    holds the frames, and with them the batch's activations on the GPU, while it is kept."""
    try:
        return type(exc)(*exc.args)
    except Exception:  # a library's exception that needs other arguments
        return RuntimeError(str(exc))


def _drop(s: dict[str, Any], device: torch.device) -> None:
    """A failed model's weights leave the device (the caller's Member still refers to the
    model, so moving it is what frees them), and the freed blocks go back to the driver."""
    model = s.pop("model")
    if device.type == "cuda":
        with contextlib.suppress(Exception):  # after an illegal memory access nothing on the device works
            model.to("cpu")
    del model
    _give_back(device)


def _give_back(device: torch.device) -> None:
    """What nothing refers to any more, collected, and its device blocks back to the driver."""
    import gc

    gc.collect()
    if device.type == "cuda":
        with contextlib.suppress(Exception):  # after an illegal memory access nothing on the device works
            torch.cuda.empty_cache()


_Chunk = tuple[np.ndarray, np.ndarray, np.ndarray | None, int]


def topk(p: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, classes) of each row's k largest, ties broken by the lower class on every
    device, as runner.topk does: torch.topk fixes no order among equal values (on CUDA nor
    on the CPU). A stable sort of the row costs little beside the model."""
    values, classes = torch.sort(p, dim=1, descending=True, stable=True)
    k = min(k, p.shape[1])
    return values[:, :k], classes[:, :k]


@dataclass(frozen=True)
class _How:
    """How a pass runs each model: the same for every batch and model."""

    device: torch.device
    memory_format: torch.memory_format
    amp_dtype: torch.dtype | None
    subset: torch.Tensor | None
    k: int
    save_all_probs: bool
    scale: torch.Tensor  # 255, on the device (_forward)


def _run_batch(s: dict[str, Any], pixels: torch.Tensor, how: _How) -> list[_Chunk]:
    """One model's rows of one batch, in chunks of the model's batch size. On an
    out-of-memory error the memory is given back and the whole batch is redone at the next
    smaller size (kept for the rest of the pass); any other error (an illegal memory access
    leaves the device unusable) is raised, never retried."""
    while True:
        size = s["batch_size"]
        try:
            return [_forward(s, pixels[i : i + size], how) for i in range(0, len(pixels), size)]
        except torch.OutOfMemoryError as exc:
            message = f"out of memory at batch size {size}: {' '.join(str(exc).split())}"
        _give_back(how.device)  # out of the except clause: the error, its traceback and activations are gone
        s["batch_size"] = decay_batch_step(size)
        if s["batch_size"] == 0:
            raise RuntimeError(message)


def _forward(s: dict[str, Any], pixels: torch.Tensor, how: _How) -> _Chunk:
    """(top-k classes, their probabilities, all probabilities or None, rows of non-finite
    logits) of one chunk, on the host."""
    # in place from here: each batch-sized buffer costs a mapping. By a tensor on the device: CUDA
    # multiplies by the reciprocal of a Python number, which differs from the CPU's division by an ulp
    x = pixels.float().div_(how.scale)
    if s["norm"] is not None:
        x.sub_(s["norm"][0]).div_(s["norm"][1])
    x = x.contiguous(memory_format=how.memory_format)
    autocast = (
        torch.autocast(how.device.type, dtype=how.amp_dtype) if how.amp_dtype is not None else contextlib.nullcontext()
    )
    with autocast:
        logits = s["model"](x)
    logits = logits.float() if how.subset is None else logits.float().index_select(1, how.subset)
    nonfinite = int((~torch.isfinite(logits)).any(dim=1).sum())  # an fp16 overflow: NaN probabilities
    p = torch.softmax(logits, dim=1)
    top_p, top_i = topk(p, how.k)
    if how.subset is not None:
        top_i = how.subset[top_i]
        p = torch.zeros(len(p), NUM_CLASSES, device=how.device).index_copy_(1, how.subset, p)
    return top_i.cpu().numpy(), top_p.cpu().numpy(), p.cpu().numpy() if how.save_all_probs else None, nonfinite


def predict(
    model: torch.nn.Module,
    dataset: Dataset,
    preprocess: Preprocess,
    numerics: Numerics,
    batch_size: int,
    workers: int,
    k: int,
    save_all_probs: bool = False,
) -> dict[str, Any]:
    """One model alone (a group of one); raises what stopped it."""
    result = predict_group(
        [Member("model", model, preprocess)], dataset, numerics, batch_size, workers, k, save_all_probs
    )["model"]
    if isinstance(result, Exception):
        raise result
    return result
