#!/usr/bin/env python
"""Cost of --label-issues against the table's own: wall time and peak memory, side by side.

On N models (default 1,500: the 2019 files hard-linked under N names by bench_table's
builder, in a temporary folder removed at the end), in one run, each a subprocess:
  * table: ``imagenet_benchmarking.py -k KERAS -p PYTORCH --no-cache`` (every file read);
  * consensus: the same with ``--label-issues FILE.csv`` (top-1 votes counted as read);
  * confident learning: the same with ``--label-issues FILE.csv --confident-learning``.
Each runs REPEATS times interleaved after one untimed warm-up of each (the files are in
the page cache for all); medians, the ratio consensus/table (target <= 2x) and each one's
peak RSS (targets: consensus within the table's 300 MB at 1,500 models; confident
learning within 1 GB) are printed.

Usage: python bench/bench_label_issues.py [SEED_DIR] [--models N] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench_table import DEFAULT_SEED, ROOT, link_models, run_once

TIME_RATIO = 2.0
CONSENSUS_MIB = 300
CONFIDENT_MIB = 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "seed_dir",
        nargs="?",
        type=Path,
        default=DEFAULT_SEED,
        help=f"folder with keras_imagenet/ and pytorch_imagenet/ (default {DEFAULT_SEED})",
    )
    parser.add_argument("--models", type=int, default=1500, help="models to rank (default 1500)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (default 3)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_label_issues."))
    try:
        keras, pytorch = link_models(args.seed_dir, args.models, work / "models")
        measure(args, keras, pytorch, work)
    finally:
        shutil.rmtree(work)


def measure(args: argparse.Namespace, keras: Path, pytorch: Path, work: Path) -> None:
    table = [sys.executable, str(ROOT / "imagenet_benchmarking.py"), "-k", str(keras), "-p", str(pytorch), "--no-cache"]
    commands = {
        "table": table,
        "consensus": table + ["--label-issues", str(work / "consensus.csv")],
        "confident": table + ["--label-issues", str(work / "confident.csv"), "--confident-learning"],
    }
    outputs = {name: run_once(command)[2] for name, command in commands.items()}  # warm-up, also a check
    assert outputs["consensus"] == outputs["table"] == outputs["confident"], "--label-issues changed the table"
    walls: dict[str, list[float]] = {name: [] for name in commands}
    rss = {name: 0 for name in commands}
    for _ in range(args.repeats):
        for name, command in commands.items():
            wall, peak, _ = run_once(command)
            walls[name].append(wall)
            rss[name] = max(rss[name], peak)
    rows = sum(1 for line in (work / "consensus.csv").read_text().splitlines() if not line.startswith("#")) - 1

    import numpy

    median = {name: statistics.median(values) for name, values in walls.items()}
    print(
        f"imagenet_benchmarking.py --label-issues on {args.models} models (2019 files hard-linked) "
        f"from {args.seed_dir}; {rows} images flagged"
    )
    print(
        f"python {platform.python_version()}, numpy {numpy.__version__}, {os.cpu_count()} CPUs, "
        f"{args.repeats} runs each, interleaved, after a warm-up"
    )
    labels = {"table": "table (--no-cache)", "consensus": "+ --label-issues", "confident": "+ --confident-learning"}
    for name, label in labels.items():
        spread = f"{min(walls[name]):.2f}-{max(walls[name]):.2f}"
        print(
            f"  {label:<24} median {median[name]:7.2f} s  (range {spread} s)  peak RSS {rss[name]:5d} MiB"
            f"  {median[name] / median['table']:.2f}x table"
        )
    ratio = median["consensus"] / median["table"]
    print(
        f"  consensus/table time      {ratio:.2f}x  (target <= {TIME_RATIO}x: "
        f"{'ok' if ratio <= TIME_RATIO else 'ABOVE TARGET'})"
    )
    print(
        f"  consensus peak RSS        {rss['consensus']} MiB  (target <= {CONSENSUS_MIB} MiB: "
        f"{'ok' if rss['consensus'] <= CONSENSUS_MIB else 'ABOVE TARGET'})"
    )
    print(
        f"  confident learning RSS    {rss['confident']} MiB  (target <= {CONFIDENT_MIB} MiB: "
        f"{'ok' if rss['confident'] <= CONFIDENT_MIB else 'ABOVE TARGET'})"
    )


if __name__ == "__main__":
    main()
