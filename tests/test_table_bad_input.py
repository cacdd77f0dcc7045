"""The table on bad input: damaged prediction files, manifests, dataset files and label files
(one error line alone, a warning among others), outputs without a manifest, and files that lie
(issue 9, defect 10: arrays whose sha256 differs from their manifest's, NaN probabilities).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_script
from helpers import N, assert_one_error, bench, by_model, expected, pct, synthetic_labels, write_dataset, write_model


def _corrupt(folder: Path, how: str) -> Path:
    """Damage model 'a' in ``folder``; return the file the error must name."""
    preds = folder / "a_pytorch_imagenet_top5preds.npy"
    probs = folder / "a_pytorch_imagenet_top5probs.npy"
    if how == "truncated":
        data = preds.read_bytes()
        preds.write_bytes(data[: len(data) // 2])
        return preds
    if how == "corrupt":
        probs.write_bytes(b"\x00garbage" * 100)
        return probs
    if how == "shape":
        np.save(probs, np.load(probs)[:, :3])
        return probs
    if how == "rows":
        np.save(preds, np.load(preds)[:150])
        np.save(probs, np.load(probs)[:150])
        return preds
    if how == "class":
        array = np.load(preds)
        array[7, 2] = 1000
        np.save(preds, array)
        return preds
    if how == "negative":
        array = np.load(preds)
        array[7, 2] = -1
        np.save(preds, array)
        return preds
    if how == "float":
        np.save(preds, np.load(preds).astype(np.float32))
        return preds
    if how == "int8":  # class ids wrapped into int8: negatives, which a view as uint8 hides (255 < 1000)
        array = np.load(preds).astype(np.int8)
        assert array.min() < 0
        np.save(preds, array)
        return preds
    if how in ("above one", "infinite", "negative probability"):
        array = np.load(probs)
        array[3, 1] = {"above one": 1.5, "infinite": np.inf, "negative probability": -0.2}[how]
        np.save(probs, array)
        return probs
    raise AssertionError(how)


BAD = [
    "truncated",
    "corrupt",
    "shape",
    "rows",
    "class",
    "negative",
    "float",
    "int8",
    "above one",
    "infinite",
    "negative probability",
]


@pytest.mark.parametrize("how", BAD)
def test_one_bad_model_alone_is_one_error_line(tmp_path, how):
    labels = synthetic_labels()
    folder = tmp_path / "runs"
    write_dataset(folder, labels)
    write_model(folder, "a", labels, range(50))
    bad = _corrupt(folder, how)
    assert_one_error(bench("--dir", folder), bad)


@pytest.mark.parametrize("how", BAD)
def test_one_bad_model_among_many_is_a_warning(four_models, how):
    folder, labels, models = four_models
    bad = _corrupt(folder, how)
    proc = bench("--dir", folder, "--format", "csv")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(bad) in warnings[0], proc.stderr
    rows = by_model(proc.stdout)
    assert sorted(rows) == ["b", "c", "d"]
    assert rows["c"]["Acc@1"] == pct(expected(models["c"], labels)[0], N)
    assert [rows[m]["Rank@1"] for m in "bcd"] == ["1", "2", "3"]


def test_bad_manifest_among_many_is_a_warning(four_models):
    folder, _, _ = four_models
    (folder / "a_pytorch_imagenet_manifest.json").write_text("{not json")
    proc = bench("--dir", folder, "--format", "csv")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "a_pytorch_imagenet_manifest.json" in proc.stderr
    assert sorted(by_model(proc.stdout)) == ["b", "c", "d"]


# Issue 20, item 5: each a manifest field the table reads, with a value of the wrong type
WRONG_FIELDS = [
    ("outputs", "oops"),
    ("throughput", "fast"),
    ("published", "yes"),
    ("params", "many"),
    ("gflops", [1]),
    ("command", 5),
    ("device", 7),
    ("batch_size", "64"),
    ("git", {"commit": 5}),
    ("throughput", {"images_per_s": "fast"}),
    ("published", {"acc1": "71.9"}),
]


@pytest.mark.slow
@pytest.mark.parametrize("field, value", WRONG_FIELDS, ids=[f"{f}={v!r}" for f, v in WRONG_FIELDS])
def test_a_wrongly_typed_manifest_field_leaves_its_model_out_by_name(tmp_path, promised, field, value):
    folder, labels, models = promised
    path = folder / "a_pytorch_imagenet_manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, field: value}))
    proc = bench("--dir", folder, "--format", "csv", "--published", "--speed", "--ci", "--html", tmp_path / "r.html")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    name = field if isinstance(value, str | int | list) else f"{field}.{next(iter(value))}"
    assert len(warnings) == 1 and str(path) in warnings[0] and f"'{name}'" in warnings[0], proc.stderr
    rows = by_model(proc.stdout)
    assert sorted(rows) == ["b", "c", "d"] and (tmp_path / "r.html").exists()
    assert rows["c"]["Acc@1"] == pct(expected(models["c"], labels)[0], N)


# Issue 20, item 3: no output over an input
@pytest.mark.parametrize("flag", ["-o", "--html", "--plot", "--label-issues"])
def test_an_output_over_an_input_is_refused_before_anything_is_written(tmp_path, four_models, flag):
    folder, _, _ = four_models
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    labels = tmp_path / "labels.npy"
    np.save(labels, np.load(folder / "dataset_labels.npy"))
    link = tmp_path / "link.csv"
    link.symlink_to(folder / "a_pytorch_imagenet_top5preds.npy")
    for target, args, says in (
        (folder / "a_pytorch_imagenet_top5preds.npy", (), "inside the prediction folder"),
        (folder / "dataset_labels.npy", (), "inside the prediction folder"),
        (folder / "new.out", (), "inside the prediction folder"),
        (link, (), "inside the prediction folder"),  # a link to an input is that input
        (labels, ("--labels", labels), "one of this run's input files"),
    ):
        line = assert_one_error(bench("--dir", folder, *args, flag, target), flag, str(target))
        assert says in line, line
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert np.array_equal(np.load(labels), np.load(folder / "dataset_labels.npy"))
    other = "--html" if flag != "--html" else "-o"
    line = assert_one_error(bench("--dir", folder, flag, tmp_path / "x", other, tmp_path / "x"), str(tmp_path / "x"))
    assert "also the path of" in line and not (tmp_path / "x").exists()


def test_unreadable_dataset_json_is_an_error(four_models):
    folder, _, _ = four_models
    (folder / "dataset.json").write_text("{")
    assert_one_error(bench("--dir", folder), folder / "dataset.json")


@pytest.mark.slow
def test_unwritable_outputs_are_one_error_line(tmp_path, four_models):
    folder, _, _ = four_models
    for flag, name in (("-o", "t.csv"), ("--plot", "t.png")):
        proc = bench("--dir", folder, flag, tmp_path / "no_such_folder" / name)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and str(tmp_path / "no_such_folder" / name) in errors[0], proc.stderr


def test_labels_of_the_wrong_length(tmp_path, four_models):
    folder, labels, _ = four_models
    np.save(tmp_path / "short.npy", labels[:150])
    assert_one_error(bench("--dir", folder, "--labels", tmp_path / "short.npy"), "top5preds.npy", "150")
    np.save(folder / "dataset_labels.npy", labels[:150])
    assert_one_error(bench("--dir", folder), "top5preds.npy", "150")


def test_labels_file_with_class_out_of_range(tmp_path, four_models):
    folder, labels, _ = four_models
    bad = labels.copy()
    bad[3] = 1000
    np.save(tmp_path / "bad.npy", bad)
    assert_one_error(bench("--dir", folder, "--labels", tmp_path / "bad.npy"), tmp_path / "bad.npy")
    assert_one_error(bench("--dir", folder, "--labels", tmp_path / "missing.npy"), tmp_path / "missing.npy")
    np.save(tmp_path / "mask.npy", np.ones(N, dtype=bool))
    assert_one_error(bench("--dir", folder, "--labels", tmp_path / "mask.npy"), tmp_path / "mask.npy")


def test_outputs_without_manifest_in_a_project_folder_are_incomplete(tmp_path):
    """A folder with dataset.json was written by the prediction scripts, where every complete
    model has a manifest; arrays without one were being overwritten when a run stopped."""
    folder = tmp_path / "out"
    folder.mkdir()
    n = 20
    labels = np.arange(n) % 7
    np.save(folder / "dataset_labels.npy", labels)
    (folder / "dataset.json").write_text(json.dumps({"fingerprint": "f" * 64, "n_images": n, "full_val": False}))
    for model in ("a", "b"):
        preds = np.tile(labels[:, None], (1, 5))
        np.save(folder / f"{model}_pytorch_imagenet_top5preds.npy", preds)
        np.save(folder / f"{model}_pytorch_imagenet_top5probs.npy", np.full((n, 5), 0.2, dtype=np.float32))
    (folder / "a_pytorch_imagenet_manifest.json").write_text("{}")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_script("imagenet_benchmarking.py", "-k", empty, "-p", folder)
    assert result.returncode == 1
    assert "b_pytorch_imagenet_manifest.json: missing" in result.stderr
    assert " a " in result.stdout and " b " not in result.stdout


def test_swapped_prediction_files_are_left_out_by_name(promised):
    folder, labels, models = promised
    a, b = folder / "a_pytorch_imagenet_top5preds.npy", folder / "b_pytorch_imagenet_top5preds.npy"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    assert len(data_a) == len(data_b) and data_a != data_b
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    proc = bench("--dir", folder, "--format", "csv")
    assert proc.returncode == 1, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and str(a) in warnings[0] + warnings[1] and str(b) in warnings[0] + warnings[1]
    assert all("sha256" in w and "manifest" in w for w in warnings)
    rows = by_model(proc.stdout)
    assert sorted(rows) == ["c", "d"]
    assert rows["c"]["Acc@1"] == pct(expected(models["c"], labels)[0], N)


def test_when_every_file_lies_each_is_named_and_one_error_line_ends_it(promised):
    folder, _, _ = promised
    names = [
        folder / f"{m}_{p}_imagenet_top5probs.npy"
        for m, p in (("a", "pytorch"), ("b", "pytorch"), ("c", "keras"), ("d", "pytorch"))
    ]
    for path in names:
        array = np.load(path)
        array[0, 0] += 0.01
        np.save(path, array)
    proc = bench("--dir", folder, "--format", "csv")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert all(str(path) in proc.stderr for path in names), proc.stderr


def test_edited_probabilities_are_left_out_by_name(promised):
    folder, _, _ = promised
    probs = folder / "d_pytorch_imagenet_top5probs.npy"
    array = np.load(probs)
    array[0, 0] += 0.01
    np.save(probs, array)
    proc = bench("--dir", folder, "--format", "csv")
    assert proc.returncode == 1 and sorted(by_model(proc.stdout)) == ["a", "b", "c"]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(probs) in warnings[0], proc.stderr


def test_dataset_labels_out_of_range_is_an_error(four_models):
    folder, labels, _ = four_models
    bad = labels.copy()
    bad[5] = 1000
    np.save(folder / "dataset_labels.npy", bad)
    assert_one_error(bench("--dir", folder), folder / "dataset_labels.npy", "0..999")
    bad[5] = -3
    np.save(folder / "dataset_labels.npy", bad)
    assert_one_error(bench("--dir", folder), folder / "dataset_labels.npy", "0..999")


def test_nan_probabilities_are_a_warning_naming_the_file(four_models):
    folder, _labels, _models = four_models
    probs = folder / "b_pytorch_imagenet_top5probs.npy"
    array = np.load(probs)
    array[[3, 9]] = np.nan
    np.save(probs, array)
    for _ in range(2):  # the second run reads the score cache: the warning must survive it
        proc = bench("--dir", folder, "--format", "csv")
        assert proc.returncode == 0, proc.stderr
        warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1 and str(probs) in warnings[0] and "NaN" in warnings[0], proc.stderr
        assert sorted(by_model(proc.stdout)) == ["a", "b", "c", "d"]


# Issue 20, item 2: model ids come from file names, which may hold control characters
HOSTILE = {
    "esc": "evil\x1b]0;owned\x07\x1b[2J",  # a terminal title change and a screen clear
    "row": "a\nPyTorch  | resnet_best | 99.99",  # a newline forging a row
    "mark": "b\x01c",  # the HTML report's id mark
}


def _escaped(text: str) -> str:
    """Control characters as Python writes them in a string literal (\\n, \\x1b), here by hand."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@pytest.mark.slow
