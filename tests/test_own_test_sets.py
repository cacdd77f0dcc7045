"""ObjectNet and ImageNet-9 end to end (issue 23): both layouts built here from the real val images
of ../shared, both prediction scripts run with the real weights, the table over them all.

None of the ten val classes is one of ObjectNet's 125, so the ObjectNet copy places each image by
the plain run's restricted top-1 (computed here with numpy): two in three go to the folder that
accepts it, one in three to a folder that does not, so the copy holds right and wrong images.
Each copy is framed in red (2 pixels, saved losslessly), and two unscored folders are added.
ImageNet-9's variations hold the four superclasses the val classes reach (the other five folders
empty): the original 224 x 224 images, and Mixed-Same / Mixed-Rand made by pasting each image's
centre on an image of the same class / of a class of no superclass.

Every expectation comes from numpy over the ``--save-all-probs`` outputs of the plain run, the
maps read here from ../shared (testbed's and the authors' files), or torchvision run here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import KERAS_WEIGHTS, SHARED, TORCH_WEIGHTS, VAL500, run_script, shared, weights_flags
from helpers import csv_rows

pytestmark = pytest.mark.slow  # every test here runs real models

MAPS = SHARED / "reference" / "test-sets"
PER_CLASS = 3
IN9 = ("00_dog", "01_bird", "02_wheeled vehicle", "03_reptile", "04_carnivore", "05_insect")
IN9 += ("06_musical instrument", "07_primate", "08_fish")
KERAS_MODEL = "mobilenet_0.25_128"
VAL = "0-val"  # the plain run's folder: part of the val set, named by its folder, which sorts first (primary)
RUNS = {
    # the float MobileNetV2: the quantized one's discrete outputs tie, and ties are broken by each library its way
    "pytorch": ("imagenet_pytorch_get_predictions.py", {"mobilenet_v2": TORCH_WEIGHTS["mobilenet_v2"]}),
    "keras": ("imagenet_keras_get_predictions.py", {KERAS_MODEL: KERAS_WEIGHTS[KERAS_MODEL]}),
}


def _wnids() -> list[str]:
    """The 1000 WordNet ids in class order, from timm's synset list, not the package's reader."""
    import timm.data

    return (Path(timm.data.__file__).parent / "_info" / "imagenet_synsets.txt").read_text().split()


def _objectnet() -> tuple[dict[str, set[int]], list[int], list[str]]:
    """testbed's rule, written out here: folder -> accepted class indices, the union, the unscored folders."""
    load = lambda name: json.loads(shared(MAPS / "objectnet" / name).read_text())
    folder_of = {label: folder for folder, label in load("folder_to_objectnet_label.json").items()}
    index = {name: int(i) for i, name in load("imagenet_to_labels.json").items()}
    accepts = {
        folder_of[label]: {index[n] for n in names.split("; ")}
        for label, names in load("objectnet_to_imagenet_1k.json").items()
    }
    return accepts, sorted(set().union(*accepts.values())), sorted(set(folder_of.values()) - set(accepts))


def _superclass() -> np.ndarray:
    """ImageNet class -> superclass 0..8, -1 for none (the authors' in_to_in9.json)."""
    mapped = json.loads(shared(MAPS / "imagenet-9" / "in_to_in9.json").read_text())
    return np.array([mapped[str(c)] for c in range(1000)])


