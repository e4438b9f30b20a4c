"""DHN: deep hashing network (Zhu, Long, Wang and Cao, AAAI 2016)."""

from __future__ import annotations

from torch import Tensor

from ._common import log_cosh
from .dpsh import DPSHLoss

__all__ = ["DHNLoss"]


class DHNLoss(DPSHLoss):
    r"""DHN: DPSH's pairwise likelihood with a smooth L1 (log-cosh) quantization penalty.

    H. Zhu, M. Long, J. Wang and Y. Cao, "Deep Hashing Network for Efficient Similarity
    Retrieval", AAAI 2016. The similarity term is the pairwise logistic likelihood of
    :class:`~h2q.losses.DPSHLoss` (as in the H²Q paper), the mean over pairs of
    :math:`\operatorname{softplus}(\theta_{ij}) - s_{ij}\,\theta_{ij}` with
    :math:`\theta_{ij} = \mathrm{scale}\cdot u_i^\top u_j`.

    DHN writes the likelihood with the plain inner product of the codes; pass ``scale=1.0``
    for that, the default 0.5 keeps DHN and DPSH on the same term.

    The quantization penalty is DHN's smooth surrogate of :math:`\| |u| - 1 \|_1`:

    .. math::

        Q = \operatorname{mean}_i \sum_k \log\cosh\big(|u_{ik}| - 1\big),

    computed stably as :math:`|x| + \operatorname{softplus}(-2|x|) - \log 2`. The H²Q paper's
    lambda grid: {1e-5, 1e-3, 0.1}.

    Parameters
    ----------
    n_bits, scale
        As in :class:`~h2q.losses.DPSHLoss` (``scale`` defaults to 0.5).
    """

    def _penalty(self, u: Tensor) -> Tensor:
        return log_cosh(u.abs() - 1.0).sum(dim=1).mean()
