"""timm's pre-trained ImageNet-1k classifiers, read from its pretrained configs alone.

Entries: every name of ``timm.list_pretrained()`` (``arch.tag``) whose pretrained
config has ``num_classes == 1000``. The tags alone mislead (``beitv2_*.in1k_ft_in22k``
has 21841 classes, the I-JEPA ``*.in1k_ijepa`` none, ``resmlp_*.fb_dino`` 1000
without "in1k" in the tag), so the config decides. No 1000-class config has a
``label_offset`` (the 1001-class TensorFlow checkpoints are not 1000-class configs),
so every entry's outputs are in ImageNet-1k label order.

Ids (documented, stable): ``timm.<name>`` (``timm.resnet50.a1_in1k``).

Preprocessing (``reference``): the config's data config through timm's own API
(``timm.data.resolve_data_config(pretrained_cfg=..., use_test_size=True)``: the test-time
``test_input_size``/``test_crop_pct`` where the config has them, as timm's validate.py
and its published results tables use by default), turned
into timm's eval transform with ``timm.data.create_transform`` and read back: a
``Resize(int)`` + ``CenterCrop`` (crop_mode "center", resize to
``floor(size / crop_pct)``) is our "shorter", a ``Resize((s, s))`` + ``CenterCrop``
(crop_mode "squash") our "squash". A transform this cannot express exactly
(crop_mode "border", a non-square input, another interpolation) makes the entry
not runnable; ``excluded()`` lists it with the reason.

Nothing here touches the network or loads weights, except ``TimmEntry.build``.
Parameters and GMACs come from the committed data/timm_costs.csv (``timm_costs``: counted
once, so that ``--list-models`` builds nothing); for a model that file lacks (another timm
version), ``num_params`` builds the model on the "meta" device (no memory, no weights).
Imports timm (and torch): only the PyTorch prediction script loads this module.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
from timm.data.config import resolve_data_config
from timm.data.transforms_factory import create_transform
from timm.models import get_pretrained_cfg

from ..base.errors import UsageError
from ..datasets.preprocessing import INTERPOLATIONS, Preprocess
from . import sources, timm_costs

PREFIX = "timm."
# timm's checkpoint files on the Hugging Face hub, in the order timm tries them.
HF_WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")


@functools.cache
def _cfg(name: str) -> dict[str, Any]:
    pretrained = get_pretrained_cfg(name)
    if pretrained is None:  # an architecture timm does not know (names come from timm.list_pretrained())
        raise RuntimeError(f"timm has no pretrained config {name!r}")
    cfg: dict[str, Any] = pretrained.to_dict()  # type: ignore[no-untyped-call]  # timm leaves it unannotated
    return cfg


def data_config(cfg: dict[str, Any], use_test_size: bool = False) -> dict[str, Any]:
    """timm's data config of a pretrained config (input_size, interpolation, mean, std, crop_pct, crop_mode)."""
    config: dict[str, Any] = resolve_data_config(  # type: ignore[no-untyped-call]  # timm leaves it unannotated
        pretrained_cfg=cfg, use_test_size=use_test_size
    )
    return config


def preprocess_from_cfg(cfg: dict[str, Any], use_test_size: bool = False) -> Preprocess:
    """The ``Preprocess`` doing exactly what timm's eval transform of ``cfg`` does to a PIL image.

    Raises UsageError (with the reason) when that transform has a step ``Preprocess`` lacks.
    """
    config = data_config(cfg, use_test_size)
    _, height, width = config["input_size"]
    if height != width:
        raise UsageError(f"non-square input size {height}x{width} (Preprocess crops squares only)")
    if config["crop_mode"] not in ("center", "squash"):
        raise UsageError(f"crop_mode {config['crop_mode']!r} (only 'center' and 'squash' are supported)")
    if config["interpolation"] not in INTERPOLATIONS:
        raise UsageError(f"interpolation {config['interpolation']!r} (supported: {', '.join(sorted(INTERPOLATIONS))})")
    steps = list(create_transform(**config, is_training=False).transforms)
    names = [type(step).__name__ for step in steps]
    if names != ["Resize", "CenterCrop", "MaybeToTensor", "Normalize"]:
        raise UsageError(
            f"timm eval transform {' + '.join(names)} (expected Resize + CenterCrop + ToTensor + Normalize)"
        )
    resize, crop = steps[0], steps[1]
    if resize.max_size is not None or resize.interpolation.value != config["interpolation"]:
        raise UsageError(f"unexpected timm {resize!r}")
    crop_h, crop_w = crop.size
    if isinstance(resize.size, int) or len(resize.size) == 1:  # Resize(int): shorter side (torchvision rule)
        mode, size = "shorter", resize.size if isinstance(resize.size, int) else resize.size[0]
    elif resize.size[0] == resize.size[1]:  # Resize((s, s)): the whole image to s x s
        mode, size = "squash", resize.size[0]
    else:
        raise UsageError(f"non-square resize {tuple(resize.size)}")
    if crop_h != crop_w or crop_h != height:
        raise UsageError(f"unexpected timm {crop!r} for input size {height}")
    return Preprocess(
        crop_size=int(crop_h),
        resize_size=int(size),
        resize_mode=mode,
        interpolation=config["interpolation"],
        normalization="mean_std",
        mean=_rgb(config["mean"]),
        std=_rgb(config["std"]),
    )