def test_ids_with_control_characters_are_escaped_in_every_table_and_the_report(tmp_path):
    from html.parser import HTMLParser

    labels = synthetic_labels()
    folder = tmp_path / "runs"
    write_dataset(folder, labels)
    for i, model in enumerate(HOSTILE.values()):
        write_model(folder, model, labels, range(100 - 10 * i), seed=i, manifest={"command": ["python", "-m", model]})
    for fmt in ("text", "markdown", "csv"):
        proc = bench("--dir", folder, "--format", fmt)
        assert proc.returncode == 0, proc.stderr
        assert not any(c in proc.stdout for c in "\x1b\x07\x01"), fmt
        assert len(proc.stdout.splitlines()) == (4 if fmt == "csv" else 5), proc.stdout  # header (+ rule), 3 rows
        for model in HOSTILE.values():
            assert _escaped(model).replace("|", "\\|" if fmt == "markdown" else "|") in proc.stdout, (fmt, model)
    # Markdown: a | in an id is escaped, so every row has the header's number of cells
    markdown = bench("--dir", folder, "--format", "markdown").stdout.splitlines()
    assert {line.replace("\\|", "").count("|") for line in markdown} == {markdown[0].count("|")}
    # the HTML report: ids escaped, and the command line (with the id mark) comes back whole
    report = tmp_path / "r.html"
    assert bench("--dir", folder, "--html", report).returncode == 0

    class Data(HTMLParser):
        text = ""
        inside = False

        def handle_starttag(self, tag, attrs):
            self.inside = tag == "script" and dict(attrs).get("id") == "report-data"

        def handle_data(self, data):
            self.text += data if self.inside else ""

    parser = Data()
    parser.feed(report.read_text(encoding="utf-8"))
    data = json.loads(parser.text)
    assert sorted(row["model"] for row in data["rows"]) == sorted(_escaped(m) for m in HOSTILE.values())
    for row in data["rows"]:
        texts = [
            data["pairs"][p][1]
            for _, section in data["manifests"][row["provenance"]["runs"]]
            for p in data["sections"][section]
        ]
        shown = [t.replace(data["model_mark"], row["model"]) for t in texts]  # as the page puts the id back
        [command] = [t for t in shown if t.startswith("python -m ")]
        assert command.removeprefix("python -m ").strip("'") == row["model"], (row["model"], command)
