"""torchvision AlexNet and VGG16 cut at fc7 (4096-d), the paper's backbones.

torchvision is an optional extra (``pip install "h2q[vision]"``), imported only when one of
these backbones is built. Nothing is downloaded: the ImageNet weights are read from
``weights_path`` or, failing that, from torchvision's own cache
(``<torch.hub.get_dir()>/checkpoints/<file>``, where torchvision keeps what it once downloaded).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .backbones import Backbone, _check_image_size, _load_state_dict, _weights_identity
from .preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    center_crop,
    resize_shorter_side,
    to_channels_first,
)

__all__ = ["TORCHVISION_ARCHS", "TorchvisionFC7"]

VISION_INSTALL = 'pip install "h2q[vision]"'

#: Architectures, with the torchvision weight enum and the file name of its ImageNet weights.
TORCHVISION_ARCHS: dict[str, tuple[str, str]] = {
    "alexnet": ("AlexNet_Weights", "alexnet-owt-7be5be79.pth"),
    "vgg16": ("VGG16_Weights", "vgg16-397923af.pth"),
}


def _torchvision_models() -> Any:
    try:
        import torchvision.models as models
    except ImportError as exc:
        raise ImportError(
            "the alexnet and vgg16 backbones need torchvision, an optional extra: "
            f"{VISION_INSTALL} (install a torchvision built for your torch version)."
        ) from exc
    return models


def _weights_file_name(models: Any, arch: str) -> str:
    enum_name, default = TORCHVISION_ARCHS[arch]
    enum = getattr(models, enum_name, None)
    url = getattr(getattr(enum, "IMAGENET1K_V1", None), "url", None)
    return os.path.basename(url) if isinstance(url, str) else default


def cached_weights_path(arch: str) -> Path:
    """Where torchvision keeps the ImageNet weights of ``arch`` once downloaded."""
    if arch not in TORCHVISION_ARCHS:
        raise ValueError(f"arch must be one of {sorted(TORCHVISION_ARCHS)}, got {arch!r}.")
    models = _torchvision_models()
    return Path(torch.hub.get_dir()) / "checkpoints" / _weights_file_name(models, arch)


class TorchvisionFC7(Backbone):
    """AlexNet or VGG16 from torchvision, up to the ReLU after fc7: 4096-d features.

    The classifier keeps every layer before fc8 (the ImageNet output layer) except a trailing
    dropout, so the features are the fc7 activations (dropout before fc6/fc7 stays, active in
    training mode as in the original networks).

    Preprocessing (as in the paper): grey images repeated to 3 channels, resize so that the
    shorter side is ``256 * image_size / 224`` (bilinear, antialiased), central crop of
    ``image_size`` (224), scale to 0..1, ImageNet mean/std normalisation.

    Parameters
    ----------
    arch : {"alexnet", "vgg16"}
    weights_path : path-like, optional
        A torchvision state dict of the architecture. Default: torchvision's cache; if the file
        is not there an error says where to put it (nothing is downloaded).
    image_size : int, default 224
        Crop size.
    pretrained : bool, default True
        Load ImageNet weights; False gives a randomly initialised network.

    Raises
    ------
    ImportError
        When torchvision is not installed (``pip install "h2q[vision]"``).
    FileNotFoundError
        When no weights file is given and none is in torchvision's cache.
    """

    feature_dim = 4096

    def __init__(
        self,
        arch: str,
        weights_path: str | os.PathLike | None = None,
        image_size: int = 224,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        if arch not in TORCHVISION_ARCHS:
            raise ValueError(f"arch must be one of {sorted(TORCHVISION_ARCHS)}, got {arch!r}.")
        self.name = arch
        self.image_size = _check_image_size(image_size)
        models = _torchvision_models()
        net = getattr(models, arch)(weights=None)
        self.pretrained = bool(pretrained)
        self.weights_path: str | None = None
        if pretrained:
            path = Path(weights_path) if weights_path is not None else cached_weights_path(arch)
            if not path.is_file():
                raise FileNotFoundError(
                    f"no ImageNet weights for {arch}: {path} does not exist. h2q never downloads; "
                    f"copy torchvision's {_weights_file_name(models, arch)} there (it is where "
                    "torchvision caches its downloads), or pass weights_path=FILE "
                    "(--weights FILE on the command line)."
                )
            net.load_state_dict(_load_state_dict(path, arch))
            self.weights_path = str(path)
        elif weights_path is not None:
            raise ValueError("weights_path was given with pretrained=False; drop one of them.")
        self.features = net.features
        self.avgpool = net.avgpool
        self.classifier = _cut_at_fc7(net.classifier, arch)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, x: Tensor) -> Tensor:
        """uint8 pixels -> normalised float ``(n, 3, image_size, image_size)``."""
        x = to_channels_first(x, 3, self.mean.dtype)
        x = resize_shorter_side(x, round(256 * self.image_size / 224))
        x = center_crop(x, self.image_size) / 255.0
        return (x - self.mean) / self.std

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "image_size": self.image_size,
            "weights": _weights_identity(self.weights_path),
        }


def _cut_at_fc7(classifier: nn.Sequential, arch: str) -> nn.Sequential:
    layers = list(classifier)
    linear = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Linear)]
    if len(linear) < 2:
        raise ValueError(f"unexpected {arch} classifier {classifier}; expected fc6, fc7, fc8.")
    kept = layers[: linear[-1]]
    while kept and isinstance(kept[-1], nn.Dropout):
        kept.pop()
    return nn.Sequential(*kept)
