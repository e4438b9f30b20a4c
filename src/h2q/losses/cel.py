"""CEL: cosine embedding loss with the code-table margin (as in the H²Q experiments)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .._validation import check_positive_int
from ._common import (
    PairwiseHashingLoss,
    code_table_margin,
    cosine_matrix,
    masked_mean,
    sign_l2_penalty,
)

__all__ = ["CELLoss"]


class CELLoss(PairwiseHashingLoss):
    r"""Cosine embedding loss over all pairs of a batch, with a margin read from a code table.

    PyTorch's ``CosineEmbeddingLoss`` applied to every pair, the "CEL" row of the H²Q paper
    (Schwengber et al., arXiv:2311.04207):

    .. math::

        \ell_{ij} = s_{ij}\,\big(1 - c_{ij}\big)
                  + (1 - s_{ij})\,\max\!\big(0,\; c_{ij} - \delta\big),
        \qquad c_{ij} = \cos(u_i, u_j),

    and :math:`L = \operatorname{mean}_{i \ne j} \ell_{ij}`. Similar pairs are pulled to the
    same direction; dissimilar pairs are only pushed apart while their cosine exceeds
    :math:`\delta`.

    Margin rule (HyP², Xu et al., ACM MM 2022, reused by H²Q): ``n_classes`` classes need
    :math:`m = \lceil \log_2 C \rceil` information bits; the best known binary linear
    :math:`[k, m]` code (Grassl, codetables.de) has minimum distance :math:`d^*`, so its two
    closest codewords have cosine :math:`\delta = 1 - 2 d^* / k`: ``C`` binary codes of ``k``
    bits can be placed with every pairwise cosine at most :math:`\delta`, and no known code does
    better, so dissimilar pairs are not pushed further apart than binary codes could follow.
    Examples: 16 bits and 10 classes give :math:`\delta = 0`; 64 bits and 10 classes give
    -1/32; 16 bits and 80 classes give 1/4; see
    :func:`~h2q.losses._common.code_table_margin`.

    CEL has no quantization penalty of its own; :meth:`penalty` is the sign-L2 penalty
    :math:`\operatorname{mean}_i \|u_i - \operatorname{sign}(u_i)\|^2` that the H²Q experiments
    add for the "+lambda" strategy (weight 0.01 there).

    Parameters
    ----------
    n_bits : int, optional
        Width of the hash layer; with ``n_classes`` it fixes the margin.
    n_classes : int, optional
        Number of classes (>= 2).
    margin : float, optional
        Explicit :math:`\delta` in [-1, 1); overrides the code table.
    """

    needs_n_classes = True

    def __init__(
        self,
        n_bits: int | None = None,
        n_classes: int | None = None,
        *,
        margin: float | None = None,
    ) -> None:
        super().__init__(n_bits)
        self.n_classes = n_classes
        if margin is None:
            if n_bits is None or n_classes is None:
                raise ValueError(
                    "CELLoss reads its margin from the code table and needs n_bits and "
                    f"n_classes (got n_bits={n_bits!r}, n_classes={n_classes!r}); pass both, "
                    "or pass margin= explicitly."
                )
            margin = code_table_margin(check_positive_int(n_bits, "n_bits"), n_classes)
        if not -1.0 <= margin < 1.0:
            raise ValueError(f"margin must be a cosine in [-1, 1), got {margin!r}.")
        self.margin = float(margin)

    def _pair_loss(self, u: Tensor, similar: Tensor, pairs: Tensor) -> Tensor:
        cos = cosine_matrix(u)
        s = similar.to(u.dtype)
        ell = s * (1.0 - cos) + (1.0 - s) * F.relu(cos - self.margin)
        return masked_mean(ell, pairs)

    def _penalty(self, u: Tensor) -> Tensor:
        return sign_l2_penalty(u)

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, n_classes={self.n_classes}, margin={self.margin:.6g}"
