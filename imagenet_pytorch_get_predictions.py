#!/usr/bin/env python
"""Top-k predictions of torchvision's (or timm's, or your own) pre-trained classifiers on the ImageNet val set.

Writes, per model, {model}_pytorch_imagenet_top5preds.npy / _top5probs.npy and a
manifest (how they were made) into one output folder per dataset and protocol;
rank them with imagenet_benchmarking.py.

Examples:
  python imagenet_pytorch_get_predictions.py /data/imagenet/val            # every model
  python imagenet_pytorch_get_predictions.py VAL -m 'resnet*' --exclude '*.IMAGENET1K_V2'
  python imagenet_pytorch_get_predictions.py VAL -m mobilenet_v2 --weights-file mnv2.pth
  python imagenet_pytorch_get_predictions.py --list-models
"""

from __future__ import annotations

import argparse
from pathlib import Path

from imagenet_bench.base.errors import EXIT_OK, run_main, show_library_messages
from imagenet_bench.models import sources
from imagenet_bench.predict import child_process, cli, listing, runner, torch_run

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.new_parser(__doc__)
    group = cli.add_model_args(parser, "resnet*", "a local state dict")
    group.add_argument(
        "--source",
        choices=sources.names("pytorch"),
        default=sources.names("pytorch")[0],
        help="torchvision's weights (default), timm's pre-trained ImageNet-1k models (ids timm.NAME), or both",
    )
    group.add_argument(
        "--model-spec",
        metavar="MODULE:FUNCTION",
        help="benchmark any classifier: FUNCTION() returns (model, imagenet_bench.datasets.preprocessing."
        "Preprocess); needs --name",
    )
    group.add_argument("--name", metavar="ID", help="model id for --model-spec")

    group = cli.add_run_args(
        parser,
        HERE / "pytorch_imagenet",
        "pytorch",
        64,
        "images per batch (default 64)",
        "DataLoader worker processes (default 2)",
    )
    group.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    group.add_argument("-g", "--gpu", type=cli.count(0), help="GPU index (2019 flag; same as --device cuda:N)")
    group.add_argument("--amp", choices=("bf16", "fp16"), help="autocast to this dtype (default: float32)")
    group.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    group.add_argument(
        "--save-labels",
        action="store_true",
        help="2019 flag, kept for compatibility: labels are always written (dataset_labels.npy)",
    )

    group = parser.add_argument_group("decode once, run many")
    group.add_argument(
        "--group-size",
        type=cli.count(1),
        default=8,
        metavar="N",
        help="models with identical preprocessing share one pass over the data, at most N at a time "
        "(default 8; 1: one model at a time)",
    )
    group.add_argument(
        "--group-memory",
        type=cli.gibibytes,
        default=8.0,
        metavar="GIB",
        help="and at most this many GiB of float32 parameters per pass (default 8)",
    )
    args = parser.parse_args(argv)
    cli.validate_args(parser, args)
    if args.model_spec and not args.name:
        parser.error("--model-spec needs --name ID")
    if args.model_spec and args.weights_file:
        parser.error("--model-spec and --weights-file cannot be used together: load the weights in FUNCTION")
    return args


def main() -> int:
    args = parse_args()
    show_library_messages(args.verbose)
    part = runner.parse_shard(args.model_shard)
    if args.list_models:
        if cli.listed_subset(args):
            print(cli.listed_subset(args))
        listing.print_models("pytorch", args.source, args.protocol, part)
        return EXIT_OK
    return torch_run.run(torch_run.TorchOptions.from_args(args), part)


if __name__ == "__main__":
    child_process.end_with_launcher()  # a torchrun rank ends with its launcher (no-op otherwise)
    run_main(main)
