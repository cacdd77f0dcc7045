#!/usr/bin/env python
"""Wall time and peak memory of imagenet_benchmarking.py against a bare numpy floor.

On the 34 models of 2019 (68 .npy files, 50,000 rows each), or with ``--models N`` on N
models (the 68 files hard-linked under N names in a temporary folder, removed at the
end: 2N files, no copies beyond one private copy of the 68), in one run:
  * table (cold): ``python imagenet_benchmarking.py -k KERAS -p PYTORCH`` with an empty
    score cache (a new --cache-dir each run, so the cache is written too);
  * table (warm rerun): the same with the cache of the previous run (files unchanged);
  * table (--no-cache): reads every file, keeps no scores;
  * floor: a bare Python + numpy script, same interpreter, that loads each model's files,
    computes Acc@1/Acc@5 vectorised (top-1 = preds[i, argmax(probs[i])]) and drops them
    (streaming: it holds one model at a time);
  * startup: ``python -c "import numpy"``, the part of all that no code can save.
The table runs from a private copy of the project's code (the script and imagenet_bench/,
no __pycache__), so what Python compiles does not depend on who ran what before:
``--bytecode source`` (the default) sets PYTHONDONTWRITEBYTECODE=1, as this environment
does, so every run compiles the project's modules from source; ``--bytecode cached`` lets
the warm-up write the copy's bytecode, as a normal install has it. The floor is one small
script either way, and numpy's own bytecode is cached for all. ``--baseline DIR`` also
runs another version of the code cold, interleaved with the rest (DIR holds its
imagenet_benchmarking.py and imagenet_bench/, e.g. from ``git archive REV | tar -x -C DIR``):
a change's before and after under the same load.
``--graded`` also runs, interleaved with the rest, the table with ``--calibration
--selective --factors`` (issue 22), cold and as a warm rerun, and the plain table with only
``--val-ground-truth`` (the file names --factors needs for the 2019 files), cold: its ratio
to the plain table's cold time (target: <= 1.5x) and its peak RSS (target: < 300 MB).
Each is a subprocess, run REPEATS times interleaved after one untimed warm-up (so the
files are in the page cache for all); the medians, their ratios to the floor (target:
cold <= 1.2x) and each one's peak RSS (from wait4, per child) are printed.

Usage: python bench/bench_table.py [SEED_DIR] [--repeats N] [--models N [--manifests]] [--bytecode cached]
       [--baseline DIR] [--graded [--val-ground-truth FILE]]
SEED_DIR defaults to ../shared/reference/seed-2019 beside the project root.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform as host
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SEED = ROOT.parent / "shared" / "reference" / "seed-2019"
DEFAULT_GROUND_TRUTH = ROOT.parent / "shared" / "data" / "ilsvrc2012-val-labels" / "val_full.txt"
TARGET_RATIO = 1.2
GRADED = ["--calibration", "--selective", "--factors"]
GRADED_RATIO, GRADED_MIB = 1.5, 300 * 10**6 / 2**20  # issue 22: x the plain table's cold time; 300 MB

FLOOR = r"""
import sys
from pathlib import Path
import numpy as np

labels = np.repeat(np.arange(1000), 50)
rows = []
for folder in sys.argv[1:]:
    for preds_path in sorted(Path(folder).glob("*_top5preds.npy")):
        preds = np.load(preds_path, allow_pickle=False)
        probs = np.load(preds_path.with_name(preds_path.name.replace("top5preds", "top5probs")), allow_pickle=False)
        top1 = preds[np.arange(len(preds)), np.argmax(probs, axis=1)]
        acc1 = 100.0 * np.count_nonzero(top1 == labels) / len(labels)
        right5 = preds[:, 0] == labels
        for j in range(1, preds.shape[1]):  # column by column: faster than (preds == labels[:, None]).any(1)
            right5 |= preds[:, j] == labels
        acc5 = 100.0 * np.count_nonzero(right5) / len(labels)
        rows.append((preds_path.name, acc1, acc5))
