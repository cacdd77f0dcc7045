"""The timm registry: every ImageNet-1k pretrained config, read without building a model or
touching the network; timm's own eval transform reproduced pixel for pixel; a few models
built through the --weights-file path with random weights (every entry in the opt-in sweep)."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import re
import subprocess
import sys

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config, resolve_model_data_config
from timm.models import get_pretrained_cfg

from imagenet_bench.base.errors import UsageError
from imagenet_bench.datasets.layout import Dataset
from imagenet_bench.models import timm_costs, timm_registry
from imagenet_bench.outputs.predfiles import sha256_file
from imagenet_bench.predict import torch_predict
from tools import timm_costs as make_timm_costs

from conftest import ROOT, SHARED, shared, sweep_enabled, tiny_dataset


def _library_imagenet1k_names() -> set[str]:
    """Independent enumeration: pretrained names whose config has 1000 classes."""
    return {name for name in timm.list_pretrained() if get_pretrained_cfg(name).num_classes == 1000}


def test_counts_match_the_installed_timm():
    entries, excluded = timm_registry.entries(), timm_registry.excluded()
    expected = _library_imagenet1k_names()
    ids = [e.id for e in entries] + [model_id for model_id, _ in excluded]
    assert len(ids) == len(set(ids))
    assert set(ids) == {"timm." + name for name in expected}
    if timm.__version__ == "1.0.31":
        assert (len(entries), len(excluded)) == (1321, 0)


def test_ids_follow_the_documented_rule():
    entries = timm_registry.entries()
    assert [e.id for e in entries] == sorted(e.id for e in entries)
    for entry in entries:
        assert entry.id == "timm." + entry.name and "/" not in entry.id
        assert entry.weights_name == f"timm {entry.name}"
        assert entry.quantized is False
        assert entry.name == f"{entry.architecture}.{entry.tag}"
    assert timm_registry.by_id()["timm.resnet50.a1_in1k"].name == "resnet50.a1_in1k"


def test_the_config_not_the_tag_decides():
    ids = timm_registry.by_id()
    assert "timm.beitv2_base_patch16_224.in1k_ft_in22k" not in ids  # "in1k" in the tag, 21841 classes
    assert "timm.vit_huge_patch14_gap_224.in1k_ijepa" not in ids  # "in1k" in the tag, no classifier
    assert "timm.resmlp_12_224.fb_dino" in ids  # no "in1k" in the tag, a 1000-class classifier
    assert "timm.convnext_base.fb_in22k_ft_in1k" in ids  # fine-tuned to ImageNet-1k
    for entry in timm_registry.entries():
        assert not entry.pretrained_cfg.get("label_offset")  # outputs in ImageNet-1k order


def test_listing_needs_no_model_and_no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(timm, "create_model", refuse)
    for entry in timm_registry.entries():
        p = entry.preprocess("reference")
        assert p.resize_mode in ("shorter", "squash") and p.normalization == "mean_std"
        assert entry.meta["num_params"] == entry.num_params() > 0  # from data/timm_costs.csv
        assert entry.meta["_ops"] == entry.gflops()
        assert entry.published is None or entry.published["acc1"] > 0
        json.dumps(entry.pretrained_cfg)
        json.dumps(entry.meta)


# --- parameters and GMACs: data/timm_costs.csv ---------------------------------------------

BENCHMARK = SHARED / "reference" / "timm-results" / "benchmark-infer-amp-nchw-pt291-cu130-5090.csv"
# Different families: CNNs, ViTs, a hierarchical transformer, a MetaFormer at two sizes, an EVA
# with a fixed input size, a distilled DeiT (two heads), and re-parameterisable networks.
COUNTED_SAMPLE = [
    "resnet50.tv_in1k",
    "resnet50.a1_in1k",
    "vit_base_patch16_224.augreg2_in21k_ft_in1k",
    "convnext_tiny.fb_in1k",
    "efficientnet_b0.ra_in1k",
    "swin_tiny_patch4_window7_224.ms_in1k",
    "mobilenetv3_large_100.ra_in1k",
    "caformer_s18.sail_in1k_384",
    "eva02_tiny_patch14_336.mim_in22k_ft_in1k",
    "deit_tiny_distilled_patch16_224.fb_in1k",
    "levit_128.fb_dist_in1k",
    "repvgg_a0.rvgg_in1k",
]


def _meta_device_count(name: str) -> int:
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    assert model.num_classes == 1000
    return sum(p.numel() for p in model.parameters())


def _benchmark() -> dict[tuple[str, int], dict[str, str]]:
    with open(shared(BENCHMARK), encoding="utf-8", newline="") as handle:
        return {(row["model"], int(row["infer_img_size"])): row for row in csv.DictReader(handle)}


def test_costs_file_covers_every_entry_of_the_installed_timm():
    table = timm_costs.table()
    assert table.timm_version == timm.__version__, (
        "data/timm_costs.csv was counted with another timm: python -m tools.timm_costs RESULTS_DIR"
    )
    for entry in timm_registry.entries():
        assert table.params.get(entry.architecture, 0) > 0, entry.id
    rows = [line for line in timm_costs.COSTS_CSV.read_text(encoding="utf-8").splitlines() if line[:1] != "#"]
    sizes = {(e.architecture, e.reference_preprocess().crop_size) for e in timm_registry.entries()}
    assert len(rows) - 1 == len(sizes)  # one row per architecture and reference size, no other


@pytest.mark.parametrize("name", COUNTED_SAMPLE)
def test_costs_file_counts_equal_a_meta_device_count(name, monkeypatch):
    expected = _meta_device_count(name)
    entry = timm_registry.by_id()["timm." + name]
    monkeypatch.setattr(timm, "create_model", lambda *a, **k: pytest.fail("a model was built"))
    assert entry.num_params() == timm_costs.num_params(entry.architecture) == expected


def test_counts_keyed_by_architecture_agree_across_its_tags():
    """resnet50 has 18 weight sets; every one has the count of its architecture."""
    names = [e.name for e in timm_registry.entries() if e.architecture == "resnet50"]
    assert len(names) >= 10
    assert {_meta_device_count(name) for name in names[::4]} == {timm_costs.num_params("resnet50")}
    counted = [make_timm_costs.Counted("a.x", "a", 224, 10), make_timm_costs.Counted("a.y", "a", 224, 11)]
    with pytest.raises(RuntimeError, match=re.escape("a.x has 10 parameters, a.y 11")):
        make_timm_costs.per_architecture(counted)


def test_gmacs_are_timms_benchmark_at_the_reference_size_for_the_same_network():
    benchmark, by_id = _benchmark(), timm_registry.by_id()
    # resnet50: 4.11 at 224 (tv_in1k), 6.8 at the a1 weights' test size 288, not the 224 it trained at
    assert by_id["timm.resnet50.tv_in1k"].gflops() == 4.11 == float(benchmark[("resnet50", 224)]["infer_gmacs"])
    assert by_id["timm.resnet50.a1_in1k"].gflops() == 6.8 == float(benchmark[("resnet50", 288)]["infer_gmacs"])
    checked = 0
    for entry in timm_registry.entries():
        size = entry.reference_preprocess().crop_size
        row = benchmark.get((entry.architecture, size))
        same = row is not None and abs(float(row["param_count"]) * 1e6 - entry.num_params()) <= 5000
        assert entry.gflops() == (float(row["infer_gmacs"]) if same else None), entry.id
        checked += same
    assert checked > 1100
    # timm benchmarks RepVGG fused (8.31 M parameters, not the 9.11 M we run): no figure
    assert float(benchmark[("repvgg_a0", 224)]["param_count"]) == 8.31
    assert by_id["timm.repvgg_a0.rvgg_in1k"].gflops() is None


@pytest.mark.parametrize(
    "timm_name, torchvision_name",
    [
        ("resnet50.tv_in1k", "resnet50"),
        ("convnext_tiny.fb_in1k", "convnext_tiny"),
        ("vit_base_patch16_224.augreg2_in21k_ft_in1k", "vit_b_16"),
    ],
)
def test_gmacs_are_the_unit_of_torchvisions_ops(timm_name, torchvision_name):
    """The same network at 224: timm's GMACs within 1% of torchvision's _ops (shown as GFLOPs),
    so both are multiply-adds (FLOPs counted as two per multiply-add would be twice)."""
    import torchvision

    weights = torchvision.models.get_model_weights(torchvision_name).DEFAULT
    entry = timm_registry.by_id()["timm." + timm_name]
    assert entry.num_params() == weights.meta["num_params"]  # the same network
    benchmark_224 = float(_benchmark()[(entry.architecture, 224)]["infer_gmacs"])
    assert benchmark_224 == pytest.approx(weights.meta["_ops"], rel=0.01)


def test_a_model_the_file_lacks_is_counted_by_building_it(monkeypatch):
    name = "convnext_atto.d2_in1k"
    expected = _meta_device_count(name)
    monkeypatch.setattr(timm_costs, "table", lambda: timm_costs.Costs("0", {}, {}))
    entry = timm_registry.by_id()["timm." + name]
    assert entry.num_params() == expected and entry.gflops() is None


@pytest.mark.slow
def test_generate_writes_what_the_file_holds_for_a_sample():
    """The generator on a few entries (counted here) gives the committed file's rows for them."""
    entries = [timm_registry.by_id()["timm." + name] for name in COUNTED_SAMPLE]
    counted = [
        make_timm_costs.Counted(e.name, e.architecture, e.reference_preprocess().crop_size, _meta_device_count(e.name))
        for e in entries
    ]
    text = make_timm_costs.generate(
        counted, make_timm_costs.benchmark_rows(shared(BENCHMARK)), timm.__version__, "test"
    )
    generated = [line for line in text.splitlines() if line[:1] != "#"]
    committed = timm_costs.COSTS_CSV.read_text(encoding="utf-8").splitlines()
    assert generated[0] == "architecture,num_params,img_size,gmacs"
    assert len(generated) == len({(c.architecture, c.img_size) for c in counted}) + 1
    assert set(generated[1:]) <= set(committed)


