"""The types of the manifest fields that readers use, checked where a manifest is read: a
manifest is input, and one wrongly typed field must cost its model, with a line naming the
file and the field, not the table. Absent fields are fine (older manifests lack some)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _object(value: Any) -> bool:
    return isinstance(value, dict)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _words(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _hashes(value: Any) -> bool:
    """Each .npy file's sha256 (beside the counts, n_images and topk)."""
    return isinstance(value, dict) and all(isinstance(v, str) for k, v in value.items() if str(k).endswith(".npy"))


# field: (what it must be, as a message says it, the check); None allowed where a run may not know
TOP: dict[str, tuple[str, Check]] = {
    **{name: ("text", _optional(_text)) for name in ("schema", "model", "platform", "created", "protocol")},
    **{
        name: ("an object", _optional(_object))
        for name in (
            "dataset",
            "request",
            "environment",
            "git",
            "framework",
            "weights",
            "published",
            "preprocessing",
            "device",
            "numerics",
            "throughput",
            "library_versions",
            "pass",
            "distributed",
        )
    },
    "command": ("a list of words", _optional(_words)),
    "outputs": ("an object of sha256 texts", _optional(_hashes)),
    **{name: ("a whole number", _optional(_whole)) for name in ("batch_size", "workers")},
    "params": ("a number", _optional(_number)),
    "gflops": ("a number", _optional(_number)),
}
NESTED: dict[tuple[str, str], tuple[str, Check]] = {
    ("outputs", "n_images"): ("a whole number", _optional(_whole)),
    ("outputs", "topk"): ("a whole number", _optional(_whole)),
    **{
        ("throughput", name): ("a number", _optional(_number))
        for name in (
            "wall_time_s",
            "images_per_s",
            "model_time_s",
            "model_images_per_s",
            "build_s",
            "first_batch_s",
            "steady_images_per_s",
        )
    },
    **{
        ("throughput", name): ("a whole number", _optional(_whole))
        for name in ("models_in_pass", "ranks", "first_batch_images")
    },
    ("published", "acc1"): ("a number", _optional(_number)),
    ("published", "acc5"): ("a number", _optional(_number)),
    ("published", "source"): ("text", _optional(_text)),
    ("device", "name"): ("text", _optional(_text)),
    ("request", "source"): ("text", _optional(_text)),
    ("preprocessing", "crop_size"): ("a whole number", _optional(_whole)),
    ("git", "commit"): ("text", _optional(_text)),
}


def wrong_field(manifest: dict[str, Any]) -> str | None:
    """The first field of ``manifest`` whose type is not what readers expect, said as
    ``'field' is <type>, not <what>``; None when all are right."""
    for name, (what, check) in TOP.items():
        if name in manifest and not check(manifest[name]):
            return f"field {name!r} is {type(manifest[name]).__name__}, not {what}"
    for (outer, name), (what, check) in NESTED.items():
        part = manifest.get(outer)
        if isinstance(part, dict) and name in part and not check(part[name]):
            return f"field '{outer}.{name}' is {type(part[name]).__name__}, not {what}"
    return None
