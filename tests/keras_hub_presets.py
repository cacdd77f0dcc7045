"""Small KerasHub classifiers with random weights, saved as local presets (``save_to_preset``),
for the tests: a real preset's config and weights come from its hub, so none can be built here.

``FAMILIES`` builds, for each KerasHub family with ImageNet presets, a tiny backbone through
that family's own classes, its classifier with a 1000-class head, and its image converter."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np


def _resnet(keras_hub: Any) -> Any:
    from keras_hub.src.models.resnet.resnet_backbone import ResNetBackbone

    return ResNetBackbone(input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 16],
                          stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
                          use_pre_activation=False, image_shape=(None, None, 3))


def _vgg(keras_hub: Any) -> Any:
    from keras_hub.src.models.vgg.vgg_backbone import VGGBackbone

    return VGGBackbone(stackwise_num_repeats=[1, 1], stackwise_num_filters=[8, 16], image_shape=(None, None, 3))


def _densenet(keras_hub: Any) -> Any:
    from keras_hub.src.models.densenet.densenet_backbone import DenseNetBackbone

    return DenseNetBackbone(stackwise_num_repeats=[1, 1], growth_rate=8, image_shape=(None, None, 3))


def _xception(keras_hub: Any) -> Any:
    from keras_hub.src.models.xception.xception_backbone import XceptionBackbone

    return XceptionBackbone(stackwise_conv_filters=[[8, 16], [16, 16]], stackwise_pooling=[False, True],
                            image_shape=(None, None, 3))


def _vit(keras_hub: Any) -> Any:
    from keras_hub.src.models.vit.vit_backbone import ViTBackbone

    return ViTBackbone(image_shape=(48, 48, 3), patch_size=16, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32)


def _deit(keras_hub: Any) -> Any:
    from keras_hub.src.models.deit.deit_backbone import DeiTBackbone

    return DeiTBackbone(image_shape=(48, 48, 3), patch_size=16, num_layers=1, num_heads=2, hidden_dim=16,
                        intermediate_dim=32)


def _swin(keras_hub: Any) -> Any:
    from keras_hub.src.models.swin_transformer.swin_transformer_backbone import SwinTransformerBackbone

    return SwinTransformerBackbone(image_shape=(48, 48, 3), embed_dim=8, depths=[1, 1], num_heads=[1, 2],
                                   window_size=3, patch_size=4)


FAMILIES: dict[str, tuple[Callable[[Any], Any], str, str]] = {
    # family: (backbone builder, classifier class, converter class)
    "resnet": (_resnet, "ResNetImageClassifier", "ResNetImageConverter"),
    "vgg": (_vgg, "VGGImageClassifier", "VGGImageConverter"),
    "densenet": (_densenet, "DenseNetImageClassifier", "DenseNetImageConverter"),
    "xception": (_xception, "XceptionImageClassifier", "XceptionImageConverter"),
    "vit": (_vit, "ViTImageClassifier", "ViTImageConverter"),
    "deit": (_deit, "DeiTImageClassifier", "DeiTImageConverter"),
    "swin_transformer": (_swin, "SwinTransformerImageClassifier", "SwinTransformerImageConverter"),
}


def save_preset(folder: Path, family: str = "resnet", image_size: int = 48, seed: int = 0,
                calibration: list[np.ndarray] | None = None, **converter: Any) -> Path:
    """Build the family's small classifier with random weights and save it as a preset folder.

    Random weights predict nearly one class for every image; so the head's kernel is scaled
    up and, given ``calibration`` images (uint8 H x W x 3), its bias is set so that each class's
    logit averages zero over them: the argmax then follows what differs between images."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    build, classifier_name, converter_name = FAMILIES[family]
    backbone = build(keras_hub)
    settings = {"image_size": (image_size, image_size), "scale": 1 / 255.0, "offset": None,
                "interpolation": "bilinear", "antialias": False, "crop_to_aspect_ratio": True, **converter}
    image_converter = getattr(keras_hub.layers, converter_name)(**settings)
    preprocessor_class = getattr(keras_hub.models, classifier_name + "Preprocessor")
    classifier = getattr(keras_hub.models, classifier_name)(
        backbone=backbone, num_classes=1000, preprocessor=preprocessor_class(image_converter=image_converter))
    head = [layer for layer in classifier._flatten_layers() if getattr(layer, "units", None) == 1000
            or getattr(layer, "filters", None) == 1000][-1]  # the 1000-class output layer
    kernel, bias = head.get_weights()
    rng = np.random.default_rng(seed)
    head.set_weights([rng.normal(0, 3.0, kernel.shape).astype("float32"), bias])
    if calibration:
        logits = np.stack([classifier.predict(image[None], verbose=0)[0] for image in calibration])
        head.set_weights([head.get_weights()[0], (bias - logits.mean(axis=0)).astype("float32")])
    classifier.save_to_preset(str(folder))
    return Path(folder)
