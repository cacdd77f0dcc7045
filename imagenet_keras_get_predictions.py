#!/usr/bin/env python
"""Top-k predictions of Keras's pre-trained classifiers (keras.applications) on the ImageNet val set.

Writes, per model, {model}_keras_imagenet_top5preds.npy / _top5probs.npy and a manifest
(how they were made) into one output folder per dataset and protocol; rank them with
imagenet_benchmarking.py. Each model runs in its own child process; by default one
image at a time, as in 2019 (-b N: batches of N).

Examples:
  python imagenet_keras_get_predictions.py /data/imagenet/val               # every model
  python imagenet_keras_get_predictions.py VAL -m 'efficientnetb*' -b 32
  python imagenet_keras_get_predictions.py VAL -m mobilenetV2 --weights-file mobilenet_v2.h5
  python imagenet_keras_get_predictions.py VAL --protocol seed2019 -o keras_seed2019/
  python imagenet_keras_get_predictions.py --list-models
"""

from __future__ import annotations

import argparse
from pathlib import Path

from imagenet_bench.base.errors import EXIT_OK, run_main, show_library_messages
from imagenet_bench.models import sources
from imagenet_bench.predict import cli, keras_run, listing, runner

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.new_parser(__doc__)
    models = cli.add_model_args(
        parser,
        "'efficientnet*', 'mobilenet_0.25_*', 'keras_hub.resnet*'",
        "local ImageNet weights (.h5 / .weights.h5; a KerasHub preset: its folder)",
    )
    models.add_argument(
        "--source",
        choices=sources.names("keras"),
        default=sources.names("keras")[0],
        help="keras (keras.applications, the default), keras_hub (KerasHub's ImageNet-1k presets), or all",
    )
    group = cli.add_run_args(
        parser,
        HERE / "keras_imagenet",
        "keras",
        1,
        "images per model call (default 1: one image at a time, as in 2019)",
        "image decoding threads (default 2)",
    )
    group.add_argument(
        "--check-batching",
        type=cli.count(1),
        metavar="K",
        help="also run the first K images both one at a time and batched (-b, or 32), and record "
        "top-1 agreement and the largest probability difference in the manifest",
    )
    group.add_argument(
        "-g", "--gpu", type=cli.count(0), help="GPU index (2019 flag): CUDA_VISIBLE_DEVICES for the model process"
    )
    group.add_argument("--gpus", metavar="I,J,...", help="run models in parallel, one process per GPU (e.g. 0,1,2,3)")
    group.add_argument(
        "--jit-compile", action="store_true", help="XLA-compile the predict function (default: off, set explicitly)"
    )
    args = parser.parse_args(argv)
    cli.validate_args(parser, args)
    return args


def main() -> int:
    args = parse_args()
    show_library_messages(args.verbose)
    part = runner.parse_shard(args.model_shard)
    if args.list_models:
        if cli.listed_subset(args):
            print(cli.listed_subset(args))
        listing.print_models("keras", args.source, args.protocol, part)
        return EXIT_OK
    return keras_run.run(keras_run.KerasOptions.from_args(args), part)


if __name__ == "__main__":
    run_main(main)