@pytest.mark.sweep
@pytest.mark.skipif(not sweep_enabled(), reason="opt-in sweep: IMAGENET_BENCH_SWEEP=1")
def test_sweep_costs_file_equals_a_fresh_generation():
    """Every entry counted again (minutes): the committed file is what the generator writes now."""
    counted = [
        make_timm_costs.Counted(e.name, e.architecture, e.reference_preprocess().crop_size, _meta_device_count(e.name))
        for e in timm_registry.entries()
    ]
    committed = timm_costs.COSTS_CSV.read_text(encoding="utf-8")
    source = committed.splitlines()[0].split("GMACs: ", 1)[1]
    assert (
        make_timm_costs.generate(counted, make_timm_costs.benchmark_rows(shared(BENCHMARK)), timm.__version__, source)
        == committed
    )


def test_reference_preprocessing_is_the_configs_test_size():
    """Like timm's validate.py: test_input_size / test_crop_pct where the config has them."""
    for entry in timm_registry.entries():
        cfg = entry.pretrained_cfg
        size = (cfg.get("test_input_size") or cfg["input_size"])[1]
        crop_pct = cfg.get("test_crop_pct") or cfg["crop_pct"]
        p = entry.preprocess("reference")
        assert p.crop_size == size, entry.id
        assert p.mean == tuple(cfg["mean"]) and p.std == tuple(cfg["std"]), entry.id
        assert p.interpolation == cfg["interpolation"], entry.id
        assert p.resize_mode == {"center": "shorter", "squash": "squash"}[cfg["crop_mode"]], entry.id
        assert p.resize_size == math.floor(size / crop_pct), entry.id
    p = timm_registry.by_id()["timm.resnet50.a1_in1k"].preprocess("reference")
    assert (p.resize_mode, p.resize_size, p.crop_size, p.interpolation) == ("shorter", 288, 288, "bicubic")


