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
from pathlib import Path

import numpy as np

from imagenet_bench import atomic, layout, output_folder, scoring, table
from imagenet_bench.errors import EXIT_OK, EXIT_PARTIAL_FAILURE, UsageError, run_main
from imagenet_bench.table_format import RENDERERS, render

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 ok, 1 some models' files were unusable (warned, rest ranked), 2 bad input.",
    )
    group = parser.add_argument_group("prediction files")
    group.add_argument("-k", "--keras-dir", type=Path, default=None,
                       help=f"folder of Keras prediction files (default: {HERE / 'keras_imagenet'}; may be absent)")
    group.add_argument("-p", "--pytorch-dir", type=Path, default=None,
                       help=f"folder of PyTorch prediction files (default: {HERE / 'pytorch_imagenet'}; may be absent)")
    group.add_argument("--dir", dest="dirs", type=Path, action="append", default=[], metavar="DIR",
                       help="another folder of prediction files (repeatable)")
    group.add_argument("--download", metavar="NAME",
                       help="fetch a published set of prediction files (e.g. seed-2019) and rank it")
    group.add_argument("--download-dir", type=Path, metavar="DIR",
                       help="where --download puts the files (default: downloads/NAME)")
    group.add_argument("--download-url", metavar="URL",
                       help="fetch --download from this mirror instead (same relative paths)")

    group = parser.add_argument_group("labels (first that applies)")
    group.add_argument("val_dir", nargs="?", type=Path,
                       help="the val folder the predictions were made on (same as --val-dir)")
    group.add_argument("--val-dir", dest="val_dir_flag", type=Path, metavar="DIR",
                       help="val folder (ImageFolder, or flat with --val-ground-truth), ordered as the "
                            "prediction scripts order it: by class, then file name")
    group.add_argument("--labels", type=Path, metavar="FILE.npy", help="N labels in row order")
    group.add_argument("--val-ground-truth", type=Path, metavar="FILE",
                       help="val ground truth (val_full.txt, LOC_val_solution.csv or devkit format): labels "
                            "for a flat --val-dir, and file names for --real-labels on the standard 50,000 order")

    group = parser.add_argument_group("image selection and custom labels (2019 flags)")
    group.add_argument("-i", "--indices_to_omit", "--indices-to-omit", type=Path, metavar="FILE.npy",
                       help="indices of images to leave out")
    group.add_argument("-j", "--indices_to_keep", "--indices-to-keep", type=Path, metavar="FILE.npy",
                       help="indices of the only images to score")
    group.add_argument("-l", "--custom_labels", "--custom-labels", type=Path, metavar="FILE.npy",
                       help="replacement labels for the selected images (one per selected image); adds "
                            "cAcc@k columns and sorts by cAcc@1")

    group = parser.add_argument_group("extra columns")
    group.add_argument("--published", action="store_true",
                       help="published Acc@1/Acc@5 and measured minus published")
    group.add_argument("--ci", action="store_true",
                       help="Wilson 95%% intervals; '~' marks a row whose Acc@1 is not significantly "
                            "different from the row above (exact McNemar test, p >= 0.05)")
    group.add_argument("--real-labels", nargs="?", const="default", type=str, metavar="PATH",
                       help="ImageNet-ReaL Acc@1 (default PATH: the copy timm ships)")

    group = parser.add_argument_group("output")
    group.add_argument("--format", choices=sorted(RENDERERS), default="text", help="standard output format")
    group.add_argument("-o", "--output-dir", "--csv", dest="csv", type=Path, metavar="FILE.csv",
                       help="also write the table as CSV to this file (-o/--output-dir: the 2019 name)")
    group.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the table as a chart")
    args = parser.parse_args(argv)
    if args.indices_to_omit and args.indices_to_keep:
        parser.error("-i/--indices_to_omit and -j/--indices_to_keep cannot be used together")
    if args.val_dir and args.val_dir_flag and args.val_dir != args.val_dir_flag:
        parser.error("the positional val_dir and --val-dir name different folders")
    args.val_dir = args.val_dir or args.val_dir_flag
    return args


def sources(args: argparse.Namespace) -> list[scoring.Source]:
    if args.download:
        from imagenet_bench import download

        root = download.fetch(args.download, args.download_dir, base_url=args.download_url)
        found = [scoring.Source(root / "keras_imagenet", True), scoring.Source(root / "pytorch_imagenet", True)]
    else:
        found = [scoring.Source(args.keras_dir or HERE / "keras_imagenet", args.keras_dir is not None),
                 scoring.Source(args.pytorch_dir or HERE / "pytorch_imagenet", args.pytorch_dir is not None)]
    return found + [scoring.Source(d, True) for d in args.dirs]


