"""Command-line pieces both prediction scripts share: their common flags, the data
they read, and which models they run. Each script adds its platform's own flags.

Every numeric flag is parsed by a checking type (``count``, ``gibibytes``...), so a
bad value gets argparse's one line, ``error: argument FLAG: ...``, and exit status 2,
never a traceback or a value silently clipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn, Self

from ..base.classes import NUM_CLASSES
from ..base.errors import EXIT_USAGE, UsageError
from ..datasets import class_subset, layout, test_sets
from ..datasets.layout import Dataset
from ..datasets.preprocessing import PROTOCOLS, Preprocess
from ..outputs.predfiles import sha256_unchanged
from . import runner

PROTOCOL_HELP = (
    "reference: each model's own preprocessing (default); seed2019: exactly the 2019 script, for "
    "its models only; common: one rule for every model on both platforms (shorter side to "
    "round(size/0.875), PIL bilinear, centre crop, the model's own normalisation)"
)


@dataclass(frozen=True)
class RunOptions:
    """The flags both prediction scripts share, typed; read from argparse once (``from_args``),
    so that nothing below the scripts sees the namespace. Each script's options extend it."""

    val_dir: Path | None
    val_ground_truth: Path | None
    limit: int | None
    per_class: int | None
    test_set: str | None
    class_subset: str | None
    model: list[str]
    exclude: list[str]
    weights_file: list[str]
    source: str
    protocol: str
    authors_rule: bool | None  # None: the test set's own default (ImageNet-C: its authors' rule)
    output_dir: Path
    batch_size: int
    workers: int
    tf32: bool
    topk: int
    save_all_probs: bool
    overwrite: bool
    cache_dir: Path | None
    verbose: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Self:
        return cls(**{field.name: getattr(args, field.name) for field in dataclasses.fields(cls)})


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as the scripts' one ``error:`` line (and a pointer to --help)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    parse.__name__ = f"integer of at least {minimum}"
    return parse


