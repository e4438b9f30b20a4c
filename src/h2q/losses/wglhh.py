"""WGLHH: weighted Gaussian loss based Hamming hashing (Tu et al., ACM MM 2021)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._common import (
    PairwiseHashingLoss,
    check_similar_fraction,
    class_balanced_mean,
    cosine_matrix,
    hamming_distance_from_cosine,
    sign_l2_penalty,
)

__all__ = ["WGLHHLoss"]


class WGLHHLoss(PairwiseHashingLoss):
    r"""Weighted Gaussian loss of WGLHH.

    R.-C. Tu, X.-L. Mao, C. Kong, Z. Shao, Z.-L. Li, W. Wei and H. Huang, "Weighted Gaussian
    Loss based Hamming Hashing", ACM Multimedia 2021. Three parts, all on the Hamming-like
    distance :math:`d_{ij} = \tfrac{k}{2}(1 - c_{ij})`, :math:`c_{ij} = \cos(u_i, u_j)`:

    1. a Gaussian similarity :math:`p_{ij} = \exp(-\alpha\, d_{ij}^2)`, compared with the label
       :math:`s_{ij}\in\{0,1\}` by the (unnormalised) Jensen-Shannon-type divergence

       .. math::

           \ell_{ij} = p_{ij}\log\frac{2p_{ij}}{p_{ij} + s_{ij}}
                     + s_{ij}\log\frac{2s_{ij}}{s_{ij} + p_{ij}}
           = \begin{cases}
               (1 + p)\,\big(\log 2 - \log(1 + p)\big) - \alpha d^2 p, & s = 1,\\
               p\,\log 2, & s = 0,
             \end{cases}

       which is zero for a similar pair at distance 0 and pushes dissimilar pairs out of the
       Hamming ball (:math:`p \to 0`);
    2. the "badly-trained-pair attention" :math:`a_{ij} = \exp\big(|\tfrac{1 + c_{ij}}{2} -
       s_{ij}|\big) \in [1, e]`, larger for pairs whose cosine contradicts their label (kept in
       the graph, as in the authors' code);
    3. the quantization loss :math:`Q = \operatorname{mean}_i \|u_i - \operatorname{sign}(u_i)
       \|^2` (see :meth:`penalty`).

    The similarity term is :math:`L = \operatorname{mean}_{i \ne j} w_{ij}\, a_{ij}\,
    \ell_{ij}` with class-balance weights :math:`w_{ij}` (as in DCH/HashNet). Source of the
    formula: the paper's definitions as implemented in the authors' public release (divergence
    parameter :math:`\theta = 2`, the case written above). The release up-weights similar pairs
    by a per-dataset constant ``1 + kt * s`` instead of class balance; like the H²Q
    experiments, we use class-balance weights, which need no per-dataset tuning.

    Parameters
    ----------
    n_bits : int, optional
        Width of the hash layer; other widths are rejected when given.
    alpha : float, default 0.1
        Sharpness of the Gaussian (the H²Q paper's setting).
    similar_fraction : float in (0, 1), optional
        Fraction of similar pairs in the training set for the class-balance weights; estimated
        per batch when omitted.
    """

    def __init__(
        self,
        n_bits: int | None = None,
        *,
        alpha: float = 0.1,
        similar_fraction: float | None = None,
    ) -> None:
        super().__init__(n_bits)
        if not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha!r}.")
        self.alpha = float(alpha)
        self.similar_fraction = check_similar_fraction(similar_fraction)

    def _pair_loss(self, u: Tensor, similar: Tensor, pairs: Tensor) -> Tensor:
        cos = cosine_matrix(u)
        x = self.alpha * hamming_distance_from_cosine(cos, u.shape[1]).pow(2)
        p = torch.exp(-x)
        s = similar.to(u.dtype)
        log2 = math.log(2.0)
        # Note: p log p = -x p exactly, and log1p is accurate for p near 0.
        ell_similar = (1.0 + p) * (log2 - torch.log1p(p)) - x * p
        ell = s * ell_similar + (1.0 - s) * (log2 * p)
        attention = torch.exp((0.5 * (1.0 + cos) - s).abs())
        return class_balanced_mean(similar, pairs, self.similar_fraction, attention, ell)

    def _penalty(self, u: Tensor) -> Tensor:
        return sign_l2_penalty(u)

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, alpha={self.alpha}, similar_fraction={self.similar_fraction}"
