"""Regenerate ImageNet-C from the val images, in the released layout, seeded per image.

Writes OUT/<corruption>/<severity>/<wnid>/<name>.JPEG (Resize(256), CenterCrop(224), corrupt,
JPEG quality 85) with imagecorruptions-imaug, and OUT/corruption.json saying how. Two runs, with
any number of workers, write identical bytes; a rerun writes only the missing files.

Examples:
  python -m imagenet_bench.corrupt /data/imagenet/val imagenet-c -j 16
  python -m imagenet_bench.corrupt VAL imagenet-c-5k --per-class 5 --corruptions all
  python -m imagenet_bench.corrupt VAL out --corruptions gaussian_noise glass_blur --severities 1,3,5
"""

from __future__ import annotations

import argparse
from pathlib import Path

from imagenet_bench.base.errors import EXIT_OK, run_main
from imagenet_bench.datasets import corruptions, imagenet_c
from imagenet_bench.predict import cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.Parser(
        prog="python -m imagenet_bench.corrupt",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2] + "\nExit status: 0 ok, 2 bad input, 130 interrupted.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("val_dir", metavar="VAL_DIR", type=Path, help="the val images in WordNet-id class folders")
    parser.add_argument("out", metavar="OUT", type=Path, help="the folder to write (outside VAL_DIR)")
    parser.add_argument(
        "--corruptions",
        nargs="+",
        metavar="NAME",
        help=f"benchmark (the 15 of the mCE, default), extra ({', '.join(imagenet_c.EXTRA)}), all, or names",
    )
    parser.add_argument("--severities", default="1-5", help="1-5 (default), one number, or a list like 1,3,5")
    parser.add_argument(
        "--per-class", type=cli.count(1), metavar="N", help="only the first N images of each class (5: 5,000 images)"
    )
    parser.add_argument("-j", "--jobs", type=cli.count(1), default=1, metavar="N", help="worker processes (default 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = corruptions.parse_corruptions(args.corruptions)
    severities = corruptions.parse_severities(args.severities)
    corruptions.regenerate(args.val_dir, args.out, chosen, severities, args.per_class, args.jobs)
    return EXIT_OK


if __name__ == "__main__":
    run_main(main)
