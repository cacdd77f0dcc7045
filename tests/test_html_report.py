"""The HTML report (imagenet_benchmarking.py --html): the page's data, its escaping and size,
and the page itself in a real headless browser (Chromium driven by Selenium).

The browser test loads a report of the 2019 files plus two generated test sets, one holding a
model whose id is markup and a manifest field that tries to close the data's <script>.
Outside CI a machine without Chromium, its driver or Selenium skips it with the reason; in CI
(CI=true, where .ci/run installs them) it fails.
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import html.parser
import importlib.util
import json
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from imagenet_bench.outputs import predfiles
from imagenet_bench.report import html_report, table
from imagenet_bench.report.table_format import Column, percent, render, signed

from conftest import ROOT, SEED, run_script, shared

EVIL_ID = "<img src=x onerror=alert(1)>"
EVIL_FIELD = "</script><script>alert(1)</script>"
TEST_SETS = {"v2": 0, "sketch": 3}  # name: offset of its rows in the full val set (every 250th image)


@functools.cache
def _bench_module():
    """bench/bench_html.py: its generated 1,500-model table and its Chromium driver."""
    spec = importlib.util.spec_from_file_location("bench_html", ROOT / "bench" / "bench_html.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _DataScript(html.parser.HTMLParser):
    """The text of <script type="application/json" id="report-data">, and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.data, self.tags, self.scripts = False, "", [], 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.scripts += tag == "script"
        self.inside = tag == "script" and dict(attrs).get("id") == "report-data"

    def handle_endtag(self, tag):
        self.inside = False

    def handle_data(self, data):
        if self.inside:
            self.data += data


def _parse(page: str) -> _DataScript:
    parser = _DataScript()
    parser.feed(page)
    return parser


def _manifest(model: str, test_set: str, weights_id: str | None = None) -> dict:
    digest = hashlib.sha256(f"weights of {model}".encode()).hexdigest()
    return {
        "schema": "imagenet-bench/manifest/1",
        "model": model,
        "platform": "pytorch",
        "created": "2026-11-30T12:00:00+00:00",
        "protocol": "reference",
        "dataset": {"fingerprint": hashlib.sha256(test_set.encode()).hexdigest(), "n_images": 200},
        "framework": {"name": "torchvision", "torch": "2.14.1", "torchvision": "0.29.1"},
        "weights": {"id": weights_id or f"{model}.IMAGENET1K_V1", "sha256": digest},
        "preprocessing": {"resize_size": 256, "crop_size": 224, "interpolation": "bilinear"},
        "device": {"name": "cpu", "model": "cpu"},
        "numerics": {"dtype": "float32"},
        "environment": {"python": "3.11.7", "numpy": "2.4.6"},
        "command": ["python", "imagenet_pytorch_get_predictions.py", f"/data/{test_set}", "-m", model],
    }


def make_test_set(root: Path, name: str, offset: int, seed: Path) -> dict[tuple[str, str], str]:
    """A generated test set: every 250th row of the full val set from ``offset`` (200 images,
    one or two per class), for each 2019 model, with a manifest; plus, on v2, a model whose id
    is markup and whose manifest holds a field that closes a <script>. Returns the manifests'
    weights sha256 by (platform, model)."""
    folder = root / name
    folder.mkdir(parents=True)
    rows = np.arange(offset, 50000, 250)
    labels = np.repeat(np.arange(1000), 50)[rows]
    np.save(folder / "dataset_labels.npy", labels)
    (folder / "dataset.json").write_text(
        json.dumps(
            {
                "schema": "imagenet-bench/dataset/1",
                "protocol": "reference",
                "test_set": name,
                "fingerprint": hashlib.sha256(name.encode()).hexdigest(),
                "layout": "flat",
                "n_images": len(rows),
                "n_classes_present": len(set(labels.tolist())),
                "full_val": False,
                "subset": None,
            }
        )
    )
    hashes = {}
    sources = [(p, "pytorch") for p in (seed / "pytorch_imagenet").glob("*_top5preds.npy")]
    sources += [(p, "keras") for p in (seed / "keras_imagenet").glob("*_top5preds.npy")]
    for preds_path, platform in sources:
        model = preds_path.name.split(f"_{platform}_imagenet_")[0]
        preds = np.load(preds_path)[rows]
        probs = np.load(preds_path.with_name(preds_path.name.replace("top5preds", "top5probs")))[rows]
        record = _manifest(model, name)
        record["platform"] = platform
        predfiles.save(predfiles.model_files(folder, model, platform), preds, probs, record)
        hashes[(platform, model)] = record["weights"]["sha256"]
    if name == "v2":
        rng = np.random.default_rng(1)
        preds = rng.integers(0, 1000, (len(rows), 5))
        preds[:100, 0] = labels[:100]  # 50% right, so the row is not at an end
        probs = np.sort(rng.random((len(rows), 5)), axis=1)[:, ::-1]
        record = _manifest(EVIL_ID, name, weights_id=EVIL_FIELD)
        predfiles.save(predfiles.model_files(folder, EVIL_ID, "pytorch"), preds, probs, record)
        hashes[("pytorch", EVIL_ID)] = record["weights"]["sha256"]
    return hashes


