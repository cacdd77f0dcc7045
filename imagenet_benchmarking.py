#!/usr/bin/env python
"""Rank pre-trained ImageNet classifiers from their prediction files.

Reads every ``{model}_{platform}_imagenet_top5preds.npy`` (and its probs and
manifest) at the top level of the given folders and prints the table
Platform | Model | Acc@1 | Acc@5 | Rank@1 | Rank@5, sorted by Acc@1. Needs no
dataset and imports neither torch, TensorFlow nor timm.

Examples:
  python imagenet_benchmarking.py                      # keras_imagenet/ and pytorch_imagenet/
  python imagenet_benchmarking.py --download seed-2019 # the 2019 table, fetched
  python imagenet_benchmarking.py --dir runs/a100 --published --ci --format markdown
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from imagenet_bench.base import atomic
from imagenet_bench.base.errors import EXIT_OK, EXIT_PARTIAL_FAILURE, UsageError, one_line, run_main, shown
from imagenet_bench.report import columns, table_run
from imagenet_bench.report.column_set import EXTRA_COLUMNS, ColumnSet
from imagenet_bench.report.table_format import RENDERERS, render
from imagenet_bench.scoring import score as scoring
from imagenet_bench.scoring import score_cache

HERE = Path(__file__).resolve().parent
LABEL_ERRORS = "label-errors"  # clean_labels.DOWNLOAD, without importing it for every table


def _add_file_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("prediction files")
    group.add_argument(
        "-k",
        "--keras-dir",
        type=Path,
        default=None,
        help=f"folder of Keras prediction files (default: {HERE / 'keras_imagenet'}; may be absent)",
    )
    group.add_argument(
        "-p",
        "--pytorch-dir",
        type=Path,
        default=None,
        help=f"folder of PyTorch prediction files (default: {HERE / 'pytorch_imagenet'}; may be absent)",
    )
    group.add_argument(
        "--dir",
        dest="dirs",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="another folder of prediction files (repeatable)",
    )
    group.add_argument(
        "-r",
        "--recursive",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="every output folder (one with dataset.json) below DIR, e.g. runs/ holding val/, "
        "v2/, sketch/ (repeatable)",
    )
    group.add_argument(
        "--download",
        metavar="NAME",
        help="fetch a published set of prediction files (seed-2019) and rank it, or the "
        "label-error data for --clean-labels (label-errors)",
    )
    group.add_argument(
        "--download-dir", type=Path, metavar="DIR", help="where --download puts the files (default: downloads/NAME)"
    )
    group.add_argument(
        "--download-url", metavar="URL", help="fetch --download from this mirror instead (same relative paths)"
    )


def _add_label_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("labels (first that applies)")
    group.add_argument(
        "val_dir", nargs="?", type=Path, help="the val folder the predictions were made on (same as --val-dir)"
    )
    group.add_argument(
        "--val-dir",
        dest="val_dir_flag",
        type=Path,
        metavar="DIR",
        help="val folder (ImageFolder, or flat with --val-ground-truth), ordered as the "
        "prediction scripts order it: by class, then file name",
    )
    group.add_argument("--labels", type=Path, metavar="FILE.npy", help="N labels in row order")
    group.add_argument(
        "--val-ground-truth",
        type=Path,
        metavar="FILE",
        help="val ground truth (val_full.txt, LOC_val_solution.csv or devkit format): labels "
        "for a flat --val-dir, and file names for --real-labels on the standard 50,000 order",
    )


def _add_column_args(parser: argparse.ArgumentParser) -> None:
    """Each column set's options (``columns.COLUMN_SETS``, in its help section), then the
    options about the whole table."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for column_set in columns.COLUMN_SETS:
        if column_set.flag or type(column_set).add_arguments is not ColumnSet.add_arguments:
            if column_set.group not in groups:
                groups[column_set.group] = parser.add_argument_group(column_set.group)
            column_set.add_arguments(groups[column_set.group])
    group = groups.get(EXTRA_COLUMNS) or parser.add_argument_group(EXTRA_COLUMNS)
    group.add_argument(
        "--label-issues",
        type=Path,
        metavar="FILE.csv",
        help="write the images whose label the top-1 consensus of the models contradicts (at least "
        "half of them chose one other class), ranked; print how many at 50-100%% agreement, "
        "and, with --clean-labels imagenet_mturk.json, how many the crowd confirmed",
    )
    group.add_argument(
        "--confident-learning",
        action="store_true",
        help="with --label-issues: also flag labels by confident learning (the cleanlab package) on "
        "the mean top-k probabilities of the models",
    )
    group.add_argument("--sort", metavar="COLUMN", help="sort by this column (header or key) instead of Acc@1")


