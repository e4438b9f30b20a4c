"""``build_backbone(name, ...)``: backbones by the names the command line uses."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .backbones import Backbone, EfficientNetLite0, MLPBackbone, SmallCNN
from .torchvision_backbones import TorchvisionFC7

__all__ = ["BACKBONES", "DEFAULT_IMAGE_SIZE", "PRETRAINED_BACKBONES", "build_backbone"]

#: Backbone names accepted by :func:`build_backbone`.
BACKBONES = ("small-cnn", "mlp", "efficientnet-lite0", "alexnet", "vgg16")
#: The names whose weights come from ImageNet pretraining (the ones a frozen mode makes sense for).
PRETRAINED_BACKBONES = ("efficientnet-lite0", "alexnet", "vgg16")
#: Input side of each image backbone when ``image_size`` is not given (64 px is the CPU
#: setting of EfficientNet-Lite0; AlexNet and VGG16 take the paper's 224).
DEFAULT_IMAGE_SIZE = {"small-cnn": 28, "efficientnet-lite0": 64, "alexnet": 224, "vgg16": 224}


def build_backbone(
    name: str,
    *,
    in_features: int | None = None,
    in_channels: int = 1,
    image_size: int | None = None,
    hidden: Sequence[int] = (512,),
    weights_path: str | os.PathLike | None = None,
    pretrained: bool = True,
    precision: str = "float32",
) -> Backbone:
    """Build a backbone by name.

    Parameters
    ----------
    name : {"small-cnn", "mlp", "efficientnet-lite0", "alexnet", "vgg16"}
    in_features : int, optional
        Flattened input width; required for ``"mlp"``.
    in_channels : {1, 3}, default 1
        Input channels of ``"small-cnn"``.
    image_size : int, optional
        Network input side; default 28 (small CNN), 64 (EfficientNet-Lite0, the CPU setting),
        224 (AlexNet, VGG16). Ignored by ``"mlp"``.
    hidden : sequence of int, default (512,)
        Hidden widths of ``"mlp"``.
    weights_path : path-like, optional
        Pretrained weights file for the pretrained backbones (default: the packaged
        EfficientNet-Lite0 weights, torchvision's cache for AlexNet/VGG16).
    pretrained : bool, default True
        Load pretrained weights (pretrained backbones only).
    precision : {"float32", "bfloat16"}, default "float32"
        Precision of the matrix products of ``"mlp"`` (:mod:`h2q.models.precision`).

    Returns
    -------
    Backbone
    """
    if not isinstance(name, str) or name.lower() not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}.")
    name = name.lower()
    if weights_path is not None and name not in PRETRAINED_BACKBONES:
        raise ValueError(
            f"weights_path was given, but {name} is trained from scratch; weights files are for "
            f"{', '.join(PRETRAINED_BACKBONES)}."
        )
    if name == "small-cnn":
        size = image_size or DEFAULT_IMAGE_SIZE[name]
        return SmallCNN(in_channels=in_channels, image_size=size)
    if name == "mlp":
        if in_features is None:
            raise ValueError("the mlp backbone needs in_features (the flattened input width).")
        return MLPBackbone(in_features, hidden=hidden, precision=precision)
    if name == "efficientnet-lite0":
        size = image_size or DEFAULT_IMAGE_SIZE[name]
        return EfficientNetLite0(weights_path, image_size=size, pretrained=pretrained)
    size = image_size or DEFAULT_IMAGE_SIZE[name]
    return TorchvisionFC7(name, weights_path, image_size=size, pretrained=pretrained)