# ---- the page's data, without a browser ---------------------------------------------------------

# The columns of a plain table (the identity and accuracy column sets')
BASE_COLUMNS = [
    Column("Platform", "platform_name", numeric=False),
    Column("Model", "model", numeric=False),
    Column("Acc@1", "acc1", percent),
    Column("Acc@5", "acc5", percent),
    Column("Rank@1", "rank1"),
    Column("Rank@5", "rank5"),
]


def _small_table() -> table.Table:
    rows = [
        {
            "platform": "pytorch",
            "platform_name": "PyTorch",
            "model": "resnet50",
            "source": "torchvision",
            "acc1": 76.13,
            "acc5": 92.862,
            "rank1": 1,
            "images_per_s": 812.5,
            "device": "cpu",
            "manifests": {"val": _manifest("resnet50", "val")},
            "published_acc1": 76.13,
            "delta1": 0.0,
        },
        {
            "platform": "keras",
            "platform_name": "Keras",
            "model": EVIL_ID,
            "source": "keras",
            "acc1": 70.0,
            "acc5": None,
            "rank1": 2,
            "images_per_s": None,
            "device": None,
            "manifests": {"val": _manifest(EVIL_ID, "val", weights_id=EVIL_FIELD)},
            "published_acc1": None,
            "delta1": None,
        },
        {
            "platform": "keras",
            "platform_name": "Keras",
            "model": "vgg16",
            "source": "keras",
            "acc1": float("nan"),
            "acc5": 86.2,
            "rank1": 3,
            "images_per_s": None,
            "device": None,
            "manifests": {"val": None},
            "published_acc1": 71.3,
            "delta1": None,
        },
    ]
    columns = BASE_COLUMNS + [
        Column("Pub@1", "published_acc1", percent),
        Column("Δ@1", "delta1", signed),
        Column("N", "n", detail=True),
    ]
    datasets = [
        {
            "name": "val",
            "folders": [Path("runs/val")],
            "n_images": 50000,
            "n_classes": 1000,
            "class_subset": None,
            "labels": "standard order",
        }
    ]
    return table.Table(rows, columns, datasets, ["val"], {}, ["a note & <b>caveat</b>"])


def test_data_is_escaped_and_round_trips():
    page = html_report.render(_small_table(), html_report.ReportInfo("v1", "2026-12-01", "python x.py --html a.html"))
    parsed = _parse(page)
    # The data element holds no "<", ">" or "&" at all, so nothing in it can end the element or
    # start markup; and it is the whole JSON document (the parser saw the element end where it should).
    assert not set("<>&") & set(parsed.data)
    data = json.loads(parsed.data)
    assert [r["model"] for r in data["rows"]] == ["resnet50", EVIL_ID, "vgg16"]
    assert data["notes"] == ["a note & <b>caveat</b>"]
    # No tag in the page came from the data: only the page's own skeleton.
    assert {tag for tag, _ in parsed.tags} == {"html", "head", "meta", "title", "style", "body", "noscript", "script"}
    assert parsed.scripts == 2


