"""A table column is one declaration (``report.column_set.ColumnSet``), registered with one
line in ``report.columns.COLUMN_SETS``.

The proof: ``dummy_column.py`` (the mean top-1 probability, a column that keeps numbers, not
bits, per model) gets its line through a ``sitecustomize`` in the table script's environment,
as tests/test_sources.py adds a source; with nothing else changed its flag is in --help, and its
value, computed here with numpy straight from the 2019 probability files, is in the text, CSV,
JSON and the HTML report's data; a rerun takes it from the score cache and reads no prediction
file. Also the mechanism itself: bits and numbers answers round-trip through the score cache."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import SEED, run_script, shared

TESTS = Path(__file__).resolve().parent
SCRIPT = "imagenet_benchmarking.py"
HEADER, KEY = "Mean p@1", "mean_top1_prob"
LINE = "columns.COLUMN_SETS += (dummy_column.MeanTop1Probability(),)"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """PYTHONPATH with a sitecustomize that registers the column (the one line) and, where
    $READS_LOG is set, writes there each model whose prediction files are loaded."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "sitecustomize.py").write_text(
        "import os\n"
        "import dummy_column\n"
        "from imagenet_bench.report import columns\n"
        f"{LINE}\n"
        "if os.environ.get('READS_LOG'):\n"
        "    from imagenet_bench.outputs import predfiles\n"
        "    _load = predfiles.load\n"
        "    def _logged(files):\n"
        "        with open(os.environ['READS_LOG'], 'a') as log:\n"
        "            log.write(files.platform + ':' + files.model + '\\n')\n"
        "        return _load(files)\n"
        "    predfiles.load = _logged\n"
    )
    return {"PYTHONPATH": os.pathsep.join([str(folder), str(TESTS), str(TESTS.parent)])}


@pytest.fixture(scope="module")
def expected() -> dict[tuple[str, str], float]:
    """(platform, model) -> the mean top-1 probability, from the .npy files with numpy: the
    2019 probs files hold the 5 probabilities of the preds columns, unsorted, so the top-1's
    probability is each row's maximum."""
    means = {}
    for platform, name in (("keras", "Keras"), ("pytorch", "PyTorch")):
        for path in sorted(shared(SEED / f"{platform}_imagenet").glob("*_top5probs.npy")):
            model = path.name[: -len(f"_{platform}_imagenet_top5probs.npy")]
            means[(name, model)] = float(np.mean(np.load(path).max(axis=1), dtype=np.float64))
    assert len(means) == 34
    return means


