"""``HashingModel``: a backbone followed by a linear hash layer of ``n_bits`` outputs."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .._validation import check_positive_int

__all__ = ["HashingModel", "init_hash_layer"]


def init_hash_layer(layer: nn.Linear, std: float = 0.01) -> None:
    """Initialise a hash layer as in the paper: weights N(0, std^2), bias 0."""
    with torch.no_grad():
        layer.weight.normal_(0.0, std)
        if layer.bias is not None:
            layer.bias.zero_()


class HashingModel(nn.Module):
    """Backbone -> ``nn.Linear(feature_dim, n_bits)``: the stage-1 embedding network f.

    The output is the raw, real-valued ``u = f(x)`` of width ``n_bits`` (no tanh: the
    quantization strategy of :class:`h2q.losses.HashingObjective` decides what happens to it).
    The hash layer starts with weights drawn from N(0, 0.01^2) and zero bias, as in the paper;
    its draw comes from torch's global generator, so seed it (or build the model inside
    ``torch.random.fork_rng``) for a reproducible start.

    Parameters
    ----------
    backbone : Backbone
        Any :mod:`h2q.models` backbone (or an ``nn.Module`` with ``feature_dim`` and
        ``preprocess``).
    n_bits : int
        Number of outputs (bits of the codes).
    init_std : float, default 0.01
        Standard deviation of the hash layer's initial weights.

    Attributes
    ----------
    backbone : nn.Module
    hash_layer : nn.Linear
    n_bits : int
    """

    def __init__(self, backbone: nn.Module, n_bits: int, init_std: float = 0.01) -> None:
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone must be an nn.Module, got {type(backbone).__name__}.")
        feature_dim = getattr(backbone, "feature_dim", None)
        if not isinstance(feature_dim, int) or feature_dim < 1:
            raise ValueError(
                f"backbone {type(backbone).__name__} has no positive integer feature_dim "
                f"(got {feature_dim!r}); set it to the width of its output features."
            )
        n_bits = check_positive_int(n_bits, "n_bits")
        if not init_std > 0:
            raise ValueError(f"init_std must be positive, got {init_std!r}.")
        self.backbone = backbone
        self.n_bits = n_bits
        self.hash_layer = nn.Linear(feature_dim, n_bits)
        init_hash_layer(self.hash_layer, init_std)

    @property
    def feature_dim(self) -> int:
        """Width of the backbone's features (the hash layer's input)."""
        return self.hash_layer.in_features

    def preprocess(self, x: Tensor) -> Tensor:
        """Raw items -> the backbone's input (see the backbone's ``preprocess``)."""
        preprocess = getattr(self.backbone, "preprocess", None)
        return x if preprocess is None else preprocess(x)

    def forward(self, x: Tensor) -> Tensor:
        """Raw hash-layer outputs ``u`` of shape (n_samples, n_bits) for preprocessed ``x``."""
        return self.hash_layer(self.backbone(x))

    def backbone_is_pretrained(self) -> bool:
        """Whether the backbone's weights come from pretraining (lower learning rate)."""
        return bool(getattr(self.backbone, "pretrained", False))

    def config(self) -> dict[str, Any]:
        """JSON-serialisable description (backbone settings and ``n_bits``)."""
        config = getattr(self.backbone, "config", None)
        backbone = config() if callable(config) else {"name": type(self.backbone).__name__}
        return {"backbone": backbone, "n_bits": self.n_bits}

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}"
