"""DSH: deep supervised hashing (Liu, Wang, Shan and Chen, CVPR 2016)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ._common import PairwiseHashingLoss, masked_mean

__all__ = ["DSHLoss"]


class DSHLoss(PairwiseHashingLoss):
    r"""Contrastive loss of DSH on squared Euclidean distances.

    H. Liu, R. Wang, S. Shan and X. Chen, "Deep Supervised Hashing for Fast Image Retrieval",
    CVPR 2016. With :math:`D_{ij} = \|u_i - u_j\|_2^2` and margin :math:`m` (``2k`` by
    default, k the number of bits):

    .. math::

        L = \operatorname{mean}_{i \ne j}\Big[\tfrac12\, s_{ij}\, D_{ij}
            + \tfrac12\,(1 - s_{ij})\,\max(0,\; m - D_{ij})\Big].

    The quantization penalty is DSH's regulariser
    :math:`Q = \operatorname{mean}_i \big\| |u_i| - \mathbf 1 \big\|_1` (the paper adds it for
    both members of each pair; averaging over samples instead only rescales its weight,
    ``alpha = 0.01`` in the paper). DSH is in the authors' code but in none of the H²Q tables.

    Parameters
    ----------
    n_bits : int, optional
        Width of the hash layer; other widths are rejected when given.
    margin : float, optional
        :math:`m`; default ``2 * k`` with k the width of the embeddings.
    """

    def __init__(self, n_bits: int | None = None, *, margin: float | None = None) -> None:
        super().__init__(n_bits)
        if margin is not None and not margin > 0:
            raise ValueError(f"margin must be positive, got {margin!r}.")
        self.margin = None if margin is None else float(margin)

    def _pair_loss(self, u: Tensor, similar: Tensor, pairs: Tensor) -> Tensor:
        margin = 2.0 * u.shape[1] if self.margin is None else self.margin
        sq = u.pow(2).sum(dim=1)
        # Note: the expanded form avoids cdist, whose gradient is nan at distance 0 (the
        # diagonal); clamp removes tiny negative values from cancellation.
        dist = (sq[:, None] + sq[None, :] - 2.0 * (u @ u.T)).clamp_min(0.0)
        s = similar.to(u.dtype)
        ell = 0.5 * s * dist + 0.5 * (1.0 - s) * F.relu(margin - dist)
        return masked_mean(ell, pairs)

    def _penalty(self, u: Tensor) -> Tensor:
        return (u.abs() - 1.0).abs().sum(dim=1).mean()

    def extra_repr(self) -> str:
        margin = self.margin if self.margin is not None else "2*n_bits"
        return f"n_bits={self.n_bits}, margin={margin}"