def _table(env: dict, *args, reads: Path | None = None) -> str:
    proc = run_script(
        SCRIPT,
        "-k",
        SEED / "keras_imagenet",
        "-p",
        SEED / "pytorch_imagenet",
        "--mean-top1-prob",
        *args,
        env={**env, "READS_LOG": str(reads or "")},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _text_rows(text: str) -> dict[tuple[str, str], dict[str, str]]:
    lines = text.splitlines()
    headers = [h.strip() for h in lines[0].split(" | ")]
    rows = [dict(zip(headers, (v.strip() for v in line.split(" | ")), strict=True)) for line in lines[2:]]
    return {(r["Platform"], r["Model"]): r for r in rows}


def _payload(page: str) -> dict:
    [data] = re.findall(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    return json.loads(data)


def test_a_column_added_as_one_module_shows_everywhere_and_is_cached(env, expected, tmp_path):
    cache, reads = tmp_path / "cache", tmp_path / "reads.txt"
    want = {key: f"{value:.4f}" for key, value in expected.items()}

    help_text = run_script(SCRIPT, "--help", env=env).stdout
    assert "--mean-top1-prob" in help_text and "the mean top-1 probability" in help_text

    text = _table(env, "--cache-dir", cache, "--html", tmp_path / "report.html", reads=reads)
    assert len(set(reads.read_text().split())) == 34  # first run: every model's files read
    assert {key: row[HEADER] for key, row in _text_rows(text).items()} == want

    reads.write_text("")
    rows = list(csv.DictReader(io.StringIO(_table(env, "--cache-dir", cache, "--format", "csv", reads=reads))))
    assert {(r["Platform"], r["Model"]): r[HEADER] for r in rows} == want
    records = json.loads(_table(env, "--cache-dir", cache, "--format", "json", reads=reads))
    got = {(r["Platform"], r["Model"]): r[HEADER] for r in records}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=0)
    assert reads.read_text() == ""  # the reruns took every value from the score cache

    data = _payload((tmp_path / "report.html").read_text(encoding="utf-8"))
    column = [c["header"] for c in data["columns"]].index(HEADER)
    assert data["columns"][column] == {"header": HEADER, "key": KEY, "numeric": True, "test_set": None}
    for row in data["rows"]:
        key = ({"keras": "Keras", "pytorch": "PyTorch"}[row["platform"]], row["model"])
        assert row["text"][column] == want[key]
        assert row["sort"][column] == pytest.approx(expected[key], rel=1e-6)

    # --sort takes its header like any numeric column's, from the cache too
    records = json.loads(_table(env, "--cache-dir", cache, "--format", "json", "--sort", HEADER, reads=reads))
    assert [r[HEADER] for r in records] == sorted(got.values(), reverse=True)
    assert reads.read_text() == ""


def test_the_column_is_off_unless_asked_for(env):
    proc = run_script(
        SCRIPT, "-k", SEED / "keras_imagenet", "-p", SEED / "pytorch_imagenet", "--no-cache", "--format", "csv", env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert HEADER not in proc.stdout.splitlines()[0]


# --- the mechanism, in-process -------------------------------------------------------------------


def _folder(tmp_path: Path):
    from helpers import synthetic_labels, write_dataset, write_model

    folder = tmp_path / "runs"
    labels = synthetic_labels(n=60)
    write_dataset(folder, labels)
    for i, model in enumerate("abc"):
        write_model(folder, model, labels, range(10 * (i + 1)), range(50, 55), seed=i)
    return folder, labels


def _probability_sums(loaded):
    probs = loaded.probs
    return np.array([probs.max(axis=1).sum(dtype=np.float64), probs.sum(dtype=np.float64), loaded.n])


def test_bits_and_numbers_round_trip_through_the_score_cache(tmp_path, monkeypatch):
    from imagenet_bench.outputs import predfiles
    from imagenet_bench.scoring import score as scoring
    from imagenet_bench.scoring.measures import Marks, Numbers, TopK

    folder, labels = _folder(tmp_path)
    measures = [
        TopK("acc1", labels, 1),
        TopK("acc5", labels, 5),
        Numbers("sums", 3, _probability_sums, ("v1",)),
        Numbers("never", 4, lambda loaded: None),
        TopK("top9", labels, 9),
    ]  # 5 columns: no top-9 answer
    reads: list[str] = []
    real_load = predfiles.load
    monkeypatch.setattr(predfiles, "load", lambda files: reads.append(files.model) or real_load(files))

    def answers() -> dict:
        [test_set] = scoring.group(scoring.find_files([scoring.PredictionFolder(folder, True)]), [])
        failures: list[str] = []
        cards = scoring.score(test_set, measures, tmp_path / "cache", failures)
        assert not failures
        return {card.files.model: card.answers for card in cards}

    first = answers()
    assert sorted(reads) == ["a", "b", "c"]
    for model in "abc":
        loaded = real_load(predfiles.model_files(folder, model, "pytorch"))
        assert np.array_equal(first[model]["sums"], _probability_sums(loaded))
        assert first[model]["sums"].dtype == np.float64
        assert first[model]["acc1"].count == int(np.sum(loaded.top1 == labels))
        assert first[model]["never"] is None and first[model]["top9"] is None
    reads.clear()
    second = answers()
    assert reads == []
    for model in "abc":
        for name in ("acc1", "acc5"):
            a, b = first[model][name], second[model][name]
            assert isinstance(b, Marks) and (a.n, a.count) == (b.n, b.count)
            assert np.array_equal(a.unpack(), b.unpack())
        assert np.array_equal(first[model]["sums"], second[model]["sums"])  # float64: exact
        assert second[model]["never"] is None and second[model]["top9"] is None


def test_a_cache_of_the_old_schema_reads_as_empty(tmp_path):
    from imagenet_bench.outputs import predfiles
    from imagenet_bench.scoring import score_cache
    from imagenet_bench.scoring.measures import BITS, NUMBERS, Marks

    folder, _ = _folder(tmp_path)
    files = predfiles.model_files(folder, "a", "pytorch")
    shapes = {"acc1": (BITS, 60), "sums": (NUMBERS, 2)}
    cache = score_cache.ScoreCache(tmp_path / "cache", folder, "k", shapes)
    stat = score_cache.stat_key(files)
    cache.put(
        files,
        stat,
        score_cache.Entry({"acc1": Marks.of(np.arange(60) % 3 == 0), "sums": np.array([1.5, 2.0])}, [], None),
    )
    cache.save()
    again = score_cache.ScoreCache(tmp_path / "cache", folder, "k", shapes).get(files, stat)
    assert again.answers["acc1"].count == 20 and again.answers["sums"].tolist() == [1.5, 2.0]

    with np.load(cache.path) as data:  # the same file, marked as written by the previous schema
        arrays = dict(data)
    index = json.loads(bytes(arrays["index"]).decode())
    arrays["index"] = np.frombuffer(json.dumps({**index, "schema": score_cache.SCHEMA - 1}).encode(), np.uint8)
    np.savez(cache.path, **arrays)
    assert score_cache.ScoreCache(tmp_path / "cache", folder, "k", shapes).get(files, stat) is None


def test_every_registered_set_declares_what_the_mechanism_needs():
    """Names are unique (options and answers are keyed by them); a set with a flag has help."""
    from imagenet_bench.report import columns

    names = [s.name for s in columns.COLUMN_SETS]
    assert len(names) == len(set(names)) and all(names)
    assert all(s.help for s in columns.COLUMN_SETS if s.flag)