def resolve_labels(args: argparse.Namespace, loaded: scoring.Loaded) -> tuple[np.ndarray, str, list[str] | None]:
    """(labels, where they came from, file names in row order if known)."""
    if args.val_dir:
        dataset = layout.scan(args.val_dir, args.val_ground_truth)
        return dataset.labels, f"--val-dir {args.val_dir} ({dataset.label_source})", dataset.names
    names = None
    for folder in dict.fromkeys(m.files.folder for m in loaded.models):
        names = names or output_folder.read_files(folder)
        n = next(m.n for m in loaded.models if m.files.folder == folder)
        if args.real_labels and names is not None and len(names) != n:
            raise UsageError(f"{folder / output_folder.DATASET_FILES}: {len(names)} file names but {n} "
                             "prediction rows; --real-labels needs one val file name per row")
    if args.labels:
        labels = table._read_index_file(args.labels, "--labels")
        if labels.dtype == bool:
            raise UsageError(f"{args.labels}: --labels expects class indices, not a boolean mask")
        if labels.size and (labels.min() < 0 or labels.max() >= 1000):
            raise UsageError(f"{args.labels}: class index out of range 0..999")
        return labels.astype(np.int64), f"--labels {args.labels}", names
    beside = scoring.labels_beside(loaded.models)
    if beside is not None:
        return beside[0], beside[1], names
    n = loaded.models[0].n
    if n == layout.FULL_VAL_SIZE:
        if names is None and args.val_ground_truth:
            names = standard_order_names(args.val_ground_truth)
        return scoring.standard_val_labels(), "standard order of the full val set (50 images per class)", names
    raise UsageError(f"{loaded.models[0].files.preds_path}: no labels for these {n} images; "
                     "pass --val-dir or --labels")


def standard_order_names(ground_truth_path: Path) -> list[str]:
    """Val file names in the standard row order (by class, then file name)."""
    from imagenet_bench import ground_truth

    truth = ground_truth.read(ground_truth_path)
    if len(truth) != layout.FULL_VAL_SIZE:
        raise UsageError(f"{ground_truth_path}: {len(truth)} images, expected the full val set (50,000)")
    return [f"{stem}.JPEG" for stem, _ in sorted(truth.items(), key=lambda item: (item[1], item[0]))]


def write_output(path: Path, write) -> None:
    """Run ``write``; an OSError (no such folder, no permission) becomes one line naming ``path``."""
    try:
        write()
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror or exc}); "
                         "check that its folder exists and is writable") from None


def main() -> int:
    args = parse_args()
    files = scoring.find_files(sources(args))
    if not files:
        folders = ", ".join(str(s.folder) for s in sources(args)) if not args.download else args.download
        raise UsageError(f"no prediction files found in {folders}; run the prediction scripts or pass -k/-p/--dir")
    loaded = scoring.load_all(files)
    if not loaded.models:
        raise UsageError(loaded.failures[0])
    labels, label_source, names = resolve_labels(args, loaded)
    print(f"labels: {label_source}", file=sys.stderr)
    scored = scoring.score(loaded.models, labels, loaded.failures)
    if not scored:
        raise UsageError(loaded.failures[0])

    rows = table.base_rows(scored)
    columns = table.base_columns()
    sort_key = "acc1"
    if args.indices_to_omit or args.indices_to_keep or args.custom_labels:
        selection = table.make_selection(labels, args.indices_to_omit, args.indices_to_keep, args.custom_labels)
        columns += table.add_selection(rows, selection)
        sort_key = "cacc1"
    rows.sort(key=lambda r: (-r[sort_key], r["platform"], r["model"]))
    if args.published or args.plot:
        published_columns = table.add_published(rows)
        columns += published_columns if args.published else []
    if args.ci:
        columns += table.add_intervals(rows)
    if args.real_labels:
        if names is None:
            raise UsageError("--real-labels needs each row's val file name: pass --val-dir, or "
                             "--val-ground-truth FILE for the standard 50,000-image order")
        from imagenet_bench.classes import real_labels_path

        real = real_labels_path() if args.real_labels == "default" else Path(args.real_labels)
        columns += table.add_real(rows, names, real)

    result = table.Table(rows, columns + table.count_columns())
    sys.stdout.write(render(result, args.format))
    if args.csv:
        write_output(args.csv, lambda: atomic.write_text(args.csv, render(result, "csv")))
    if args.plot:
        from imagenet_bench import plot

        write_output(args.plot, lambda: plot.plot(rows, args.plot))
    for failure in loaded.failures:
        print(f"warning: {failure}", file=sys.stderr)
    return EXIT_PARTIAL_FAILURE if loaded.failures else EXIT_OK


if __name__ == "__main__":
    run_main(main)
