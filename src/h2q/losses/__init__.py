"""Stage-1 similarity losses and the quantization strategies around them.

Every loss is a small ``nn.Module`` called as ``loss(embeddings, labels) -> scalar``, with
embeddings the raw outputs of the hash layer ``(n_samples, n_bits)`` and labels class ids
``(n_samples,)`` or multi-hot rows ``(n_samples, n_classes)``; two samples are similar when
they share a label (:func:`h2q.labels.share_label`). Each method's quantization penalty is a
separate method, ``loss.penalty(u)``; :class:`HashingObjective` combines them according to the
H²Q paper's strategies (:data:`STRATEGIES`: lambda = 0, the method's penalty, HSWD).

Build a loss by name with :func:`make_loss`; :data:`LOSSES` lists the names.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .cel import CELLoss
from .dch import DCHLoss
from .dhn import DHNLoss
from .dpsh import DPSHLoss
from .dsh import DSHLoss
from .hashnet import HashNetLoss
from .hswd import HSWDPenalty
from .hyp2 import HyP2Loss
from .metric_learning import MetricLearningLoss
from .objective import HSWD, HSWD_WEIGHT, LAMBDA0, PENALTY, STRATEGIES, HashingObjective
from .wglhh import WGLHHLoss

__all__ = [
    "HSWD",
    "HSWD_WEIGHT",
    "LAMBDA0",
    "LOSSES",
    "PENALTY",
    "STRATEGIES",
    "CELLoss",
    "DCHLoss",
    "DHNLoss",
    "DPSHLoss",
    "DSHLoss",
    "HSWDPenalty",
    "HashNetLoss",
    "HashingObjective",
    "HyP2Loss",
    "MetricLearningLoss",
    "WGLHHLoss",
    "canonical_loss_name",
    "make_loss",
]

#: The stage-1 losses by name (lower case), as used by :func:`make_loss`.
LOSSES: dict[str, type[nn.Module]] = {
    "dpsh": DPSHLoss,
    "dhn": DHNLoss,
    "dch": DCHLoss,
    "wglhh": WGLHHLoss,
    "hashnet": HashNetLoss,
    "cel": CELLoss,
    "hyp2": HyP2Loss,
    "dsh": DSHLoss,
}

_PML_PREFIX = "pml:"


def canonical_loss_name(name: str) -> str:
    """The registry spelling of a stage-1 loss name: a key of :data:`LOSSES` (lower case) or
    ``"pml:<ClassName>"``; raise ``ValueError`` naming the choices for anything else."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}.")
    key = name.strip()
    if key.lower() in LOSSES:
        return key.lower()
    if key.lower().startswith(_PML_PREFIX) and len(key) > len(_PML_PREFIX):
        return _PML_PREFIX + key[len(_PML_PREFIX) :]
    known = ", ".join(sorted(LOSSES))
    raise ValueError(
        f"unknown loss {name!r}; choose one of {known}, or 'pml:<ClassName>' for a "
        "pytorch-metric-learning loss."
    )


def make_loss(name: str, n_bits: int, n_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """Build a stage-1 loss by name.

    Parameters
    ----------
    name : str
        A key of :data:`LOSSES` (case-insensitive: ``"dpsh"``, ``"dhn"``, ``"dch"``,
        ``"wglhh"``, ``"hashnet"``, ``"cel"``, ``"hyp2"``, ``"dsh"``), or
        ``"pml:<ClassName>"`` for a pytorch-metric-learning loss wrapped in
        :class:`MetricLearningLoss` (e.g. ``"pml:ProxyAnchorLoss"``).
    n_bits : int
        Width of the hash layer.
    n_classes : int, optional
        Number of classes; required by CEL, HyP² and proxy-based metric-learning losses,
        ignored by the others.
    **kwargs
        Hyperparameters of the loss (e.g. ``pair_weight=0.75`` for HyP² on NUS-WIDE).

    Returns
    -------
    nn.Module
        ``loss(embeddings, labels) -> scalar``; wrap it in :class:`HashingObjective` to choose
        a quantization strategy.
    """
    key = canonical_loss_name(name)
    if key.startswith(_PML_PREFIX):
        return MetricLearningLoss(
            key[len(_PML_PREFIX) :], n_bits=n_bits, n_classes=n_classes, **kwargs
        )
    cls = LOSSES[key]
    if getattr(cls, "needs_n_classes", False):
        if n_classes is None:
            raise ValueError(f"loss {name!r} needs n_classes (the number of label classes).")
        return cls(n_bits, n_classes, **kwargs)
    return cls(n_bits, **kwargs)
