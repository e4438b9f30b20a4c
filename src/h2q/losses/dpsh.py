"""DPSH: deep pairwise-supervised hashing (Li, Wang and Kang, IJCAI 2016)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ._common import PairwiseHashingLoss, masked_mean, sign_l2_penalty

__all__ = ["DPSHLoss"]


class DPSHLoss(PairwiseHashingLoss):
    r"""Pairwise negative log-likelihood of DPSH.

    W.-J. Li, S. Wang and W.-C. Kang, "Feature Learning based Deep Supervised Hashing with
    Pairwise Labels", IJCAI 2016 (arXiv:1511.03855). With
    :math:`\theta_{ij} = \mathrm{scale}\cdot u_i^\top u_j` (``scale = 1/2`` in the paper) and
    :math:`p(s_{ij}=1) = \sigma(\theta_{ij})`, the similarity term is

    .. math::

        L = \operatorname{mean}_{i \ne j}\,
            \big[\operatorname{softplus}(\theta_{ij}) - s_{ij}\,\theta_{ij}\big],

    where :math:`s_{ij} = 1` when samples i and j share a label. ``softplus`` keeps large
    :math:`|\theta|` finite.

    The quantization penalty (the relaxed :math:`\eta \sum_i \|b_i - u_i\|^2` with
    :math:`b_i = \operatorname{sign}(u_i)`) is :math:`\operatorname{mean}_i \|u_i -
    \operatorname{sign}(u_i)\|^2`; its weight lambda is chosen by
    :class:`~h2q.losses.HashingObjective` (the H²Q paper's grid: {1, 0.1, 0.01}).

    Parameters
    ----------
    n_bits : int, optional
        Width of the hash layer; other widths are rejected when given.
    scale : float, default 0.5
        Factor of the inner product in :math:`\theta`.
    """

    def __init__(self, n_bits: int | None = None, *, scale: float = 0.5) -> None:
        super().__init__(n_bits)
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale!r}.")
        self.scale = float(scale)

    def _pair_loss(self, u: Tensor, similar: Tensor, pairs: Tensor) -> Tensor:
        theta = self.scale * (u @ u.T)
        return masked_mean(F.softplus(theta) - similar.to(u.dtype) * theta, pairs)

    def _penalty(self, u: Tensor) -> Tensor:
        return sign_l2_penalty(u)

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, scale={self.scale}"