def test_values_json_cannot_hold_become_empty():
    t = _small_table()
    t.datasets[0]["n_images"] = float("nan")
    t.fits = {"v2": {"slope": float("nan"), "intercept": float("inf"), "baseline": []}}
    data = json.loads(_parse(html_report.render(t, html_report.ReportInfo("v", "now"))).data)
    assert data["datasets"][0]["n_images"] is None
    assert data["fits"]["v2"] == {"slope": None, "intercept": None, "baseline": "0 models"}


def test_cells_are_the_column_formatters_text():
    t = _small_table()
    data = html_report.payload(t, html_report.ReportInfo("v", "now"))
    # Every column the text table shows, in its order; not the detail column N (CSV only).
    headers = ["Platform", "Model", "Acc@1", "Acc@5", "Rank@1", "Rank@5", "Pub@1", "Δ@1"]
    assert [c["header"] for c in data["columns"]] == headers
    # The cells as the text table prints them: two decimals, a signed delta, blanks for no value.
    assert [row["text"] for row in data["rows"]] == [
        ["PyTorch", "resnet50", "76.13", "92.86", "1", "", "76.13", "+0.00"],
        ["Keras", EVIL_ID, "70.00", "", "2", "", "", ""],
        ["Keras", "vgg16", "", "86.20", "3", "", "71.30", ""],
    ]
    text_rows = [[cell.strip() for cell in line.split("|")] for line in render(t, "text").splitlines()]
    assert text_rows[0] == headers and text_rows[2:] == [row["text"] for row in data["rows"]]
    # A missing value is an empty cell, and sorts as nothing (never as 0); NaN is not a number.
    assert data["rows"][1]["text"][3] == "" and data["rows"][1]["sort"][3] is None
    assert data["rows"][2]["text"][2] == "" and data["rows"][2]["sort"][2] is None
    assert data["rows"][0]["plot"] == {"acc1": 76.13, "images_per_s": 812.5, "published_acc1": 76.13}


def _provenance(data: dict, row: dict, dataset: str) -> dict[str, dict[str, str]]:
    """Section label -> {key: text} of a row's manifest, decoded as the page decodes it."""
    out = {}
    for label_index, section in data["manifests"][row["provenance"][dataset]]:
        pairs = [data["pairs"][i] for i in data["sections"][section]]
        out[data["section_labels"][label_index]] = {k: v.replace(data["model_mark"], row["model"]) for k, v in pairs}
    return out


def test_provenance_holds_the_manifest_fields():
    t = _small_table()
    data = html_report.payload(t, html_report.ReportInfo("v", "now"))
    for row, source in zip(data["rows"][:2], t.rows[:2], strict=True):
        manifest = source["manifests"]["val"]
        prov = _provenance(data, row, "val")
        assert prov["Weights"]["sha256"] == manifest["weights"]["sha256"]
        assert prov["Weights"]["id"] == manifest["weights"]["id"]
        assert prov["Dataset"]["fingerprint"] == manifest["dataset"]["fingerprint"]
        assert prov["Libraries"]["torch"] == "2.14.1"
        assert prov["Device and numerics"]["dtype"] == "float32"
        assert prov["Preprocessing"]["crop_size"] == "224"
        assert prov["Run"]["created"] == manifest["created"]
        assert prov["Run"]["command"] == shlex.join(manifest["command"])  # as a shell would take it
    assert data["rows"][2]["provenance"] == {"val": None}


def test_assets_cannot_break_out_of_their_elements():
    for name, closing in (("report.js", "</script"), ("report.css", "</style")):
        text = (html_report.ASSETS / name).read_text()
        assert closing not in text.lower() and "<!--" not in text
        assert ".innerHTML" not in text and "outerHTML" not in text and "insertAdjacentHTML" not in text


def test_page_is_self_contained():
    page = html_report.render(_small_table(), html_report.ReportInfo("v", "now"))
    parsed = _parse(page)
    assert not [attrs for _, attrs in parsed.tags if "src" in attrs or "href" in attrs]
    assert not re.search(r"@import|url\(\s*['\"]?(https?:|//)", page)


@pytest.mark.slow
def test_page_for_1500_models_on_six_test_sets_stays_under_5_mb():
    synthetic = _bench_module().synthetic_table(1500)
    assert len(synthetic.rows) == 1500 and len(synthetic.test_sets) == 6
    page = html_report.render(synthetic, html_report.ReportInfo("v", "now"))
    size = len(page.encode("utf-8"))
    assert size <= 5 * 10**6, size
    data = json.loads(_parse(page).data)
    assert len(data["rows"]) == 1500 and all(len(r["provenance"]) == 6 for r in data["rows"])