rows.sort(key=lambda r: -r[1])
print("\n".join(f"{name} {a1:.2f} {a5:.2f}" for name, a1, a5 in rows))
"""


def run_once(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in MiB, stdout) of one subprocess; exits if it fails.

    The child is reaped with os.wait4, which gives that child's own rusage (its
    peak RSS), unlike getrusage(RUSAGE_CHILDREN), the maximum over all children.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"failed ({proc.returncode}): {' '.join(command)}\n{err.read().decode()}")
        return wall, usage.ru_maxrss // 1024, out.read().decode()  # ru_maxrss: KiB on Linux


def link_models(seed_dir: Path, n_models: int, into: Path, manifests: bool = False) -> tuple[Path, Path]:
    """``n_models`` models in into/keras_imagenet and into/pytorch_imagenet: the 2019 models
    in turn, the i-th copy of a model named ``{model}-{i}``, its files hard links; with
    ``manifests``, each gets a manifest recording its arrays' sha256, as the prediction
    scripts write (so the table hashes every file it reads)."""
    digests: dict[Path, str] = {}
    # link to a private copy of the 68 files (100 MB), not to SEED_DIR's: a link changes its
    # inode's ctime, which the score cache checks, so anyone else linking the shared files
    # would otherwise make this bench's warm reruns read everything again
    private = into / "seed"
    for platform in ("keras", "pytorch"):
        (private / f"{platform}_imagenet").mkdir(parents=True)
        for path in (seed_dir / f"{platform}_imagenet").glob("*.npy"):
            shutil.copyfile(path, private / f"{platform}_imagenet" / path.name)  # writable, like any output
    seed_dir = private
    models = [
        (platform, p.name[: -len(f"_{platform}_imagenet_top5preds.npy")])
        for platform in ("keras", "pytorch")
        for p in sorted((seed_dir / f"{platform}_imagenet").glob("*_top5preds.npy"))
    ]
    for platform in ("keras", "pytorch"):
        (into / f"{platform}_imagenet").mkdir(parents=True)
    for i in range(n_models):
        platform, model = models[i % len(models)]
        name = model if i < len(models) else f"{model}-{i // len(models)}"
        outputs = {}
        for kind in ("top5preds", "top5probs"):
            source = seed_dir / f"{platform}_imagenet" / f"{model}_{platform}_imagenet_{kind}.npy"
            target = into / f"{platform}_imagenet" / f"{name}_{platform}_imagenet_{kind}.npy"
            os.link(source, target)
            if manifests:
                digests.setdefault(source, hashlib.sha256(source.read_bytes()).hexdigest())
                outputs[target.name] = digests[source]
        if manifests:
            manifest = into / f"{platform}_imagenet" / f"{name}_{platform}_imagenet_manifest.json"
            manifest.write_text(json.dumps({"model": name, "platform": platform, "outputs": outputs}))
    return into / "keras_imagenet", into / "pytorch_imagenet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "seed_dir",
        nargs="?",
        type=Path,
        default=DEFAULT_SEED,
        help=f"folder with keras_imagenet/ and pytorch_imagenet/ (default {DEFAULT_SEED})",
    )
    parser.add_argument("--repeats", type=int, default=15, help="timed runs of each (default 15)")
    parser.add_argument(
        "--models",
        type=int,
        metavar="N",
        help="rank N models: the 2019 files hard-linked under N names (default: the 34 as they are)",
    )
    parser.add_argument(
        "--bytecode",
        choices=("source", "cached"),
        default="source",
        help="the table's modules compiled from source each run (PYTHONDONTWRITEBYTECODE=1, "
        "as here; default) or from bytecode the warm-up wrote (a normal install)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also time, cold, the table script of another version of the code in DIR",
    )
    parser.add_argument(
        "--manifests",
        action="store_true",
        help="with --models: give each a manifest with its arrays' sha256 (every file is hashed)",
    )
    parser.add_argument(
        "--graded",
        action="store_true",
        help="also time the table with " + " ".join(GRADED) + " (cold and warm) against the plain one",
    )
    parser.add_argument(
        "--val-ground-truth",
        type=Path,
        default=DEFAULT_GROUND_TRUTH,
        help=f"with --graded: the val file names for --factors (default {DEFAULT_GROUND_TRUTH})",
    )
    args = parser.parse_args()
    keras, pytorch = args.seed_dir / "keras_imagenet", args.seed_dir / "pytorch_imagenet"
    if not keras.is_dir() or not pytorch.is_dir():
        raise SystemExit(f"{args.seed_dir}: expected keras_imagenet/ and pytorch_imagenet/ in it")
    work = Path(tempfile.mkdtemp(prefix="bench_table."))
    try:
        n_seed = len(list(keras.glob("*_top5preds.npy"))) + len(list(pytorch.glob("*_top5preds.npy")))
        keras, pytorch = link_models(args.seed_dir, args.models or n_seed, work / "models", args.manifests)
        baseline = copy_code(args.baseline, work / "baseline") if args.baseline else None
        measure(args, keras, pytorch, work, copy_code(ROOT, work / "code"), baseline)
    finally:
        shutil.rmtree(work)


def copy_code(root: Path, into: Path) -> Path:
    """The table script and its package in ``root``, without bytecode, in ``into``; the script's path."""
    if not (root / "imagenet_benchmarking.py").is_file():
        raise SystemExit(f"{root}: no imagenet_benchmarking.py in it")
    shutil.copytree(root / "imagenet_bench", into / "imagenet_bench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(root / "imagenet_benchmarking.py", into / "imagenet_benchmarking.py")
    return into / "imagenet_benchmarking.py"


def measure(
    args: argparse.Namespace, keras: Path, pytorch: Path, work: Path, script: Path, baseline: Path | None
) -> None:
    n_files = len(list(keras.glob("*.npy"))) + len(list(pytorch.glob("*.npy")))
    table = [sys.executable, str(script), "-k", str(keras), "-p", str(pytorch)]
    env = dict(os.environ)
    if args.bytecode == "source":
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    warm_cache = work / "warm-cache"
    colds = iter(range(10**6))
    commands = {
        "cold": lambda: table + ["--cache-dir", str(work / f"cold-cache-{next(colds)}")],
        "warm": lambda: table + ["--cache-dir", str(warm_cache)],
        "nocache": lambda: table + ["--no-cache"],
        "floor": lambda: [sys.executable, "-c", FLOOR, str(keras), str(pytorch)],
        "startup": lambda: [sys.executable, "-c", "import numpy"],
    }
    if baseline is not None:
        commands["baseline"] = lambda: [
            sys.executable,
            str(baseline),
            *table[2:],
            "--cache-dir",
            str(work / f"cold-cache-{next(colds)}"),
        ]
        if run_once(commands["baseline"](), env)[2] != run_once(commands["warm"](), env)[2]:  # warm-ups too
            print(f"note: the baseline {args.baseline} prints another table")
    graded_out = None
    if args.graded:
        names = table + ["--val-ground-truth", str(args.val_ground_truth)]
        graded_cache = work / "graded-warm-cache"
        commands["names"] = lambda: names + ["--cache-dir", str(work / f"cold-cache-{next(colds)}")]
        commands["graded"] = lambda: names + GRADED + ["--cache-dir", str(work / f"cold-cache-{next(colds)}")]
        commands["graded_warm"] = lambda: names + GRADED + ["--cache-dir", str(graded_cache)]
        _, _, graded_out = run_once(commands["graded_warm"](), env)  # warm-up, fills its warm cache
    _, _, table_out = run_once(commands["warm"](), env)  # warm-up (fills the warm cache and bytecode), a check
    _, _, floor_out = run_once(commands["floor"]())
    run_once(commands["startup"]())
    n_models = len(floor_out.splitlines())
    assert len(table_out.splitlines()) == 2 + n_models, "table and floor disagree on the number of models"

    walls: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, int] = {name: 0 for name in commands}
    for _ in range(args.repeats):
        for name, command in commands.items():
            wall, peak, out = run_once(command(), env)
            walls[name].append(wall)
            rss[name] = max(rss[name], peak)
            if name in ("cold", "warm", "nocache", "names"):
                assert out == table_out, f"{name}: another table"
            if name in ("graded", "graded_warm"):
                assert out == graded_out, f"{name}: another table"
        for stale in work.glob("cold-cache-*"):
            shutil.rmtree(stale)

    import numpy

    median = {name: statistics.median(values) for name, values in walls.items()}
    print(
        f"imagenet_benchmarking.py on {n_models} models ({n_files} files) from {args.seed_dir}"
        f"{' (hard links)' if args.models else ''}{', each with a manifest of sha256' if args.manifests else ''}"
        f"; the table's modules {'compiled from source each run' if args.bytecode == 'source' else 'from bytecode'}"
    )
    print(
        f"python {host.python_version()}, numpy {numpy.__version__}, {os.cpu_count()} CPUs, "
        f"{args.repeats} runs each, interleaved, after a warm-up"
    )
    labels = {
        "cold": "table, cold (cache written)",
        "warm": "table, warm rerun",
        "nocache": "table, --no-cache",
        "floor": "numpy floor (streaming)",
        "startup": "python + numpy import",
    }
    if baseline is not None:
        labels["baseline"] = "baseline, cold"
    if args.graded:
        labels |= {
            "names": "table, --val-ground-truth, cold",
            "graded": "table, the 3 options, cold",
            "graded_warm": "table, the 3 options, warm",
        }
    for name, label in labels.items():
        spread = f"{min(walls[name]):.3f}-{max(walls[name]):.3f}"
        ratio = (
            f"  {median[name] / median['floor']:.2f}x floor"
            if name in ("cold", "warm", "nocache", "baseline", "names", "graded", "graded_warm")
            else ""
        )
        print(f"  {label:<28} median {median[name]:.3f} s  (range {spread} s)  peak RSS {rss[name]} MiB{ratio}")
    ratio = median["cold"] / median["floor"]
    verdict = "ok" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"  ratio cold/floor             {ratio:.2f}x  (target <= {TARGET_RATIO}x: {verdict})")
    if args.graded:
        graded = median["graded"] / median["cold"]
        verdict = "ok" if graded <= GRADED_RATIO else "ABOVE TARGET"
        print(f"  {' '.join(GRADED)}, cold / plain table cold: {graded:.2f}x (target <= {GRADED_RATIO}x: {verdict})")
        print(f"    / plain table with --val-ground-truth, cold: {median['graded'] / median['names']:.2f}x")
        verdict = "ok" if rss["graded"] < GRADED_MIB else "ABOVE TARGET"
        print(f"    peak RSS {rss['graded']} MiB cold, {rss['graded_warm']} MiB warm (target < 300 MB: {verdict})")


if __name__ == "__main__":
    main()