def _run(platform: str, folder: Path, out: Path, *extra: object, models: list[str] | None = None) -> str:
    """Run a script on the real weights; its stderr."""
    script, weights = RUNS[platform]
    chosen = {m: weights[m] for m in models or weights}
    result = run_script(script, folder, "-m", *chosen, *weights_flags(chosen), "-j", "0", *extra, "-o", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def _outputs(folder: Path, model: str, platform: str) -> tuple[list[str], np.ndarray]:
    """(file stems in row order, N x 1000 probabilities) of a --save-all-probs run."""
    stems = [Path(n).stem for n in (folder / "dataset_files.txt").read_text().splitlines()]
    return stems, np.load(folder / f"{model}_{platform}_imagenet_allprobs.npy")


def _pasted(centre_of: Path, onto: Path) -> Image.Image:
    with Image.open(centre_of) as a, Image.open(onto) as b:
        image = b.convert("RGB")
        image.paste(a.convert("RGB").crop((56, 56, 168, 168)), (56, 56))
    return image


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("own")
    wnids, val = _wnids(), shared(VAL500)
    classes = sorted(p.name for p in val.iterdir() if p.is_dir())
    plain, runs = root / "plain", root / "runs"
    images: dict[str, list[Path]] = {w: sorted((val / w).iterdir())[: PER_CLASS + 2] for w in classes}
    for wnid in classes:
        (plain / wnid).mkdir(parents=True)
        for jpeg in images[wnid][:PER_CLASS]:
            (plain / wnid / jpeg.name).symlink_to(jpeg)
    for platform in RUNS:
        _run(platform, plain, runs / platform / VAL, "--save-all-probs")

    accepts, union, unscored = _objectnet()
    holder = {c: folder for folder, accepted in accepts.items() for c in accepted}
    stems, probs = _outputs(runs / "pytorch" / VAL, "mobilenet_v2", "pytorch")
    top1 = np.array(union)[np.argmax(probs[:, union], axis=1)]
    by_stem = {p.stem: p for w in classes for p in images[w]}
    placed: dict[str, str] = {}  # stem -> ObjectNet folder
    objectnet = root / "objectnet" / "images"
    for row, stem in enumerate(stems):
        right = holder[int(top1[row])]
        placed[stem] = right if row % 3 != 2 else next(f for f in sorted(accepts) if f != right)
    left_out = {p.stem: f for f, w in zip(unscored[:2], classes[-2:], strict=True) for p in images[w][PER_CLASS:]}
    for stem, folder in [*placed.items(), *left_out.items()]:  # 2 unscored folders of 2 unused images each
        (objectnet / folder).mkdir(parents=True, exist_ok=True)
        with Image.open(by_stem[stem]) as image:
            ImageOps.expand(image.convert("RGB"), border=2, fill=(255, 0, 0)).save(objectnet / folder / f"{stem}.png")

    superclass = _superclass()
    mapped = [w for w in classes if superclass[wnids.index(w)] >= 0]
    nowhere = [w for w in classes if superclass[wnids.index(w)] < 0]
    variations = {v: root / "in9" / v / "val" for v in ("original", "mixed_same", "mixed_rand")}
    for folder in variations.values():
        for name in IN9:
            (folder / name).mkdir(parents=True)
    for n, wnid in enumerate(mapped):
        into = IN9[superclass[wnids.index(wnid)]]
        for i, jpeg in enumerate(images[wnid][:PER_CLASS]):
            (variations["original"] / into / jpeg.name).symlink_to(jpeg)
            same = images[wnid][(i + 1) % PER_CLASS]
            _pasted(jpeg, same).save(variations["mixed_same"] / into / f"{jpeg.stem}.png")
            _pasted(jpeg, images[nowhere[n]][i]).save(variations["mixed_rand"] / into / f"{jpeg.stem}.png")

    said = {}  # the runs' closing lines
    for platform in RUNS:
        said[platform, "objectnet"] = _run(platform, objectnet, runs / platform / "objectnet", "--save-all-probs")
        said[platform, "original"] = _run(
            platform, variations["original"], runs / platform / "original", "--save-all-probs"
        )
    for variation in ("mixed_same", "mixed_rand"):
        _run("pytorch", variations[variation], runs / "pytorch" / variation)
    authors = root / "authors"
    _run("pytorch", variations["original"], authors, "--save-all-probs", "--authors-rule", models=["mobilenet_v2"])
    return {
        "root": root,
        "runs": runs,
        "authors": authors,
        "variations": variations,
        "placed": placed,
        "accepts": accepts,
        "union": union,
        "unscored": unscored,
        "superclass": superclass,
        "wnids": wnids,
        "said": said,
    }


def _models(platform: str) -> list[str]:
    return list(RUNS[platform][1])


@pytest.mark.parametrize("platform", list(RUNS))
def test_objectnet_labels_left_out_folders_restriction_and_border(built, platform):
    folder = built["runs"] / platform / "objectnet"
    info = json.loads((folder / "dataset.json").read_text())
    assert info["test_set"] == "objectnet" and info["n_images"] == len(built["placed"])
    assert info["left_out"] == {"folders": 2, "images": 4}
    assert info["class_subset"]["indices"] == built["union"]
    order = sorted(built["accepts"])  # a folder's label is its place among the scored folders
    stems = [Path(n).stem for n in (folder / "dataset_files.txt").read_text().splitlines()]
    assert [order[label] for label in np.load(folder / "dataset_labels.npy")] == [built["placed"][s] for s in stems]
    for model in _models(platform):
        manifest = json.loads((folder / f"{model}_{platform}_imagenet_manifest.json").read_text())
        assert manifest["preprocessing"]["border"] == 2
        # the border cut, the pixels are the JPEG's: the probabilities are the plain run's, restricted
        stems, probs = _outputs(folder, model, platform)
        val_stems, val_probs = _outputs(built["runs"] / platform / VAL, model, platform)
        plain = val_probs[[val_stems.index(s) for s in stems]]
        restricted = np.zeros_like(plain)
        restricted[:, built["union"]] = plain[:, built["union"]] / plain[:, built["union"]].sum(axis=1, keepdims=True)
        assert len(set(np.argmax(plain, axis=1).tolist())) > 3  # the model tells these images apart
        np.testing.assert_allclose(probs, restricted, atol=2e-5)


def _acc(right: np.ndarray) -> float:
    return 100 * float(np.mean(right))


def _objectnet_right(built, probs: np.ndarray, stems: list[str], k: int) -> np.ndarray:
    """Right when one of the top-k over the 125 classes is accepted by the image's folder."""
    union = np.array(built["union"])
    top = union[np.argsort(-probs[:, union], axis=1, kind="stable")[:, :k]]
    return np.array([bool(set(top[i].tolist()) & built["accepts"][built["placed"][s]]) for i, s in enumerate(stems)])


def _in9_right(built, probs: np.ndarray, folder: Path) -> np.ndarray:
    """Right when the superclass of the top-1 over all 1000 classes is the image's folder's."""
    labels = [IN9.index(p.parent.name) for p in _rows(folder)]
    return built["superclass"][np.argmax(probs, axis=1)] == np.array(labels)


def _rows(folder: Path) -> list[Path]:
    """A variation's images in the scripts' row order (superclass, then file name), found here."""
    return [p for name in IN9 for p in sorted((folder / name).iterdir(), key=lambda p: p.name)]


def test_the_table_scores_both_by_their_authors_rules(built):
    """Acc@1 on the ObjectNet copy is what the plain val run's probabilities give once restricted
    to the 125 classes and judged by the folder's accepted set (nothing else changes it); ImageNet-9
    by the superclass of the 1000-class top-1; BG-Gap and effective robustness beside them."""
    result = run_script("imagenet_benchmarking.py", "-r", built["runs"], "--no-cache", "--format", "csv")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {(r["Platform"], r["Model"]): r for r in csv_rows(result.stdout)}
    wnids, accs = built["wnids"], {}
    for platform in RUNS:
        for model in _models(platform):
            row = rows["PyTorch" if platform == "pytorch" else "Keras", model]
            stems, plain = _outputs(built["runs"] / platform / VAL, model, platform)
            truth = np.array([wnids.index(p.parent.name) for p in _rows_of_plain(built)])
            val = _acc(np.argmax(plain, axis=1) == truth)
            onet_stems, _ = _outputs(built["runs"] / platform / "objectnet", model, platform)
            by_stem = plain[[stems.index(s) for s in onet_stems]]
            onet = _acc(_objectnet_right(built, by_stem, onet_stems, 1))
            original = _acc(
                _in9_right(
                    built,
                    plain[[stems.index(p.stem) for p in _rows(built["variations"]["original"])]],
                    built["variations"]["original"],
                )
            )
            assert float(row["Acc@1"]) == pytest.approx(val, abs=0.005)
            assert float(row["Acc@1 objectnet"]) == pytest.approx(onet, abs=0.005)
            assert float(row["Acc@1 imagenet-9-original"]) == pytest.approx(original, abs=0.005)
            accs[model] = (val, onet, original)
            if platform == "pytorch":
                gap = [
                    _acc(_in9_right(built, _top1_probs(built["runs"] / "pytorch" / v, model), built["variations"][v]))
                    for v in ("mixed_same", "mixed_rand")
                ]
                assert float(row["BG-Gap"]) == pytest.approx(gap[0] - gap[1], abs=0.01)
            else:
                assert row["BG-Gap"] == ""  # no Keras run on the mixed variations
    assert len({a[1] for a in accs.values()}) > 1 and any(0 < a[1] < 100 for a in accs.values())
    er = _effective_robustness({m: a[0] for m, a in accs.items()}, {m: a[1] for m, a in accs.items()})
    for (_, model), row in rows.items():
        assert float(row["ER objectnet"]) == pytest.approx(er[model], abs=0.01)


def _rows_of_plain(built) -> list[Path]:
    plain = built["root"] / "plain"
    return [p for w in sorted(os.listdir(plain)) for p in sorted((plain / w).iterdir(), key=lambda p: p.name)]


def _top1_probs(folder: Path, model: str) -> np.ndarray:
    """N x 1000 with 1 at each row's top-1 class, from the top-5 files (no --save-all-probs run)."""
    preds = np.load(folder / f"{model}_pytorch_imagenet_top5preds.npy")
    probs = np.load(folder / f"{model}_pytorch_imagenet_top5probs.npy")
    out = np.zeros((len(preds), 1000))
    out[np.arange(len(preds)), preds[np.arange(len(preds)), np.argmax(probs, axis=1)]] = 1
    return out


def _effective_robustness(val: dict, test: dict) -> dict:
    """scipy's linregress in logit space over every model (independent of the code under test)."""
    from scipy.stats import linregress

    logit = lambda p: np.log(np.asarray(p) / 100 / (1 - np.asarray(p) / 100))
    fit = linregress(logit([val[m] for m in val]), logit([test[m] for m in val]))
    return {m: test[m] - 100 / (1 + np.exp(-(fit.slope * logit(val[m]) + fit.intercept))) for m in val}


@pytest.mark.parametrize("platform", list(RUNS))
def test_imagenet_9_is_the_val_run_mapped_to_superclasses_and_records_its_rule(built, platform):
    """The model's own preprocessing on the unchanged images: the plain run's probabilities,
    unrestricted, with the rule recorded as "model"."""
    folder = built["runs"] / platform / "original"
    info = json.loads((folder / "dataset.json").read_text())
    assert info["test_set"] == "imagenet-9-original" and info["class_subset"] is None
    assert info["columns"] == ["acc1"]
    for model in _models(platform):
        stems, probs = _outputs(folder, model, platform)
        val_stems, val_probs = _outputs(built["runs"] / platform / VAL, model, platform)
        np.testing.assert_allclose(probs, val_probs[[val_stems.index(s) for s in stems]], atol=1e-5)
        manifest = json.loads((folder / f"{model}_{platform}_imagenet_manifest.json").read_text())
        assert manifest["preprocessing"]["rule"] == "model"
        closing = [
            line for line in built["said"][platform, "original"].splitlines() if line.startswith(f"{model}: Acc@1")
        ]
        assert len(closing) == 1 and "Acc@5" not in closing[0]  # ImageNet-9 is scored by Acc@1 alone
    assert (
        f"{_models(platform)[0]}: Acc@1" in built["said"][platform, "objectnet"]
        and "Acc@5" in built["said"][platform, "objectnet"]
    )


def test_the_authors_rule_feeds_the_images_unresized(built):
    """--authors-rule: torchvision's MobileNetV2 run here on ToTensor + Normalize of each file, as
    the authors' in9_eval.py does, gives the script's probabilities."""
    import torch
    import torchvision

    manifest = json.loads((built["authors"] / "mobilenet_v2_pytorch_imagenet_manifest.json").read_text())
    assert manifest["preprocessing"]["rule"] == "authors: no resize"
    model = torchvision.models.mobilenet_v2(weights=None)
    model.load_state_dict(torch.load(shared(TORCH_WEIGHTS["mobilenet_v2"]), weights_only=True))
    model.eval()
    files = _rows(built["variations"]["original"])
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    batch = []
    for path in files:
        with Image.open(path) as image:
            batch.append((np.asarray(image.convert("RGB"), dtype=np.float64) / 255 - mean) / std)
    with torch.no_grad():
        expected = torch.softmax(model(torch.tensor(np.stack(batch)).permute(0, 3, 1, 2).float()), dim=1).numpy()
    stems, probs = _outputs(built["authors"], "mobilenet_v2", "pytorch")
    assert stems == [p.stem for p in files]
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    _, model_rule = _outputs(built["runs"] / "pytorch" / "original", "mobilenet_v2", "pytorch")
    assert np.abs(probs - model_rule).max() > 0.01  # the two rules differ on these images