def test_train_size_is_available_but_not_the_default():
    entry = timm_registry.by_id()["timm.resnet50.a1_in1k"]
    p = entry.reference_preprocess(use_test_size=False)
    assert (p.resize_size, p.crop_size) == (235, 224)  # input_size 224, crop_pct 0.95
    assert entry.preprocess("reference") == entry.reference_preprocess(use_test_size=True)


def test_common_and_seed2019_protocols():
    entry = timm_registry.by_id()["timm.resnet50.a1_in1k"]
    c = entry.preprocess("common")
    # the crop is the reference (test-time) size, 288; shorter side round(288 / 0.875)
    assert (c.resize_mode, c.resize_size, c.crop_size, c.interpolation) == ("shorter", 329, 288, "bilinear")
    squash = timm_registry.by_id()["timm.dm_nfnet_f0.dm_in1k"].preprocess("common")
    assert (squash.resize_mode, squash.resize_size, squash.crop_size) == ("shorter", 293, 256)
    with pytest.raises(UsageError, match="seed2019 covers only"):
        entry.preprocess("seed2019")
    with pytest.raises(UsageError, match="expected one of"):
        entry.preprocess("nope")


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"crop_mode": "border"}, "crop_mode 'border'"),
        ({"input_size": (3, 224, 256)}, "non-square input size 224x256"),
        ({"interpolation": "random"}, "interpolation 'random'"),
    ],
)
def test_preprocessing_that_cannot_be_expressed_is_refused(change, reason):
    cfg = {**get_pretrained_cfg("resnet50.a1_in1k").to_dict(), **change}
    with pytest.raises(UsageError, match=reason):
        timm_registry.preprocess_from_cfg(cfg)


