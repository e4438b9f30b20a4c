"""Stage-1 networks: backbones and the hash layer on top of them.

:class:`HashingModel` = backbone -> ``nn.Linear(feature_dim, n_bits)`` (weights N(0, 0.01^2),
bias 0). Backbones (:func:`build_backbone` by name):

- ``"efficientnet-lite0"``: :class:`EfficientNetLite0`, ImageNet weights shipped with the
  ``efficientnet`` extra, 1280-d pooled features, input side 64 by default (CPU);
- ``"alexnet"`` / ``"vgg16"``: :class:`TorchvisionFC7`, the paper's backbones cut at fc7
  (4096-d), needing the ``vision`` extra and weights already on disk;
- ``"small-cnn"``: :class:`SmallCNN`, two convolutions for 28x28 grey images, from scratch;
- ``"mlp"``: :class:`MLPBackbone`, fully connected layers over pixels or cached features.

Nothing is imported from the optional packages until such a backbone is built.
"""

from .backbones import Backbone, EfficientNetLite0, MLPBackbone, SmallCNN
from .hashing_model import HashingModel, init_hash_layer
from .registry import BACKBONES, DEFAULT_IMAGE_SIZE, PRETRAINED_BACKBONES, build_backbone
from .torchvision_backbones import TORCHVISION_ARCHS, TorchvisionFC7

__all__ = [
    "BACKBONES",
    "DEFAULT_IMAGE_SIZE",
    "PRETRAINED_BACKBONES",
    "TORCHVISION_ARCHS",
    "Backbone",
    "EfficientNetLite0",
    "HashingModel",
    "MLPBackbone",
    "SmallCNN",
    "TorchvisionFC7",
    "build_backbone",
    "init_hash_layer",
]
