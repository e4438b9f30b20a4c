"""DCH: deep Cauchy hashing (Cao, Long, Liu and Wang, CVPR 2018)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import (
    PairwiseHashingLoss,
    check_similar_fraction,
    class_balanced_mean,
    cosine_matrix,
    hamming_distance_from_cosine,
)

__all__ = ["DCHLoss"]


class DCHLoss(PairwiseHashingLoss):
    r"""Class-balanced Cauchy cross-entropy of DCH.

    Y. Cao, M. Long, B. Liu and J. Wang, "Deep Cauchy Hashing for Hamming Space Retrieval",
    CVPR 2018. With the Hamming-like distance of relaxed codes

    .. math::

        d_{ij} = \tfrac{k}{2}\,\big(1 - \cos(u_i, u_j)\big) \quad (k = \text{n\_bits})

    and the Cauchy probability :math:`p(s_{ij}=1) = \gamma / (\gamma + d_{ij})`, the
    cross-entropy of a pair is

    .. math::

        \ell_{ij} = s_{ij}\,\log\!\Big(1 + \frac{d_{ij}}{\gamma}\Big)
                  + (1 - s_{ij})\,\log\!\Big(1 + \frac{\gamma}{d_{ij} + \epsilon}\Big),

    (the paper's :math:`s\log(d/\gamma) + \log(1 + \gamma/d)`, rearranged) and the similarity
    term is :math:`L = \operatorname{mean}_{i \ne j} w_{ij}\,\ell_{ij}` with the class-balance
    weights :math:`w_{ij} = |P|/|P_1|` (similar pairs) and :math:`|P|/|P_0|` (dissimilar pairs),
    see :func:`~h2q.losses._common.class_balance_weights`. ``epsilon`` keeps a dissimilar pair
    of parallel outputs finite.

    The quantization penalty is DCH's Cauchy quantization loss

    .. math::

        Q = \operatorname{mean}_i \log\!\Big(1 + \frac{d(|u_i|, \mathbf 1)}{\gamma}\Big),
        \qquad d(|u|, \mathbf 1) = \tfrac{k}{2}\big(1 - \cos(|u|, \mathbf 1)\big).

    Parameters
    ----------
    n_bits : int, optional
        Width of the hash layer; other widths are rejected when given.
    gamma : float, default 10
        Scale of the Cauchy distribution (the H²Q paper's setting).
    similar_fraction : float in (0, 1), optional
        Fraction of similar pairs in the whole training set; when given the weights are
        ``1/p`` and ``1/(1-p)``, otherwise they are estimated on each batch.
    eps : float, default 1e-6
        Added to the distance inside the dissimilar term only.
    """

    def __init__(
        self,
        n_bits: int | None = None,
        *,
        gamma: float = 10.0,
        similar_fraction: float | None = None,
        eps: float = 1e-6,
    ) -> None:
        super().__init__(n_bits)
        if not gamma > 0:
            raise ValueError(f"gamma must be positive, got {gamma!r}.")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}.")
        self.gamma = float(gamma)
        self.similar_fraction = check_similar_fraction(similar_fraction)
        self.eps = float(eps)

    def _pair_loss(self, u: Tensor, similar: Tensor, pairs: Tensor) -> Tensor:
        d = hamming_distance_from_cosine(cosine_matrix(u), u.shape[1])
        s = similar.to(u.dtype)
        ell = s * torch.log1p(d / self.gamma) + (1.0 - s) * torch.log1p(self.gamma / (d + self.eps))
        return class_balanced_mean(similar, pairs, self.similar_fraction, ell)

    def _penalty(self, u: Tensor) -> Tensor:
        ones = torch.ones_like(u[:1])
        cos = cosine_matrix(u.abs(), ones).squeeze(1)
        return torch.log1p(hamming_distance_from_cosine(cos, u.shape[1]) / self.gamma).mean()

    def extra_repr(self) -> str:
        return (
            f"n_bits={self.n_bits}, gamma={self.gamma}, "
            f"similar_fraction={self.similar_fraction}, eps={self.eps}"
        )
