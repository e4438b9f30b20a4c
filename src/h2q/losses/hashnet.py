"""HashNet: deep learning to hash by continuation (Cao, Long, Wang and Yu, ICCV 2017)."""

from __future__ import annotations

from numbers import Integral
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_positive_int
from ._common import PairwiseHashingLoss, check_similar_fraction, class_balanced_mean

__all__ = ["HashNetLoss"]


class HashNetLoss(PairwiseHashingLoss):
    r"""Weighted pairwise logistic loss of HashNet, with its tanh continuation.

    Z. Cao, M. Long, J. Wang and P. S. Yu, "HashNet: Deep Learning to Hash by Continuation",
    ICCV 2017. With the adaptive sigmoid :math:`\sigma(\alpha\, u_i^\top u_j)`:

    .. math::

        L = \operatorname{mean}_{i \ne j}\, w_{ij}\,
            \big[\operatorname{softplus}(\theta_{ij}) - s_{ij}\,\theta_{ij}\big],
        \qquad \theta_{ij} = \alpha\, u_i^\top u_j,

    with class-balance weights :math:`w_{ij} = |P|/|P_1|` for similar and :math:`|P|/|P_0|`
    for dissimilar pairs. HashNet's multi-label similarity weight :math:`c_{ij}` is not used:
    pairs are similar or not by :func:`h2q.labels.share_label`, as in the H²Q experiments.

    HashNet has no quantization penalty; its quantization strategy is the continuation
    :math:`h = \tanh(\beta u)` with :math:`\beta = (1 + \lfloor t / T\rfloor)^{q}`,
    ``T = continuation_step = 200`` iterations and ``q = continuation_power = 0.5``
    (:math:`\beta = \sqrt{1 + t \,//\, 200}`). :meth:`activation` applies it; the training loop
    advances ``t`` with :meth:`step` (once per optimiser step) or :meth:`set_iteration`.
    With the ``lambda0`` strategy of :class:`~h2q.losses.HashingObjective` the loss sees the raw
    outputs and the schedule is unused. The iteration is saved in the ``state_dict``.

    Parameters
    ----------
    n_bits : int, optional
        Width of the hash layer; needed for the default ``alpha = 10 / n_bits`` unless
        ``alpha`` is given.
    alpha : float, optional
        Scale of the inner product; default ``10 / n_bits`` (HashNet's released setting),
        or ``10 / k`` from the batch's width when ``n_bits`` is not given.
    similar_fraction : float in (0, 1), optional
        Fraction of similar pairs in the training set for the weights; estimated per batch
        when omitted.
    continuation_step, continuation_power : int, float
        Schedule of :math:`\beta`.
    """

    has_penalty = False

    def __init__(
        self,
        n_bits: int | None = None,
        *,
        alpha: float | None = None,
        similar_fraction: float | None = None,
        continuation_step: int = 200,
        continuation_power: float = 0.5,
    ) -> None:
        super().__init__(n_bits)
        if alpha is not None and not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha!r}.")
        check_positive_int(continuation_step, "continuation_step")
        self.alpha = None if alpha is None else float(alpha)
        self.similar_fraction = check_similar_fraction(similar_fraction)
        self.continuation_step = int(continuation_step)
        self.continuation_power = float(continuation_power)
        self.iteration = 0

    # -- continuation -------------------------------------------------------------------------

    @property
    def beta(self) -> float:
        """Current continuation scale ``(1 + iteration // continuation_step) ** power``."""
        return (1 + self.iteration // self.continuation_step) ** self.continuation_power

    def set_iteration(self, iteration: int) -> None:
        """Set the training iteration ``t`` that drives ``beta``."""
        if isinstance(iteration, bool) or not isinstance(iteration, Integral) or iteration < 0:
            raise ValueError(f"iteration must be a non-negative int, got {iteration!r}.")
        self.iteration = int(iteration)

    def step(self) -> None:
        """Advance the continuation by one iteration."""
        self.iteration += 1

    def activation(self, embeddings: Tensor) -> Tensor:
        """Continuation output ``tanh(beta * u)``."""
        return torch.tanh(self.beta * embeddings)

    def get_extra_state(self) -> dict[str, Any]:
        return {"iteration": self.iteration}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.iteration = int(state["iteration"])

    # -- loss ---------------------------------------------------------------------------------

    def _pair_loss(self, u: Tensor, similar: Tensor, pairs: Tensor) -> Tensor:
        alpha = 10.0 / u.shape[1] if self.alpha is None else self.alpha
        theta = alpha * (u @ u.T)
        ell = F.softplus(theta) - similar.to(u.dtype) * theta
        return class_balanced_mean(similar, pairs, self.similar_fraction, ell)

    def extra_repr(self) -> str:
        alpha = self.alpha if self.alpha is not None else "10/n_bits"
        return (
            f"n_bits={self.n_bits}, alpha={alpha}, similar_fraction={self.similar_fraction}, "
            f"beta={self.beta:.4g} (iteration {self.iteration})"
        )