def _rgb(values: Any) -> tuple[float, float, float]:
    """A data config's per-channel mean or std (every 1000-class config has three), as floats."""
    red, green, blue = (float(v) for v in values)
    return red, green, blue


@dataclass(frozen=True)
class TimmEntry:
    id: str  # "timm." + name
    name: str  # timm's pretrained name, "arch.tag"
    quantized: bool = False  # timm's pretrained classifiers are float models

    @property
    def architecture(self) -> str:
        architecture: str = self.pretrained_cfg["architecture"]
        return architecture

    @property
    def tag(self) -> str:
        tag: str = self.pretrained_cfg["tag"]
        return tag

    @property
    def weights_name(self) -> str:
        return f"timm {self.name}"

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """timm's full pretrained config, as a plain (JSON-serialisable) dict."""
        return dict(_cfg(self.name))

    @property
    def meta(self) -> dict[str, Any]:
        """What the config says, with the parameters and GMACs (``_ops``, torchvision's word and
        unit) of data/timm_costs.csv, which timm's configs do not record: ``_ops`` at the
        reference input size, None where timm's benchmark has no figure for this network."""
        cfg = self.pretrained_cfg
        return {
            "num_params": self.num_params(),
            "_ops": self.gflops(),
            "architecture": cfg["architecture"],
            "tag": cfg["tag"],
            "hf_hub_id": cfg.get("hf_hub_id"),
            "url": cfg.get("url") or None,
            "license": cfg.get("license"),
            "paper_ids": cfg.get("paper_ids"),
        }

    source = "timm"
    note = ""
    backend = None  # no quantized engine (``sources.PytorchEntry``): timm's classifiers are float models

    def gflops(self) -> float | None:
        """timm's GMACs at the reference input size, from data/timm_costs.csv (never built)."""
        _costs_counted_here()
        return timm_costs.gmacs(self.architecture, self.reference_preprocess().crop_size)

    def request(self) -> dict[str, Any]:
        return {"source": self.source, "model_spec": None, "weights": self.weights_name}

    def num_params(self) -> int:
        """From data/timm_costs.csv; a model the file lacks is counted on a model built on the
        "meta" device (no memory, no weights), once."""
        _costs_counted_here()
        known = timm_costs.num_params(self.architecture)
        return known if known is not None else _num_params(self.name)

    @property
    def published(self) -> dict[str, Any] | None:
        """timm's val figures at the size this entry runs at (reference protocol), from its results
        tables (its package ships none: data/timm_published.csv, imagenet_bench.models.timm_published)."""
        from . import timm_published

        found = timm_published.lookup(self.id, "imagenet-val", self.reference_preprocess().crop_size)
        return None if found is None else {"acc1": found.acc1, "acc5": found.acc5, "source": found.source}

    def reference_preprocess(self, use_test_size: bool = True) -> Preprocess:
        """timm's eval transform of the pretrained config at its test size, through timm's own API."""
        try:
            return _preprocess(self.name, use_test_size)
        except UsageError as exc:
            raise UsageError(f"{self.id}: not runnable: {exc}") from None

    def seed2019_preprocess(self) -> Preprocess:
        raise UsageError(f"{self.id}: --protocol seed2019 covers only the 21 torchvision models of 2019")

    def preprocess(self, protocol: str) -> Preprocess:
        """This model's preprocessing under a protocol (decided in sources.preprocess_for)."""
        found: Preprocess = sources.preprocess_for(self, protocol)
        return found

    def build(self, weights_file: Path | None = None) -> tuple[Any, dict[str, Any]]:
        """The model with its pre-trained weights, and the manifest's ``weights`` record.

        Without a file: ``timm.create_model(name, pretrained=True)`` (Hugging Face hub, or the
        config's URL). With a file (a state dict: .safetensors, .pth/.bin; or, for a config with
        ``custom_load``, the original .npz): the same ``create_model(name, pretrained=True)`` with
        file as the config's source (``pretrained_cfg_overlay=dict(file=...)``), so the network,
        timm's checkpoint filter and its strict load are those of the download.
        """
        from ..outputs.predfiles import sha256_file

        cfg = _cfg(self.name)
        record: dict[str, Any] = {
            "id": self.name,
            "architecture": cfg["architecture"],
            "tag": cfg["tag"],
            "hf_hub_id": cfg.get("hf_hub_id"),
            "url": cfg.get("url") or None,
            "timm": timm.__version__,
        }
        if weights_file is not None:
            model = self._build_from_file(Path(weights_file))
            record.update(source="file", path=str(weights_file), sha256=sha256_file(weights_file))
        else:
            try:
                model = create(self.name, pretrained=True)
            except IncompleteLoad as exc:
                raise RuntimeError(f"{self.id}: {exc}") from None
            except (OSError, RuntimeError, ValueError) as exc:  # hub/URL errors are OSErrors
                raise RuntimeError(
                    f"{self.id}: cannot download the weights {_source(cfg)} "
                    f"({type(exc).__name__}: {_first_line(exc, 160)}); {_cache_hint(cfg)}"
                ) from None
            cached = _cached_file(cfg)
            record.update(
                source="timm download",
                path=str(cached) if cached else None,
                sha256=sha256_file(cached) if cached else None,
            )
        record["pretrained_cfg"] = _plain(dict(cfg))
        return model, record

    def _build_from_file(self, path: Path) -> Any:
        if not path.is_file():
            raise UsageError(f"{path}: --weights-file does not exist")
        from .torch_build import refuse_foreign_weights

        refuse_foreign_weights(path, "a timm checkpoint (.safetensors, or a state dict saved by torch.save)")
        # timm's own file source: load_state_dict (safetensors or torch, EMA weights first), the
        # architecture's checkpoint filter, then the load. custom_load (the original .npz format
        # of some configs) only when the file is such an .npz; the hub's files are state dicts.
        custom_load = path.suffix == ".npz" and bool(_cfg(self.name).get("custom_load"))
        try:
            return create(
                self.name, pretrained=True, pretrained_cfg_overlay={"file": str(path), "custom_load": custom_load}
            )
        except Exception as exc:  # unreadable, or refused by the checkpoint filter or the load
            raise UsageError(
                f"{path}: does not fit {self.id} or is not a checkpoint ({type(exc).__name__}: {_first_line(exc)})"
            ) from None