def _add_output_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("--format", choices=sorted(RENDERERS), default="text", help="standard output format")
    group.add_argument(
        "-o",
        "--output-dir",
        "--csv",
        dest="csv",
        type=Path,
        metavar="FILE.csv",
        help="also write the table as CSV to this file (-o/--output-dir: the 2019 name)",
    )
    group.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="draw the table as a chart (with --calibration: ECE against Acc@1 and the reliability "
        "diagrams of the first 12 rows)",
    )
    group.add_argument(
        "--html",
        type=Path,
        metavar="FILE.html",
        help="also write the table as one self-contained HTML page (sortable, filterable, charts, "
        "each model's provenance)",
    )
    group.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="where scores of unchanged files are kept for reruns "
        f"(default {score_cache.default_root() or 'none: there is no home folder'})",
    )
    group.add_argument("--no-cache", action="store_true", help="read every file, keep no scores")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 ok, 1 some models' files were unusable (warned, rest ranked), 2 bad input.",
    )
    for add in (_add_file_args, _add_label_args, _add_column_args, _add_output_args):
        add(parser)
    args = parser.parse_args(argv)
    if args.indices_to_omit and args.indices_to_keep:
        parser.error("-i/--indices_to_omit and -j/--indices_to_keep cannot be used together")
    if args.confident_learning and not args.label_issues:
        parser.error("--confident-learning needs --label-issues FILE.csv")
    if args.label_issues and (args.indices_to_omit or args.indices_to_keep or args.custom_labels):
        parser.error(
            "--label-issues looks at every image of the primary test set with its given label: run it without -i/-j/-l"
        )
    if args.val_dir and args.val_dir_flag and args.val_dir != args.val_dir_flag:
        parser.error("the positional val_dir and --val-dir name different folders")
    args.val_dir = args.val_dir or args.val_dir_flag
    return args


def folders(args: argparse.Namespace) -> list[scoring.PredictionFolder]:
    if args.download:
        from imagenet_bench.outputs import download

        root = download.fetch(args.download, args.download_dir, base_url=args.download_url)
        found = [scoring.PredictionFolder(root / name, True) for name in ("keras_imagenet", "pytorch_imagenet")]
    elif args.recursive:  # the folders beside the script only when named
        found = [scoring.PredictionFolder(d, True) for d in (args.keras_dir, args.pytorch_dir) if d is not None]
    else:
        found = [
            scoring.PredictionFolder(args.keras_dir or HERE / "keras_imagenet", args.keras_dir is not None),
            scoring.PredictionFolder(args.pytorch_dir or HERE / "pytorch_imagenet", args.pytorch_dir is not None),
        ]
    found += [scoring.PredictionFolder(d, True) for d in args.dirs]
    for root in args.recursive:
        found += scoring.output_folders(root)
    return found


OUTPUT_FLAGS = {"csv": "-o", "plot": "--plot", "html": "--html", "label_issues": "--label-issues"}


def validate_outputs(args: argparse.Namespace, found: list[scoring.PredictionFolder]) -> None:
    """No output over an input: every file another option names, and the prediction folders."""
    from imagenet_bench.report import output_paths

    outputs = {OUTPUT_FLAGS[key]: getattr(args, key) for key in OUTPUT_FLAGS if getattr(args, key) is not None}
    if not outputs:
        return
    named = [value for key, value in vars(args).items() if key not in OUTPUT_FLAGS and isinstance(value, Path)]
    named += [value for value in (c.option(args) for c in columns.COLUMN_SETS) if isinstance(value, Path)]
    output_paths.validate(outputs, named, [f.folder for f in found])


def options(args: argparse.Namespace) -> table_run.TableOptions:
    found = folders(args)
    validate_outputs(args, found)
    return table_run.TableOptions(
        folders=found,
        val_dir=args.val_dir,
        val_ground_truth=args.val_ground_truth,
        labels=args.labels,
        columns={column_set.name: column_set.option(args) for column_set in columns.COLUMN_SETS},
        label_issues=args.label_issues is not None,
        confident_learning=args.confident_learning,
        sort=args.sort,
        plot=args.plot is not None,
        cache_root=None if args.no_cache else (args.cache_dir or score_cache.default_root()),
    )


def write_output(path: Path, write: Callable[[], object]) -> None:
    """Run ``write``; an OSError (no such folder, no permission) becomes one line naming ``path``."""
    try:
        write()
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot write ({exc.strerror or exc}); check that its folder exists and is writable"
        ) from None


def main() -> int:
    args = parse_args()
    if args.download == LABEL_ERRORS:  # data for --clean-labels, not prediction files
        from imagenet_bench.outputs import download

        download.fetch(args.download, args.download_dir, base_url=args.download_url)
        if not args.clean_labels:
            return EXIT_OK
        args.download = None
    built = table_run.build(options(args))
    result = built.table
    for note in result.notes:
        print(one_line(note), file=sys.stderr)
    sys.stdout.write(render(result, args.format))
    if args.csv:
        write_output(args.csv, lambda: atomic.write_text(args.csv, render(result, "csv")))
    if args.plot:
        from imagenet_bench.report import plot

        write_output(args.plot, lambda: plot.plot(result, args.plot))
    if args.html:
        from imagenet_bench.report import html_report

        write_output(args.html, lambda: html_report.write(args.html, result, html_report.report_info()))
    issues = built.issues
    if issues is not None:
        write_output(args.label_issues, lambda: issues.write(args.label_issues))
        for line in issues.summary():
            print(one_line(line), file=sys.stderr)
        print(f"label issues: {len(issues.rows):,} images written to {shown(args.label_issues)}", file=sys.stderr)
    for warning in built.warnings:
        print(f"warning: {one_line(warning)}", file=sys.stderr)
    for failure in built.failures:
        print(f"warning: {one_line(failure)}", file=sys.stderr)
    return EXIT_PARTIAL_FAILURE if built.failures else EXIT_OK


if __name__ == "__main__":
    run_main(main)