def _geometries():
    """One entry per distinct (crop_mode, interpolation, input size, crop_pct): every timm eval
    geometry of the registry (about 100), which covers every (crop_mode, interpolation) pair."""
    chosen = {}
    for entry in timm_registry.entries():
        c = resolve_data_config(pretrained_cfg=entry.pretrained_cfg, use_test_size=True)
        chosen.setdefault((c["crop_mode"], c["interpolation"], c["input_size"], c["crop_pct"]), entry)
    return chosen


def _images():
    rng = np.random.default_rng(0)
    sizes = [(500, 375), (375, 500), (123, 457), (256, 256), (61, 40)]  # (width, height)
    images = []
    for width, height in sizes:
        base = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(base).resize((width, height), Image.Resampling.BILINEAR))
        noise = rng.integers(-20, 21, smooth.shape)
        images.append(Image.fromarray(np.clip(smooth + noise, 0, 255).astype(np.uint8)))  # edges and texture
    return images


@pytest.mark.slow
def test_pixels_identical_to_timms_own_eval_transform():
    geometries = _geometries()
    assert {(k[0], k[1]) for k in geometries} == {
        (e.pretrained_cfg["crop_mode"], e.pretrained_cfg["interpolation"]) for e in timm_registry.entries()
    }
    images = _images()
    for key, entry in geometries.items():
        steps = create_transform(
            **resolve_data_config(pretrained_cfg=entry.pretrained_cfg, use_test_size=True), is_training=False
        )
        pil_steps = [t for t in steps.transforms if type(t).__name__ not in ("MaybeToTensor", "Normalize")]
        assert len(pil_steps) == 2, key
        preprocess = entry.preprocess("reference")
        for image in images:
            expected = image
            for step in pil_steps:
                expected = step(expected)
            got = preprocess.pixels(image)
            assert got.dtype == np.uint8 and got.shape == (preprocess.crop_size, preprocess.crop_size, 3)
            assert np.array_equal(got, np.asarray(expected)), (entry.id, key, image.size)


def _tiny_dataset(tmp_path, n=2) -> Dataset:
    return tiny_dataset(tmp_path, n)


def _build_from_random_weights(entry, tmp_path, suffix=".pth"):
    """Save a random timm model's state dict, build the entry from that file, compare."""
    torch.manual_seed(0)
    donor = timm.create_model(entry.name, pretrained=False)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in donor.state_dict().items()}, str(path))
    else:
        torch.save(donor.state_dict(), path)
    model, record = entry.build(path)
    assert record["source"] == "file" and record["path"] == str(path) and len(record["sha256"]) == 64
    assert record["id"] == entry.name and record["pretrained_cfg"]["tag"] == entry.tag
    json.dumps(record)
    expected, got = donor.state_dict(), model.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert model.num_classes == 1000
    # the model timm built has the data config we derived from the config alone
    assert resolve_model_data_config(model) == resolve_data_config(pretrained_cfg=entry.pretrained_cfg)
    del donor, path
    return model