class IncompleteLoad(RuntimeError):
    """Checkpoint keys missing or unexpected in a load that timm does non-strictly."""


class _KeyReport(logging.Filter):
    """Collects timm's 'Missing keys' / 'Unexpected keys' messages of a non-strict load (logged at
    INFO / WARNING), and lets through only the records the logger would have let through anyway."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(("Missing keys", "Unexpected keys")):
            self.messages.append(message)
        return record.levelno >= self.level


@contextlib.contextmanager
def _strict_load() -> Iterator[_KeyReport]:
    logger = logging.getLogger("timm.models._builder")
    level = logger.level
    report = _KeyReport(logger.getEffectiveLevel())
    logger.addFilter(report)
    logger.setLevel(logging.INFO)
    try:
        yield report
    finally:
        logger.removeFilter(report)
        logger.setLevel(level)


def create(name: str, pretrained: bool, **kwargs: Any) -> Any:
    """``timm.create_model`` for one entry, its 1000 classes kept.

    A few architectures (DLA) load their pretrained weights non-strictly in timm; a missing or
    unexpected key, which would leave part of the network random, is an error here.
    """
    with _strict_load() as report:
        model = timm.create_model(name, pretrained=pretrained, **kwargs)
    if report.messages:
        raise IncompleteLoad(f"incomplete load: {report.messages[0][:300]}")
    return model


@functools.cache
def _costs_counted_here() -> None:
    """Warn once when data/timm_costs.csv was counted with another timm than the one installed:
    an architecture changed since would show the old counts."""
    counted_with = timm_costs.table().timm_version
    if counted_with != timm.__version__:
        warnings.warn(
            f"{timm_costs.COSTS_CSV.name} was counted with timm {counted_with}, timm {timm.__version__} "
            "is installed: parameters and GFLOPs of changed architectures may be off (regenerate: "
            "python -m tools.timm_costs RESULTS_DIR)",
            stacklevel=2,
        )


@functools.cache
def _num_params(name: str) -> int:
    return timm_costs.count_params(name)


@functools.cache
def _preprocess(name: str, use_test_size: bool) -> Preprocess:
    """An entry's preprocessing, worked out once (the listing asks for it twice: its row, its GFLOPs)."""
    return preprocess_from_cfg(_cfg(name), use_test_size)


