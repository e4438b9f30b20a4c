"""Adapter that makes any pytorch-metric-learning loss a stage-1 objective."""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ._common import HashingLoss

__all__ = ["MetricLearningLoss"]

_INSTALL_HINT = (
    "pytorch-metric-learning is needed for metric-learning losses; install it with "
    'pip install "h2q[metric-learning]".'
)


def _pml_losses() -> Any:
    """Import ``pytorch_metric_learning.losses`` on first use (an optional extra)."""
    try:
        from pytorch_metric_learning import losses
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return losses


def build_metric_learning_loss(
    name: str, n_bits: int | None = None, n_classes: int | None = None, **kwargs: Any
) -> nn.Module:
    """Instantiate ``pytorch_metric_learning.losses.<name>``.

    ``num_classes`` and ``embedding_size`` (proxy-based losses such as ``ProxyAnchorLoss``)
    are filled from ``n_classes`` and ``n_bits`` when the class takes them and they are not in
    ``kwargs``.
    """
    losses = _pml_losses()
    cls = getattr(losses, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise ValueError(
            f"pytorch_metric_learning.losses has no loss named {name!r}; use a class name such "
            "as 'ContrastiveLoss', 'MultiSimilarityLoss' or 'ProxyAnchorLoss'."
        )
    params = inspect.signature(cls.__init__).parameters
    if "num_classes" in params and "num_classes" not in kwargs:
        if n_classes is None:
            raise ValueError(f"{name} needs num_classes; pass n_classes.")
        kwargs["num_classes"] = n_classes
    if "embedding_size" in params and "embedding_size" not in kwargs:
        if n_bits is None:
            raise ValueError(f"{name} needs embedding_size; pass n_bits.")
        kwargs["embedding_size"] = n_bits
    return cls(**kwargs)


class MetricLearningLoss(HashingLoss):
    """Use a pytorch-metric-learning loss as a stage-1 similarity loss.

    H²Q's stage 2 only needs embeddings whose similarity is measured by inner products,
    cosines or Euclidean distances, so any metric-learning loss can train stage 1
    (``lambda = 0``, no tanh). The wrapped loss is a registered submodule: its own parameters
    (the proxies of ``ProxyAnchorLoss``, ``ProxyNCALoss``, ...) appear in ``parameters()`` and
    reach the optimiser, and move with ``.to(device)``.

    Labels: pytorch-metric-learning takes one class id per sample. Class ids ``(n,)`` pass
    through; multi-hot rows ``(n, C)`` with exactly one label each are turned into ids. Rows with
    several labels raise ``ValueError`` by default (``multi_hot="error"``): reducing them loses
    the "share at least one label" relevance of multi-label data, so use a pair loss (DPSH,
    DCH, HyP², ...) there. ``multi_hot="first"`` keeps each row's first (lowest-index) label and
    warns. Rows with no label always raise.

    Parameters
    ----------
    loss : nn.Module or str
        A pytorch-metric-learning loss instance, or the name of one in
        ``pytorch_metric_learning.losses`` (imported on first use; ``loss_kwargs`` go to its
        constructor, ``num_classes``/``embedding_size`` are filled from ``n_classes``/``n_bits``).
    n_bits : int, optional
        Width of the hash layer; other widths are rejected when given.
    n_classes : int, optional
        Number of classes, for proxy-based losses built by name.
    multi_hot : {"error", "first"}, default "error"
    **loss_kwargs
        Constructor arguments when ``loss`` is a name.

    Raises
    ------
    ImportError
        When ``loss`` is a name and pytorch-metric-learning is not installed
        (``pip install "h2q[metric-learning]"``).
    """

    has_penalty = False
    min_samples = 1

    def __init__(
        self,
        loss: nn.Module | str,
        *,
        n_bits: int | None = None,
        n_classes: int | None = None,
        multi_hot: Literal["error", "first"] = "error",
        **loss_kwargs: Any,
    ) -> None:
        super().__init__(n_bits)
        if multi_hot not in ("error", "first"):
            raise ValueError(f"multi_hot must be 'error' or 'first', got {multi_hot!r}.")
        if isinstance(loss, str):
            loss = build_metric_learning_loss(loss, n_bits, n_classes, **loss_kwargs)
        elif loss_kwargs:
            raise TypeError(
                f"constructor arguments {sorted(loss_kwargs)} were given for a loss instance; "
                "pass them when building the loss, or pass the loss by name."
            )
        if not isinstance(loss, nn.Module):
            raise TypeError(
                f"loss must be a pytorch-metric-learning loss (an nn.Module) or its name, got "
                f"{type(loss).__name__}."
            )
        self.loss = loss
        self.multi_hot = multi_hot

    def similarity(self, u: Tensor, labels: Tensor) -> Tensor:
        return self.loss(u, self._class_ids(labels))

    def _class_ids(self, labels: Tensor) -> Tensor:
        if labels.ndim == 1:
            if labels.is_floating_point() or labels.dtype == torch.bool:
                raise TypeError(f"class ids must be integers, got dtype {labels.dtype}.")
            return labels.long()
        present = labels != 0
        counts = present.sum(dim=1)
        if bool((counts == 0).any()):
            raise ValueError(
                f"{int((counts == 0).sum())} multi-hot row(s) have no label; a metric-learning "
                "loss needs one class per sample. Drop unlabelled samples."
            )
        if bool((counts > 1).any()):
            n_multi = int((counts > 1).sum())
            if self.multi_hot == "error":
                raise ValueError(
                    f"{n_multi} sample(s) have several labels, but pytorch-metric-learning "
                    "losses take one class id per sample. Use a pair loss that handles "
                    "multi-hot labels (e.g. DPSHLoss, DCHLoss, HyP2Loss), or pass "
                    "multi_hot='first' to keep each row's first label."
                )
            warnings.warn(
                f"{n_multi} multi-label sample(s) reduced to their first label for "
                f"{type(self.loss).__name__}; pairs that share only a later label now count "
                "as dissimilar.",
                UserWarning,
                stacklevel=3,
            )
        # Note: argmax returns the first maximal index, i.e. the lowest-index label.
        return present.to(torch.int32).argmax(dim=1).long()

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, multi_hot={self.multi_hot!r}"