def gibibytes(text: str) -> float:
    """An argparse type: a finite number of GiB above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of GiB, not {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of GiB above 0, not {text}")
    return value


def new_parser(doc: str) -> argparse.ArgumentParser:
    parser = Parser(
        description=doc.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 ok, 1 some model failed (others done), 2 bad input.",
    )
    parser.add_argument(
        "val_dir",
        nargs="?",
        type=Path,
        help="val set: ImageFolder (class folders named by WordNet id) or flat with --val-ground-truth; "
        "or a folder of test sets (ImageNet-C's <corruption>/<severity>/, or val, ImageNetV2... folders): "
        "each one's outputs go to OUT/<its path below the folder>/",
    )
    group = parser.add_argument_group("data")
    group.add_argument(
        "--val-ground-truth",
        type=Path,
        metavar="FILE",
        help="labels of a flat val folder: val_full.txt, LOC_val_solution.csv, or the devkit's "
        "ILSVRC2012_validation_ground_truth.txt (with meta.mat beside it)",
    )
    group.add_argument("--limit", type=count(1), metavar="N", help="only the first N images (canonical order)")
    group.add_argument("--per-class", type=count(1), metavar="K", help="only the first K images of each class")
    group.add_argument(
        "--test-set",
        choices=list(test_sets.TEST_SETS),
        metavar="NAME",
        help=f"which test set the folder holds ({', '.join(test_sets.TEST_SETS)}); default: "
        "recognised from the folder (numeric class folders: ImageNetV2; exactly ImageNet-A's "
        "or -R's 200 classes; a folder named sketch; a declared test set's own class folders), "
        "else imagenet-val",
    )
    group.add_argument(
        "--class-subset",
        metavar="FILE|none",
        help="restrict every model's 1000 outputs to these classes (WordNet ids or class indices, "
        "one a line) before the softmax and top-k; imagenet-a and imagenet-r default to their "
        "200 classes, and none turns that off",
    )
    return parser


def add_model_args(parser: argparse.ArgumentParser, examples: str, weights_help: str) -> argparse._ArgumentGroup:
    group = parser.add_argument_group("models")
    group.add_argument(
        "-m",
        "--model",
        nargs="+",
        default=["all"],
        metavar="ID",
        help=f"model ids or glob patterns ({examples}), or all (default)",
    )
    group.add_argument("--exclude", nargs="+", default=[], metavar="ID", help="ids or patterns to leave out")
    group.add_argument(
        "--list-models",
        action="store_true",
        help="list ids, parameters, published accuracy and preprocessing; build nothing",
    )
    group.add_argument(
        "--weights-file",
        action="append",
        default=[],
        metavar="PATH|ID=PATH",
        help=f"{weights_help} instead of downloading, for offline machines: PATH with one model, "
        "or ID=PATH (repeatable)",
    )
    group.add_argument(
        "--model-shard",
        metavar="I/N",
        help="run only part I of N of the model list, or of the (model, test set) pairs of a folder of "
        "test sets (default from Slurm array variables)",
    )
    group.add_argument("--protocol", choices=PROTOCOLS, default="reference", help=PROTOCOL_HELP)
    rules = group.add_mutually_exclusive_group()
    rules.add_argument(
        "--authors-rule",
        action="store_true",
        default=None,
        help="on a test set whose authors preprocess otherwise (imagenet-9: the 224 x 224 images fed "
        "unresized), their rule instead of each model's resize and crop; the manifest records which ran",
    )
    rules.add_argument(
        "--model-rule",
        dest="authors_rule",
        action="store_false",
        default=None,
        help="on a test set whose authors' rule is the default (imagenet-c: the 224 x 224 images "
        "centre-cropped), each model's own resize and crop instead; recorded in the manifest",
    )
    return group


def add_run_args(
    parser: argparse.ArgumentParser,
    default_output: Path,
    platform: str,
    batch_default: int,
    batch_help: str,
    workers_help: str,
) -> argparse._ArgumentGroup:
    group = parser.add_argument_group("running")
    group.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=default_output,
        help=f"output folder (default: {default_output.name}/ beside this script)",
    )
    group.add_argument("-b", "--batch-size", type=count(1), default=batch_default, help=batch_help)
    group.add_argument("-j", "--workers", type=count(0), default=2, help=workers_help)
    group.add_argument("--tf32", action="store_true", help="allow TF32 on Ampere+ GPUs (default: off)")
    group.add_argument(
        "-k",
        "--topk",
        type=count(5),
        default=5,
        help="classes kept per image (default 5; at least 5, for Acc@5; at most the number of classes)",
    )
    group.add_argument(
        "--save-all-probs",
        action="store_true",
        help=f"also write the N x 1000 probabilities ({{model}}_{platform}_imagenet_allprobs.npy)",
    )
    group.add_argument("--overwrite", action="store_true", help="redo models whose outputs are complete")
    group.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="keep decoded, resized, cropped pixels here (keyed by dataset and preprocessing) and "
        "reuse them across runs, processes and both scripts",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="tracebacks for failed models, and the libraries' own warnings and start-up messages",
    )
    return group


def validate_args(parser: argparse.ArgumentParser, args: argparse.Namespace, num_classes: int = NUM_CLASSES) -> None:
    """What the types alone cannot check. ``num_classes``: the classes a model is scored on."""
    if args.topk > num_classes:
        parser.error(f"argument -k/--topk: must be at most the {num_classes} classes, not {args.topk}")


def load_dataset(options: RunOptions) -> Dataset:
    """The val folder's images, its test set and class subset (--test-set, --class-subset),
    then --per-class and --limit."""
    if options.val_dir is None:
        raise UsageError("VAL_DIR is required (the val folder), unless --list-models")
    dataset = layout.scan(options.val_dir, options.val_ground_truth, options.test_set)
    subset = test_sets.choose_subset(dataset.test_set, options.class_subset)
    class_subset.validate_topk(options.topk, subset)
    own = test_sets.TEST_SETS[dataset.test_set].own_classes
    if subset is not None:
        kept = set(subset.indices)
        if own is None:
            never = [str(c) for c in dataset.classes_present if c not in kept]
        else:  # a class of its own can be right while one of the classes it accepts is kept
            never = [own().folders[c] for c in dataset.classes_present if not kept & set(own().accepts[c])]
        if never:
            warnings.warn(
                f"{len(never)} classes of {options.val_dir} are outside the class subset "
                f"({subset.short()}), first class {never[0]}: their images can never be right",
                stacklevel=2,
            )
    return layout.select(replace(dataset, class_subset=subset), options.limit, options.per_class)


def listed_subset(args: argparse.Namespace) -> str | None:
    """--list-models: the class subset the run would use, when it is known without the folder."""
    if args.class_subset is None and args.test_set is None:
        return None
    subset = test_sets.choose_subset(args.test_set or test_sets.VAL, args.class_subset)
    class_subset.validate_topk(args.topk, subset)
    described = "none (all 1000 outputs)" if subset is None else f"restricted to {subset.short()}"
    return f"test set {args.test_set or 'recognised from VAL_DIR'}; class subset: {described}"


def choose_models(available: Sequence[str], options: RunOptions, seed_2019_ids: Sequence[str]) -> list[str]:
    """-m/--exclude, and the 2019 models only under --protocol seed2019 (--model-shard shares
    out the pairs of these and the test sets: ``sweep.this_job``)."""
    chosen = runner.select_models(available, options.model, options.exclude)
    if options.protocol == "seed2019":
        refused = [m for m in chosen if m not in seed_2019_ids]
        if refused and options.model != ["all"]:
            raise UsageError(
                f"--protocol seed2019 covers only the {len(seed_2019_ids)} models of 2019, not {', '.join(refused[:5])}"
            )
        chosen = [m for m in chosen if m in seed_2019_ids]
    if not chosen:
        raise UsageError("no models selected (check -m/--exclude)")
    return chosen


def describe(preprocess: Preprocess) -> str:
    """One line for --list-models."""
    p = preprocess
    if p.resize_mode == "crop_fraction":
        text = f"centre {p.crop_size}/{p.crop_size + 32} of shorter side, {p.interpolation} to {p.crop_size}"
    else:
        text = f"{p.resize_mode} {p.resize_size} {p.interpolation} / crop {p.crop_size}"
    return f"{text}, {p.normalization}"


def request_common(
    options: RunOptions, preprocess: Preprocess, dataset: Dataset, weights_file: Path | None
) -> dict[str, Any]:
    """What every model's outputs must have been made with to be reused (resume)."""
    return {
        "weights_file": str(weights_file.resolve()) if weights_file else None,
        "weights_file_sha256": sha256_unchanged(weights_file) if weights_file else None,
        "preprocess": preprocess.to_dict(),
        "dataset": dataset.fingerprint,
        "topk": options.topk,
        "save_all_probs": options.save_all_probs,
        "tf32": options.tf32,
    }