def _forward(model, entry, tmp_path):
    out = torch_predict.predict(
        model,
        _tiny_dataset(tmp_path),
        entry.preprocess("reference"),
        torch_predict.Numerics("cpu"),
        batch_size=2,
        workers=0,
        k=5,
        save_all_probs=True,
    )
    assert out["all_probs"].shape == (2, 1000)
    assert np.allclose(out["all_probs"].sum(axis=1), 1.0, atol=1e-4)


# A CNN, a ViT (custom_load: its original weights are .npz), a ConvNeXt, an EfficientNet with
# crop_mode "squash", a DLA (loaded non-strictly by timm), one whose weights are a URL, not on the hub.
CI_MODELS = [
    "resnet18.a1_in1k",
    "vit_tiny_patch16_224.augreg_in21k_ft_in1k",
    "convnext_atto.d2_in1k",
    "tf_efficientnetv2_b3.in21k_ft_in1k",
    "dla46_c.in1k",
    "legacy_seresnet18.in1k",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", CI_MODELS)
def test_weights_file_builds_the_same_network_random_weights(name, tmp_path):
    entry = timm_registry.by_id()["timm." + name]
    model = _build_from_random_weights(entry, tmp_path)
    _forward(model, entry, tmp_path)


def test_ci_models_cover_what_they_claim():
    by_id = timm_registry.by_id()
    cfgs = {name: by_id["timm." + name].pretrained_cfg for name in CI_MODELS}
    assert cfgs["vit_tiny_patch16_224.augreg_in21k_ft_in1k"]["custom_load"]
    assert cfgs["tf_efficientnetv2_b3.in21k_ft_in1k"]["crop_mode"] == "squash"
    assert not cfgs["legacy_seresnet18.in1k"].get("hf_hub_id")


def test_weights_file_in_the_hubs_safetensors_format(tmp_path):
    entry = timm_registry.by_id()["timm.resnet18.a1_in1k"]
    _build_from_random_weights(entry, tmp_path, suffix=".safetensors")


def test_weights_file_that_does_not_fit_is_one_clear_error(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), path)
    with pytest.raises(UsageError, match=r"does not fit timm\.resnet34\.a1_in1k") as info:
        timm_registry.by_id()["timm.resnet34.a1_in1k"].build(path)
    assert "\n" not in str(info.value) and "layer" in str(info.value)  # says which tensors
    with pytest.raises(UsageError, match="does not exist"):
        timm_registry.by_id()["timm.resnet34.a1_in1k"].build(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(UsageError, match=re.escape("does not fit timm.resnet18.a1_in1k or is not a checkpoint")):
        timm_registry.by_id()["timm.resnet18.a1_in1k"].build(tmp_path / "junk.pth")


def test_weights_file_missing_keys_are_refused_where_timm_loads_non_strictly(tmp_path):
    state = timm.create_model("dla46_c").state_dict()
    state.pop("base_layer.0.weight")
    path = tmp_path / "dla.pth"
    torch.save(state, path)
    with pytest.raises(UsageError, match=r"does not fit timm\.dla46_c\.in1k .*Missing keys \(base_layer\.0\.weight\)"):
        timm_registry.by_id()["timm.dla46_c.in1k"].build(path)


def _fill_hub_cache(hf_home, name, state):
    """What huggingface_hub leaves after a download: refs/main -> snapshots/<commit>/model.safetensors."""
    from safetensors.torch import save_file

    repo = hf_home / "hub" / f"models--timm--{name}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    path = repo / "snapshots" / commit / "model.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


@pytest.mark.slow
def test_download_path_offline_failure_and_cache_hit(tmp_path):
    """As a user without network (a fresh process, HF_HUB_OFFLINE=1, its own HF_HOME): a model
    not in the cache fails with one line naming the model and the cache; one in the cache is
    loaded by timm.create_model(pretrained=True) itself, and its file is in the record."""
    torch.manual_seed(0)
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    cached = _fill_hub_cache(tmp_path / "hf", "resnet18.a1_in1k", state)
    torch.save(state, tmp_path / "expected.pth")
    code = (
        "import json, sys, torch\n"
        "from imagenet_bench.models import timm_registry\n"
        "try:\n"
        "    timm_registry.by_id()['timm.resnet34.a1_in1k'].build(None)\n"
        "except RuntimeError as exc:\n"
        "    print('ERROR:', exc)\n"
        "model, record = timm_registry.by_id()['timm.resnet18.a1_in1k'].build(None)\n"
        "expected = torch.load(sys.argv[1])\n"
        "record['equal'] = all(torch.equal(expected[k], v) for k, v in model.state_dict().items())\n"
        "print('RECORD:', json.dumps(record))\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(ROOT))
    env.pop("HF_HUB_CACHE", None)
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "expected.pth")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    errors = [line for line in done.stdout.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, done.stdout + done.stderr
    assert "timm.resnet34.a1_in1k" in errors[0] and "hf-hub:timm/resnet34.a1_in1k" in errors[0]
    assert str(tmp_path / "hf" / "hub") in errors[0] and "--weights-file" in errors[0]
    records = [line for line in done.stdout.splitlines() if line.startswith("RECORD:")]
    assert len(records) == 1, done.stdout + done.stderr
    record = json.loads(records[0].split(" ", 1)[1])
    assert record["equal"] is True
    assert record["source"] == "timm download" and record["hf_hub_id"] == "timm/resnet18.a1_in1k"
    assert record["path"] == str(cached) and record["sha256"] == sha256_file(cached)


def _sweep_entries():
    """Every entry, or a seeded random sample of IMAGENET_BENCH_SWEEP_SAMPLE=N of them."""
    entries = list(timm_registry.entries())
    sample = os.environ.get("IMAGENET_BENCH_SWEEP_SAMPLE")
    return sorted(random.Random(0).sample(entries, int(sample)), key=lambda e: e.id) if sample else entries


@pytest.mark.sweep
@pytest.mark.skipif(not sweep_enabled(), reason="opt-in sweep: IMAGENET_BENCH_SWEEP=1")
@pytest.mark.parametrize("entry", _sweep_entries(), ids=lambda e: e.id)
def test_sweep_every_entry_weights_file_and_forward(entry, tmp_path):
    model = _build_from_random_weights(entry, tmp_path)
    _forward(model, entry, tmp_path)


def test_published_figures_are_timms_results_at_the_size_the_entry_runs_at():
    """Read here from timm's own results file (../shared), not through the project's data file."""
    import csv

    with open(shared(SHARED / "reference" / "timm-results" / "results-imagenet.csv"), newline="") as handle:
        rows = {(r["model"], int(r["img_size"])): r for r in csv.DictReader(handle)}
    entries = timm_registry.by_id()
    for name in ("resnet50.a1_in1k", "convnext_tiny.fb_in1k", "vit_base_patch16_224.augreg2_in21k_ft_in1k"):
        entry = entries["timm." + name]
        size = entry.preprocess("reference").crop_size
        row = rows[(name, size)]
        assert entry.published["acc1"] == float(row["top1"]) and entry.published["acc5"] == float(row["top5"])
    with_figures = sum(entry.published is not None for entry in entries.values())
    assert with_figures > 1200, with_figures


def test_costs_counted_with_another_timm_are_used_with_a_warning(monkeypatch):
    monkeypatch.setattr(timm, "__version__", "9.9.9")
    timm_registry._costs_counted_here.cache_clear()
    try:
        with pytest.warns(UserWarning, match="counted with timm 1.0.31, timm 9.9.9 is installed"):
            assert timm_registry.by_id()["timm.resnet50.a1_in1k"].num_params() == 25557032  # torchvision's count
    finally:
        timm_registry._costs_counted_here.cache_clear()
