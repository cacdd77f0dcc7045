"""Small KerasHub classifiers with random weights, saved as local presets (``save_preset``),
for the tests: a real preset's config and weights come from its hub, so none can be built here.

``SMALL`` holds, for each KerasHub family with ImageNet presets, one or more tiny backbones built
through that family's own classes (its backbone, classifier, preprocessor and image converter),
so that the opt-in sweep in tests/test_keras_hub_script.py can run every family through the
script. Where a family's presets differ in their blocks (ResNet v1/v2/vd, EfficientNet v1 and
the EfficientNetV2-style ``efficientnet2_*`` presets), each kind has its own small model, run as
the preset it stands for. The block settings follow the family's presets (KerasHub's timm
converters, ``keras_hub/src/utils/timm/convert_*.py``, hold their full-size configs) with
fewer, narrower blocks, so that each model builds and runs in about a second.

Converters: KerasHub's timm loader writes a converter with ImageNet's mean and std folded into a
per-channel ``scale`` and ``offset`` and the interpolation of timm's pretrained config
(``TIMM_CONVERTER``); the families converted from timm (CSPNet, EfficientNet, HGNetV2,
MobileNet) are saved with such a converter, so the sweep also runs per-channel lists and bicubic
resizing. The others keep ``save_preset``'s plain ``x / 255`` converter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's, as timm's configs give them
# What keras_hub/src/utils/timm/preset_loader.py (load_image_converter) writes for a timm config.
TIMM_CONVERTER = {"scale": [1 / 255.0 / s for s in _STD], "offset": [-m / s for m, s in zip(_MEAN, _STD, strict=True)]}


@dataclass(frozen=True)
class SmallPreset:
    """One small classifier of a KerasHub family: how to build it and which preset it stands for."""

    family: str  # keras_hub/src/models/<family>, as keras_hub_registry's entries name it
    backbone: Callable[[], Any]  # builds the backbone (imports KerasHub)
    classifier: str  # keras_hub.models.<classifier>; its preprocessor is <classifier>Preprocessor
    converter: str  # keras_hub.layers.<converter>
    preset: str | None = None  # the registered preset it runs as in the sweep (None: the family's first)
    classifier_options: dict[str, Any] = field(default_factory=dict)
    converter_options: dict[str, Any] = field(default_factory=dict)


def _resnet(block_type: str = "basic_block", pre_activation: bool = False, stem: int = 1) -> Callable[[], Any]:
    def build() -> Any:
        from keras_hub.src.models.resnet.resnet_backbone import ResNetBackbone

        # vd presets: a three-conv 3x3 stem (convert_resnet's resnet_vd), v1/v2: one 7x7 conv
        filters, kernels = ([16, 16, 32], [3, 3, 3]) if stem == 3 else ([64], [7])
        return ResNetBackbone(
            input_conv_filters=filters,
            input_conv_kernel_sizes=kernels,
            stackwise_num_filters=[64, 16],
            stackwise_num_blocks=[1, 1],
            stackwise_num_strides=[1, 2],
            block_type=block_type,
            use_pre_activation=pre_activation,
            image_shape=(None, None, 3),
        )

    return build


def _vgg() -> Any:
    from keras_hub.src.models.vgg.vgg_backbone import VGGBackbone

    return VGGBackbone(stackwise_num_repeats=[1, 1], stackwise_num_filters=[8, 16], image_shape=(None, None, 3))


def _densenet() -> Any:
    from keras_hub.src.models.densenet.densenet_backbone import DenseNetBackbone

    return DenseNetBackbone(stackwise_num_repeats=[1, 1], growth_rate=8, image_shape=(None, None, 3))


def _xception() -> Any:
    from keras_hub.src.models.xception.xception_backbone import XceptionBackbone

    return XceptionBackbone(
        stackwise_conv_filters=[[8, 16], [16, 16]], stackwise_pooling=[False, True], image_shape=(None, None, 3)
    )


def _vit() -> Any:
    from keras_hub.src.models.vit.vit_backbone import ViTBackbone

    return ViTBackbone(image_shape=(48, 48, 3), patch_size=16, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32)


def _deit() -> Any:
    from keras_hub.src.models.deit.deit_backbone import DeiTBackbone

    return DeiTBackbone(
        image_shape=(48, 48, 3), patch_size=16, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32
    )


def _swin() -> Any:
    from keras_hub.src.models.swin_transformer.swin_transformer_backbone import SwinTransformerBackbone

    return SwinTransformerBackbone(
        image_shape=(48, 48, 3), embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=3, patch_size=4
    )


def _cspnet() -> Any:
    """As cspdarknet53 (convert_cspnet): dark blocks in CSP stages, down_growth, a 'same' stem."""
    from keras_hub.src.models.cspnet.cspnet_backbone import CSPNetBackbone

    return CSPNetBackbone(
        stem_filters=8,
        stem_kernel_size=3,
        stem_strides=1,
        stackwise_depth=[1, 1],
        stackwise_strides=[2, 2],
        stackwise_num_filters=[16, 32],
        block_type="dark_block",
        stage_type="csp",
        bottle_ratio=[0.5, 1.0],
        block_ratio=[1.0, 0.5],
        expand_ratio=[2.0, 1.0],
        stem_padding="same",
        down_growth=True,
        image_shape=(None, None, 3),
    )


# convert_efficientnet's base settings for every timm EfficientNet. num_features (the 1x1 conv before
# the head) stays at its default, 1280: KerasHub 0.32's EfficientNetBackbone.get_config leaves it out
# (and stackwise_nores_option), so a preset saved with another value reloads with 1280 and its head's
# weights no longer fit (from_preset: "Layer 'predictions' expected 2 variables, but received 0").
_EFFICIENTNET = {
    "min_depth": None,
    "use_depth_divisor_as_min_depth": True,
    "cap_round_filter_decrease": True,
    "dropout": 0,
    "input_shape": (None, None, 3),
}


def _efficientnet() -> Any:
    """As efficientnet_b0: MBConv ('v1') blocks with squeeze-and-excite."""
    from keras_hub.src.models.efficientnet.efficientnet_backbone import EfficientNetBackbone

    return EfficientNetBackbone(
        stackwise_width_coefficients=[1.0] * 2,
        stackwise_depth_coefficients=[1.0] * 2,
        stackwise_kernel_sizes=[3, 5],
        stackwise_num_repeats=[1, 1],
        stackwise_input_filters=[8, 8],
        stackwise_output_filters=[8, 16],
        stackwise_expansion_ratios=[1, 4],
        stackwise_squeeze_and_excite_ratios=[0.25] * 2,
        stackwise_strides=[1, 2],
        stackwise_block_types=["v1"] * 2,
        **_EFFICIENTNET,
    )


def _efficientnet2() -> Any:
    """As efficientnet2_rw_t: a conv-BN-act block, fused MBConv, then MBConv with squeeze-and-excite."""
    from keras_hub.src.models.efficientnet.efficientnet_backbone import EfficientNetBackbone

    return EfficientNetBackbone(
        stackwise_width_coefficients=[1.0] * 3,
        stackwise_depth_coefficients=[1.0] * 3,
        stackwise_kernel_sizes=[3, 3, 3],
        stackwise_num_repeats=[1, 1, 1],
        stackwise_input_filters=[8, 8, 16],
        stackwise_output_filters=[8, 16, 24],
        stackwise_expansion_ratios=[1, 4, 4],
        stackwise_squeeze_and_excite_ratios=[0, 0, 0.25],
        stackwise_strides=[1, 2, 2],
        stackwise_block_types=["cba", "fused", "unfused"],
        stackwise_force_input_filters=[0] * 3,
        stackwise_nores_option=[False] * 3,
        activation="silu",
        **_EFFICIENTNET,
    )


def _hgnetv2() -> Any:
    """As hgnetv2_b0 (convert_hgnetv2): an HG stage, then a downsampling light-conv stage."""
    from keras_hub.src.models.hgnetv2.hgnetv2_backbone import HGNetV2Backbone

    return HGNetV2Backbone(
        depths=[1, 1],
        embedding_size=8,
        hidden_sizes=[16, 32],
        stem_channels=[3, 8, 8],
        hidden_act="relu",
        use_learnable_affine_block=False,
        stackwise_stage_filters=[[8, 8, 16, 1, 2, 3], [16, 16, 32, 1, 2, 5]],
        apply_downsample=[False, True],
        use_lightweight_conv_block=[False, True],
        image_shape=(None, None, 3),
    )


def _mobilenet() -> Any:
    """As mobilenetv3_small (convert_mobilenet): inverted residuals, relu then hard_swish, squeeze-and-excite."""
    from keras_hub.src.models.mobilenet.mobilenet_backbone import MobileNetBackbone

    return MobileNetBackbone(
        stackwise_expansion=[[16], [24, 32]],
        stackwise_num_blocks=[1, 2],
        stackwise_num_filters=[[8], [16, 16]],
        stackwise_kernel_size=[[3], [5, 5]],
        stackwise_num_strides=[[2], [2, 1]],
        stackwise_se_ratio=[[None], [0.25, 0.25]],
        stackwise_activation=[["relu"], ["hard_swish", "hard_swish"]],
        stackwise_padding=[[1], [2, 2]],
        output_num_filters=32,
        depthwise_filters=8,
        depthwise_stride=2,
        depthwise_residual=False,
        squeeze_and_excite=0.5,
        last_layer_filter=32,
        input_activation="hard_swish",
        output_activation="hard_swish",
        input_num_filters=8,
        image_shape=(None, None, 3),
    )


def _timm(interpolation: str) -> dict[str, Any]:
    return {**TIMM_CONVERTER, "interpolation": interpolation}


SMALL: dict[str, SmallPreset] = {
    "resnet": SmallPreset("resnet", _resnet(), "ResNetImageClassifier", "ResNetImageConverter"),
    "resnet_v2": SmallPreset(
        "resnet",
        _resnet(pre_activation=True),
        "ResNetImageClassifier",
        "ResNetImageConverter",
        preset="resnet_v2_50_imagenet",
    ),
    "resnet_vd": SmallPreset(
        "resnet",
        _resnet("bottleneck_block_vd", stem=3),
        "ResNetImageClassifier",
        "ResNetImageConverter",
        preset="resnet_vd_50_imagenet",
    ),
    "vgg": SmallPreset("vgg", _vgg, "VGGImageClassifier", "VGGImageConverter"),
    "densenet": SmallPreset("densenet", _densenet, "DenseNetImageClassifier", "DenseNetImageConverter"),
    "xception": SmallPreset("xception", _xception, "XceptionImageClassifier", "XceptionImageConverter"),
    "vit": SmallPreset("vit", _vit, "ViTImageClassifier", "ViTImageConverter"),
    "deit": SmallPreset("deit", _deit, "DeiTImageClassifier", "DeiTImageConverter"),
    "swin_transformer": SmallPreset(
        "swin_transformer", _swin, "SwinTransformerImageClassifier", "SwinTransformerImageConverter"
    ),
    # interpolations: timm's pretrained configs of each family's first preset (cspdarknet53.ra_in1k
    # bilinear; efficientnet_b0.ra_in1k, efficientnetv2_rw_t.ra2_in1k, hgnetv2_b4.ssld_stage2_ft_in1k,
    # mobilenetv3_small_050.lamb_in1k bicubic)
    "cspnet": SmallPreset(
        "cspnet", _cspnet, "CSPNetImageClassifier", "CSPNetImageConverter", converter_options=_timm("bilinear")
    ),
    "efficientnet": SmallPreset(
        "efficientnet",
        _efficientnet,
        "EfficientNetImageClassifier",
        "EfficientNetImageConverter",
        converter_options=_timm("bicubic"),
    ),
    "efficientnet2": SmallPreset(
        "efficientnet",
        _efficientnet2,
        "EfficientNetImageClassifier",
        "EfficientNetImageConverter",
        preset="efficientnet2_rw_t_ra2_imagenet",
        converter_options=_timm("bicubic"),
    ),
    "hgnetv2": SmallPreset(
        "hgnetv2",
        _hgnetv2,
        "HGNetV2ImageClassifier",
        "HGNetV2ImageConverter",
        classifier_options={"head_filters": 32},
        converter_options=_timm("bicubic"),
    ),
    "mobilenet": SmallPreset(
        "mobilenet",
        _mobilenet,
        "MobileNetImageClassifier",
        "MobileNetImageConverter",
        classifier_options={"num_features": 32},
        converter_options=_timm("bicubic"),
    ),
}


def save_preset(
    folder: Path,
    name: str = "resnet",
    image_size: int = 48,
    seed: int = 0,
    calibration: list[np.ndarray] | None = None,
    **converter: Any,
) -> Path:
    """Build ``SMALL[name]``'s classifier with random weights and save it as a preset folder.

    Random weights predict nearly one class for every image; so the head's kernel is scaled
    up and, given ``calibration`` images (uint8 H x W x 3), its bias is set so that each class's
    logit averages zero over them: the argmax then follows what differs between images."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    small = SMALL[name]
    settings = {
        "image_size": (image_size, image_size),
        "scale": 1 / 255.0,
        "offset": None,
        "interpolation": "bilinear",
        "antialias": False,
        "crop_to_aspect_ratio": True,
        **small.converter_options,
        **converter,
    }
    image_converter = getattr(keras_hub.layers, small.converter)(**settings)
    preprocessor_class = getattr(keras_hub.models, small.classifier + "Preprocessor")
    classifier = getattr(keras_hub.models, small.classifier)(
        backbone=small.backbone(),
        num_classes=1000,
        preprocessor=preprocessor_class(image_converter=image_converter),
        **small.classifier_options,
    )
    head = [
        layer
        for layer in classifier._flatten_layers()
        if getattr(layer, "units", None) == 1000 or getattr(layer, "filters", None) == 1000
    ][-1]  # the 1000-class output layer
    kernel, bias = head.get_weights()
    rng = np.random.default_rng(seed)
    head.set_weights([rng.normal(0, 3.0, kernel.shape).astype("float32"), bias])
    if calibration:
        logits = np.stack([classifier.predict(image[None], verbose=0)[0] for image in calibration])
        head.set_weights([head.get_weights()[0], (bias - logits.mean(axis=0)).astype("float32")])
    classifier.save_to_preset(str(folder))
    return Path(folder)