def _first_line(exc: BaseException, limit: int = 300) -> str:
    """The exception's message on one line (torch's load errors span several), shortened."""
    text = " ".join(str(exc).split())
    return (text[: limit - 3] + "...") if len(text) > limit else (text or type(exc).__name__)


def _source(cfg: dict[str, Any]) -> str:
    return f"hf-hub:{cfg['hf_hub_id']}" if cfg.get("hf_hub_id") else str(cfg.get("url"))


def _cache_hint(cfg: dict[str, Any]) -> str:
    if cfg.get("hf_hub_id"):
        from huggingface_hub import constants

        return (
            f"timm caches hub weights in {constants.HF_HUB_CACHE} (HF_HUB_CACHE or HF_HOME; default "
            f"~/.cache/huggingface/hub): fill it where there is network, or pass --weights-file with "
            f"the model.safetensors of https://huggingface.co/{cfg['hf_hub_id']}"
        )
    import torch

    return (
        f"timm caches it in {Path(torch.hub.get_dir()) / 'checkpoints'} (TORCH_HOME/hub/checkpoints): put "
        "the file there, or pass --weights-file with it"
    )


def _cached_file(cfg: dict[str, Any]) -> Path | None:
    """The file timm loaded from its cache, when it can be told: for the sha256 of the manifest."""
    if cfg.get("hf_hub_id"):
        from huggingface_hub import try_to_load_from_cache

        repo, _, revision = cfg["hf_hub_id"].partition("@")
        for filename in (cfg["hf_hub_filename"],) if cfg.get("hf_hub_filename") else HF_WEIGHTS_FILES:
            found = try_to_load_from_cache(repo, filename, revision=revision or None)
            if isinstance(found, str):
                return Path(found)
        return None
    if cfg.get("url"):
        import torch

        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg["url"]).name
        return path if path.exists() else None
    return None


def _plain(value: Any) -> Any:
    """Tuples to lists, so the config goes into JSON as it reads back."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def imagenet1k_names() -> tuple[str, ...]:
    """timm's pretrained names whose config has the 1000 ImageNet-1k classes."""
    return tuple(name for name in timm.list_pretrained() if _cfg(name).get("num_classes") == 1000)


@functools.cache
def _scan() -> tuple[tuple[TimmEntry, ...], tuple[tuple[str, str], ...]]:
    entries, excluded = [], []
    for name in sorted(imagenet1k_names()):
        try:
            preprocess_from_cfg(_cfg(name))
        except UsageError as exc:
            excluded.append((PREFIX + name, f"preprocessing not expressible: {exc}"))
        else:
            entries.append(TimmEntry(PREFIX + name, name))
    return tuple(entries), tuple(excluded)


def entries() -> tuple[TimmEntry, ...]:
    """Every runnable ImageNet-1k entry, sorted by id."""
    return _scan()[0]


def excluded() -> tuple[tuple[str, str], ...]:
    """(id, reason) of 1000-class entries that are not run (their preprocessing cannot be expressed)."""
    return _scan()[1]


def by_id() -> dict[str, TimmEntry]:
    return {entry.id: entry for entry in entries()}