def test_unwritable_html_path_is_one_error_line(tmp_path, seed_dirs):
    keras, pytorch = seed_dirs
    result = run_script(
        "imagenet_benchmarking.py",
        "-k",
        keras,
        "-p",
        pytorch,
        "--no-cache",
        "--html",
        tmp_path / "missing" / "report.html",
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr
    assert "report.html" in errors[0]
    assert not (tmp_path / "missing").exists()


def test_html_imports_no_framework_nor_matplotlib(tmp_path, seed_dirs):
    from helpers import run_light  # the table script's import-lightness check

    keras, pytorch = seed_dirs
    proc = run_light("-k", keras, "-p", pytorch, "--published", "--no-cache", "--html", tmp_path / "r.html")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(_parse((tmp_path / "r.html").read_text()).data)["rows"]) == 34


# ---- the page in a real browser -----------------------------------------------------------------


def _browser_missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements-test.txt)"
    bench = _bench_module()
    for path in (bench.CHROMIUM, bench.CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing (apt-get install -y chromium chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _browser_missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test cannot run in CI: {reason}")
        pytest.skip(reason)
    driver = _bench_module().chromium_driver()
    # Before any script of the page runs: count alert() calls instead of showing them.
    driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {"source": "window.__alerts = 0; window.alert = function () { window.__alerts += 1; };"},
    )
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The report of the 2019 files (val) plus generated v2 and sketch folders, made by the script."""
    seed = shared(SEED)
    root = tmp_path_factory.mktemp("report")
    hashes = {}
    for name, offset in TEST_SETS.items():
        hashes[name] = make_test_set(root / "runs", name, offset, seed)
    page = root / "report.html"
    result = run_script(
        "imagenet_benchmarking.py",
        "-k",
        seed / "keras_imagenet",
        "-p",
        seed / "pytorch_imagenet",
        "-r",
        root / "runs",
        "--published",
        "--no-cache",
        "--html",
        page,
    )
    assert result.returncode == 0, result.stderr
    return page, hashes


def _table_models(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#models tr.model-row')).map(r => r.cells[1].textContent);"
    )


def _column(driver, header: str) -> list[str]:
    return driver.execute_script(
        """
        const ths = Array.from(document.querySelectorAll('#models thead th'));
        const i = ths.findIndex(th => th.textContent.replace(/[\\u25b2\\u25bc]/g, '').trim() === arguments[0]);
        return Array.from(document.querySelectorAll('#models tr.model-row')).map(r => r.cells[i].textContent);
    """,
        header,
    )


def _click_header(driver, header: str) -> None:
    for th in driver.find_elements("css selector", "#models thead th button"):
        if th.text.replace("▲", "").replace("▼", "").strip() == header:
            th.click()
            return
    raise AssertionError(f"no column {header!r}")


@pytest.mark.slow
def test_report_in_a_browser(browser, report, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    page, hashes = report
    seed = SEED
    expected = {(r["platform"].split()[0], r["model"]): r for r in csv.DictReader((seed / "seed_table.csv").open())}
    n_keras = len(list((seed / "keras_imagenet").glob("*_top5preds.npy")))
    browser.get(page.as_uri())

    # The header says what was ranked.
    datasets = browser.find_element("id", "datasets").text
    assert "imagenet-val" in datasets and "v2" in datasets and "sketch" in datasets and "50,000" in datasets
    assert "imagenet-bench commit" in browser.find_element("id", "version").text

    # Row count: the 34 models of 2019 and the generated one.
    models = _table_models(browser)
    assert len(models) == len(expected) + 1
    assert browser.find_element("id", "count").text == f"{len(models)} of {len(models)} models shown"
    # Acc@1 cells are the 2019 table's (../shared/reference/seed-2019/seed_table.csv).
    acc = dict(zip(zip(_column(browser, "Platform"), models, strict=True), _column(browser, "Acc@1"), strict=True))
    assert {key: acc[key] for key in expected} == {key: row["acc1"] for key, row in expected.items()}

    # Markup in a model id and in a manifest field is shown as text and runs nothing.
    assert EVIL_ID in models
    assert browser.execute_script("return document.querySelectorAll('img, iframe').length") == 0
    evil_row = browser.find_elements("css selector", "#models tr.model-row")[models.index(EVIL_ID)]
    evil_row.click()
    details = browser.find_element("css selector", "#models tr.details").get_attribute("textContent")
    assert EVIL_FIELD in details and hashes["v2"][("pytorch", EVIL_ID)] in details
    evil_row.click()

    # Clicking the Acc@1 header reverses the order (descending to ascending; empty cells stay last).
    before = [(m, a) for m, a in zip(models, _column(browser, "Acc@1"), strict=True)]
    _click_header(browser, "Acc@1")
    after = list(zip(_table_models(browser), _column(browser, "Acc@1"), strict=True))
    filled = lambda rows: [float(a) for _, a in rows if a]
    assert filled(before) == sorted(filled(before), reverse=True) and filled(after) == sorted(filled(before))
    assert after[0][0] == [m for m, a in before if a][-1] and after[-1] == (EVIL_ID, "")
    _click_header(browser, "Acc@1")
    assert filled(list(zip(_table_models(browser), _column(browser, "Acc@1"), strict=True))) == filled(before)

    # Filtering to Keras leaves exactly the Keras rows, and the charts follow.
    browser.find_element("css selector", "#filter-platform input[value=pytorch]").click()
    platforms = browser.execute_script(
        "return Array.from(document.querySelectorAll('#models tr.model-row')).map(r => r.dataset.platform);"
    )
    assert platforms == ["keras"] * n_keras
    assert set(_column(browser, "Platform")) == {"Keras"}
    assert browser.find_element("id", "count").text == f"{n_keras} of {len(models)} models shown"
    for chart in ("published", "testset-v2", "testset-sketch"):
        points = browser.find_elements("css selector", f"svg[data-chart={chart}] circle.point")
        assert len(points) == n_keras, chart
        assert {p.get_attribute("data-platform") for p in points} == {"keras"}

    # Hovering a point names its model.
    point = browser.find_element("css selector", "svg[data-chart=testset-v2] circle.point")
    ActionChains(browser).move_to_element(point).perform()
    tooltip = browser.find_element("id", "tooltip")
    assert tooltip.is_displayed() and point.get_attribute("data-model") in tooltip.text and "v2 Acc@1" in tooltip.text
    point.click()  # opens its row
    opened = browser.find_element("css selector", "#models tr.model-row[aria-expanded=true]")
    assert opened.find_elements("css selector", "td")[1].text == point.get_attribute("data-model")
    opened.click()

    # A row expands to its manifest's provenance (and says the 2019 val file has none).
    row = browser.find_element("css selector", "#models tr.model-row")
    model = row.find_elements("css selector", "td")[1].text
    row.click()
    details = browser.find_element("css selector", "#models tr.details").get_attribute("textContent")
    for field in (
        "Weights",
        "sha256",
        "Preprocessing",
        "Libraries",
        "Device and numerics",
        "Dataset",
        "Run",
        "fingerprint",
        "command",
        "created",
        hashes["sketch"][("keras", model)],
        f"imagenet_pytorch_get_predictions.py /data/sketch -m {model}",
        "No manifest on imagenet-val",
    ):
        assert field in details, field

    # Search and test-set filters, with the count.
    browser.find_element("css selector", "#filter-platform input[value=pytorch]").click()
    browser.find_element("id", "search").send_keys("resnet")
    shown = _table_models(browser)
    assert shown and all("resnet" in m for m in shown)
    assert browser.find_element("id", "count").text.startswith(f"{len(shown)} of ")
    browser.find_element("id", "search").send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)  # as a user would
    assert len(_table_models(browser)) == len(models)
    browser.execute_script(
        "const s = document.getElementById('filter-test-set'); s.value = 'sketch';s.dispatchEvent(new Event('change'));"
    )
    headers = [th.text for th in browser.find_elements("css selector", "#models thead th")]
    assert not any("v2" in h for h in headers) and any("sketch" in h for h in headers)
    assert EVIL_ID not in _table_models(browser)  # it has no sketch result
    assert not browser.find_elements("css selector", "svg[data-chart=testset-v2]")

    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    (tmp_path / "report.png").write_bytes(base64.b64decode(shot["data"]))
    assert (tmp_path / "report.png").stat().st_size > 10_000

    assert browser.execute_script("return window.__alerts") == 0
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


# ---- the page with --ci, --real-labels and --clean-labels; sources and throughput ---------------

REAL_JSON = ROOT.parent / "shared" / "data" / "imagenet-real" / "real.json"
LABEL_ERRORS = ROOT.parent / "shared" / "data" / "label-errors"
# Copies of 2019 files under other ids, with a manifest recording images/s: two of timm (the
# source filter then differs from the platform filter) and one of Keras.
TIMED = {
    ("pytorch", "timm.resnet50.a1_in1k"): ("resnet50", "timm", 250.0),
    ("pytorch", "timm.resnet18.a1_in1k"): ("resnet18", "timm", 900.0),
    ("keras", "mobilenet_0.25_128"): ("mobilenet", "keras", 1800.0),
}
OPTION_HEADERS = [
    "Platform",
    "Model",
    "Acc@1",
    "Acc@5",
    "Rank@1",
    "Rank@5",
    "Acc@1 95% CI",
    "Acc@5 95% CI",
    "p vs above",
    "~",
    "ReaL@1",
    "ReaL N",
    "Clean@1",
    "Clean rank",
    "Clean Δrank",
    "Fixed@1",
    "Fixed rank",
    "Fixed Δrank",
]


@pytest.fixture(scope="module")
def options_report(tmp_path_factory):
    """The report of the 2019 files plus TIMED, with --ci, --real-labels and --clean-labels."""
    from conftest import VAL_FULL_TXT

    seed = shared(SEED)
    root = tmp_path_factory.mktemp("options")
    more = root / "more"
    more.mkdir()
    for (platform, model), (copied, source, speed) in TIMED.items():
        for kind in ("top5preds", "top5probs"):
            original = seed / f"{platform}_imagenet" / f"{copied}_{platform}_imagenet_{kind}.npy"
            (more / f"{model}_{platform}_imagenet_{kind}.npy").write_bytes(original.read_bytes())
        record = {
            **_manifest(model, "val"),
            "platform": platform,
            "request": {"source": source},
            "throughput": {"images_per_s": speed},
        }
        (more / f"{model}_{platform}_imagenet_manifest.json").write_text(json.dumps(record))
    page = root / "report.html"
    result = run_script(
        "imagenet_benchmarking.py",
        "-k",
        seed / "keras_imagenet",
        "-p",
        seed / "pytorch_imagenet",
        "--dir",
        more,
        "--ci",
        "--real-labels",
        shared(REAL_JSON),
        "--clean-labels",
        shared(LABEL_ERRORS / "imagenet_mturk.json"),
        "--val-ground-truth",
        shared(VAL_FULL_TXT),
        "--no-cache",
        "--html",
        page,
    )
    assert result.returncode == 0, result.stderr
    # the text table printed beside the page has the same columns
    assert [cell.strip() for cell in result.stdout.splitlines()[0].split("|")] == OPTION_HEADERS
    return page


def _wilson(right: int, n: int) -> str:
    """The 95% Wilson score interval in percent, as the table prints it."""
    z, p = 1.959963984540054, right / n
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return f"{100 * (centre - half) / (1 + z * z / n):.2f}-{100 * (centre + half) / (1 + z * z / n):.2f}"


@pytest.mark.slow
def test_report_with_intervals_real_and_clean_labels_sources_and_throughput(browser, options_report, seed_truth):
    """Every column those options add, in the text table's order; each row's interval, ReaL@1,
    Clean@1 and McNemar mark computed here (numpy, scipy, the ReaL and crowd files); the source
    filter; the images/s chart with its points."""
    from scipy.stats import binomtest
    from selenium.webdriver.common.action_chains import ActionChains

    browser.get(options_report.as_uri())
    headers = [
        th.text.replace("▲", "").replace("▼", "").strip()
        for th in browser.find_elements("css selector", "#models thead th")
    ]
    assert headers == OPTION_HEADERS
    models, platforms = _table_models(browser), _column(browser, "Platform")
    assert len(models) == 34 + len(TIMED)

    # Expected, per row, from the files and ../shared: rows in the standard order are cleanlab's
    # ImageFolder order; ReaL's list and the crowd's ids are by val image number.
    order = json.loads((LABEL_ERRORS / "imagenet_val_set_index_to_filepath.json").read_text())
    number = np.array([int(path.rsplit("_", 1)[1].split(".")[0]) for path in order])
    real = json.loads(REAL_JSON.read_text())
    real_sets = [real[i - 1] for i in number]
    has_real = np.array([bool(s) for s in real_sets])
    errors = {
        e["id"] for e in json.loads((LABEL_ERRORS / "imagenet_mturk.json").read_text()) if e["mturk"]["given"] < 3
    }
    clean = ~np.isin(number, list(errors))
    assert has_real.sum() == 46_837 and clean.sum() == 47_084
    width = max(len(s) for s in real_sets)
    padded = np.array([s + [-1] * (width - len(s)) for s in real_sets])

    def truth(platform: str, model: str) -> dict:
        copied = TIMED.get((platform.lower(), model), (model,))[0]
        return seed_truth[(platform, copied)]

    cells = {h: _column(browser, h) for h in ("Acc@1 95% CI", "ReaL@1", "ReaL N", "Clean@1", "~")}
    previous = None
    for i, (platform, model) in enumerate(zip(platforms, models, strict=True)):
        t = truth(platform, model)
        assert cells["Acc@1 95% CI"][i] == _wilson(int(t["c1"].sum()), 50_000), model
        real_right = int(((padded == t["top1"][:, None]).any(axis=1) & has_real).sum())
        assert cells["ReaL@1"][i] == f"{100 * real_right / has_real.sum():.2f}", model
        assert cells["ReaL N"][i] == "46837"
        assert cells["Clean@1"][i] == f"{100 * t['c1'][clean].mean():.2f}", model
        if previous is not None:  # exact McNemar against the row above: "~" where p >= 0.05
            b, c = int((previous & ~t["c1"]).sum()), int((~previous & t["c1"]).sum())
            same = b + c == 0 or binomtest(min(b, c), b + c, 0.5).pvalue >= 0.05
            assert cells["~"][i] == ("~" if same else ""), (model, b, c)
        previous = t["c1"]
    assert "~" in cells["~"] and "" in cells["~"][1:]  # both kinds of neighbour occur

    # The images/s chart: one point per model whose manifest gives images/s.
    def points(chart: str) -> set[str]:
        return {
            p.get_attribute("data-model")
            for p in browser.find_elements("css selector", f"svg[data-chart={chart}] circle.point")
        }

    assert points("throughput") == {model for _, model in TIMED}
    point = browser.find_element(
        "css selector", "svg[data-chart=throughput] circle[data-model='timm.resnet18.a1_in1k']"
    )
    ActionChains(browser).move_to_element(point).perform()
    tooltip = browser.find_element("id", "tooltip").text
    assert "timm.resnet18.a1_in1k" in tooltip and "images/s: 900.0" in tooltip and "timm" in tooltip

    # The source filter: timm off leaves every other row and the Keras point; Keras off too, no point.
    sources = [box.get_attribute("value") for box in browser.find_elements("css selector", "#filter-source input")]
    assert sorted(sources) == ["keras", "timm", "torchvision"]
    browser.find_element("css selector", "#filter-source input[value=timm]").click()
    assert sorted(_table_models(browser)) == sorted(m for m in models if not m.startswith("timm."))
    assert browser.find_element("id", "count").text == f"{len(models) - 2} of {len(models)} models shown"
    assert points("throughput") == {"mobilenet_0.25_128"}
    browser.find_element("css selector", "#filter-source input[value=keras]").click()
    assert set(_column(browser, "Platform")) == {"PyTorch"} and len(_table_models(browser)) == 21
    assert points("throughput") == set()
    for source in ("timm", "keras"):
        browser.find_element("css selector", f"#filter-source input[value={source}]").click()
    assert len(_table_models(browser)) == len(models) and len(points("throughput")) == 3
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
