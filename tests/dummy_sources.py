"""The entries of two test sources, one per platform (their registry modules:
``dummy_torch_source.py``, ``dummy_keras_source.py``). ``tests/test_sources.py`` adds one line
per source to ``sources.SOURCES`` (through a ``sitecustomize`` in the scripts' environment) and
runs them through the prediction scripts, with nothing else changed.

The models are tiny and need no weights file: the mean colour of the crop, classified to the
nearest of 1000 fixed colours, so that different images get different classes."""

from __future__ import annotations

from typing import Any

import numpy as np

from imagenet_bench.datasets.preprocessing import Preprocess
from imagenet_bench.models import sources

CROP, RESIZE = 56, 64
CENTRES = np.random.default_rng(0).uniform(0.3, 0.6, (1000, 3)).astype(np.float32)  # RGB in 0..1


def expected_top1(mean_rgb: np.ndarray) -> np.ndarray:
    """The class each mean colour (N x 3, 0..1) is nearest to: the models' rule in numpy."""
    return np.argmin(((mean_rgb[:, None, :] - CENTRES[None]) ** 2).sum(-1), axis=1)


class _Entry:
    published = None
    note = ""

    def __init__(self, model_id: str, source: str) -> None:
        self.id, self.source = model_id, source

    def num_params(self) -> int:
        return 0

    def gflops(self) -> float | None:
        return None

    def seed2019_preprocess(self) -> None:
        return None

    def preprocess(self, protocol: str) -> Any:
        return sources.preprocess_for(self, protocol)

    def request(self) -> dict[str, Any]:
        return {"source": self.source, "model_spec": None, "weights": "nearest colour"}


class TorchEntry(_Entry):
    quantized, backend = False, None

    def reference_preprocess(self) -> Preprocess:
        return Preprocess(CROP, RESIZE, "shorter", "bilinear", "mean_std", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))

    def build(self, weights_file: Any = None) -> tuple[Any, dict[str, Any]]:
        import torch

        class NearestColour(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.register_buffer("centres", torch.from_numpy(CENTRES))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                mean = x.mean(dim=(2, 3))
                return -((mean[:, None, :] - self.centres[None]) ** 2).sum(-1) * 1000

        return NearestColour().eval(), {"id": self.id, "source": "built in the test"}


class KerasEntry(_Entry):
    input_size = CROP
    weights_in_folder = False
    weights_folder = None
    preprocess_input = "x / 255"

    def reference_preprocess(self) -> Preprocess:
        return Preprocess(CROP, RESIZE, "shorter", "bilinear", "x / 255", None, None)

    def with_weights(self, weights_file: Any = None) -> KerasEntry:
        return self

    def protocol_source(self, protocol: str) -> str:
        return f"{protocol}: the test source's own"

    def preprocess_input_function(self, preprocess: Any) -> Any:
        return lambda x: x / 255.0

    def build(self, weights_file: Any = None) -> tuple[Any, dict[str, Any]]:
        import keras

        centres = keras.ops.convert_to_tensor(CENTRES)
        inputs = keras.Input((CROP, CROP, 3))
        mean = keras.layers.GlobalAveragePooling2D()(inputs)
        distance = keras.layers.Lambda(lambda m: keras.ops.sum((m[:, None, :] - centres[None]) ** 2, axis=-1))(mean)
        outputs = keras.layers.Softmax()(-1000 * distance)
        return keras.Model(inputs, outputs), {"id": self.id, "source": "built in the test"}


def registry(source: str, entry_class: type) -> tuple:
    """(entries, excluded, by_id): the three functions of a registry module, for a source of
    two ``entry_class`` entries and one left-out id."""
    made = tuple(entry_class(f"{source}.nearest_colour_{k}", source) for k in (1, 2))
    return (
        lambda: made,
        lambda: ((f"{source}.left_out", "a test of the left-out list"),),
        lambda: {entry.id: entry for entry in made},
    )
