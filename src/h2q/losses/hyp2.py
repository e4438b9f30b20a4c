"""HyP²: hybrid proxy-pair loss (Xu, Chai, Xu, Yuan, Fan and Wang, ACM MM 2022)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_positive_int
from ..labels import to_multi_hot
from ._common import (
    HashingLoss,
    check_n_classes,
    code_table_margin,
    cosine_matrix,
    masked_mean,
    off_diagonal_mask,
    pair_similarity,
    sign_l2_penalty,
)

__all__ = ["HyP2Loss"]


class HyP2Loss(HashingLoss):
    r"""HyP² loss: learnable class proxies plus a pair loss on irrelevant pairs.

    C. Xu, Z. Chai, Z. Xu, C. Yuan, Y. Fan and J. Wang, "HyP² Loss: Beyond Hypersphere Metric
    Space for Multi-label Image Retrieval", ACM Multimedia 2022 (arXiv:2208.06866). With one
    learnable proxy :math:`p_c \in \mathbb R^k` per class (``self.proxies``, an
    ``nn.Parameter`` of shape (n_classes, n_bits)), multi-hot labels :math:`y_{ic}` (class ids
    are one-hot encoded), the cosine margin :math:`\delta` and pair weight :math:`\beta`:

    .. math::

        L = \underbrace{\operatorname{mean}_{y_{ic}=1}\big(1 - \cos(u_i, p_c)\big)
            + \operatorname{mean}_{y_{ic}=0}\max\big(0, \cos(u_i, p_c) - \delta\big)}_{
              \text{proxy loss}}
          + \beta\,\underbrace{\operatorname{mean}_{i \ne j,\, s_{ij}=0}
              \max\big(0, \cos(u_i, u_j) - \delta\big)}_{\text{pair loss}},

    each mean taken over the (sample, class) entries or sample pairs it names (0 when there
    are none). The proxy loss pulls each sample to its classes' proxies and keeps it out of the
    other classes' caps; the pair loss separates samples that share no label, which proxies
    alone cannot express for multi-label data.

    Settings: :math:`\delta` is the code-table margin of
    :func:`~h2q.losses._common.code_table_margin` (``1 - 2 d*/k``, d* the best known minimum
    distance of a binary linear ``[n_bits, ceil(log2 n_classes)]`` code), exactly the HyP²
    threshold; :math:`\beta` = 1.25, or 0.75 on NUS-WIDE (the H²Q paper). Proxies start from a
    Kaiming-normal draw (``std = sqrt(2 / n_classes)``) seeded by ``random_state``.

    Differences from the authors' releases, on purpose: the pair loss runs over every
    dissimilar pair of the batch (the HyP² release restricts it to samples with two or more
    labels, which would switch it off on single-label CIFAR-10 and ImageNet, where H²Q uses it),
    and the proxies are used as they are (the H²Q code passes them through tanh; cosines do not
    need it).

    HyP² has no quantization penalty of its own; :meth:`penalty` is the sign-L2 penalty
    :math:`\operatorname{mean}_i \|u_i - \operatorname{sign}(u_i)\|^2` used for the "+lambda"
    strategy in the H²Q experiments (weight 0.01 there).

    Parameters
    ----------
    n_bits : int
        Width of the hash layer (the proxies' width).
    n_classes : int
        Number of classes (>= 2).
    pair_weight : float, default 1.25
        :math:`\beta`; 0.75 for NUS-WIDE.
    margin : float, optional
        Explicit :math:`\delta` in [-1, 1); overrides the code table.
    random_state : int, optional
        Seed of the proxies' initialisation; ``None`` draws from torch's global generator.
    """

    needs_n_classes = True
    min_samples = 1

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        *,
        pair_weight: float = 1.25,
        margin: float | None = None,
        random_state: int | None = None,
    ) -> None:
        super().__init__(check_positive_int(n_bits, "n_bits"))
        self.n_classes = check_n_classes(n_classes)
        if not pair_weight >= 0:
            raise ValueError(f"pair_weight must be non-negative, got {pair_weight!r}.")
        if margin is None:
            margin = code_table_margin(n_bits, n_classes)
        if not -1.0 <= margin < 1.0:
            raise ValueError(f"margin must be a cosine in [-1, 1), got {margin!r}.")
        self.pair_weight = float(pair_weight)
        self.margin = float(margin)
        generator = None
        if random_state is not None:
            generator = torch.Generator().manual_seed(int(random_state))
        init = torch.randn(self.n_classes, self.n_bits, generator=generator)
        self.proxies = nn.Parameter(init * math.sqrt(2.0 / self.n_classes))

    def similarity(self, u: Tensor, labels: Tensor) -> Tensor:
        y = self._multi_hot(labels).to(u.dtype)
        proxies = self.proxies.to(dtype=u.dtype)
        cos_proxy = cosine_matrix(u, proxies)
        positive = y > 0
        proxy_loss = masked_mean(1.0 - cos_proxy, positive) + masked_mean(
            F.relu(cos_proxy - self.margin), ~positive
        )
        dissimilar = ~pair_similarity(labels) & off_diagonal_mask(u.shape[0], device=u.device)
        pair_loss = masked_mean(F.relu(cosine_matrix(u) - self.margin), dissimilar)
        return proxy_loss + self.pair_weight * pair_loss

    def _multi_hot(self, labels: Tensor) -> Tensor:
        if labels.ndim == 2:
            if labels.shape[1] != self.n_classes:
                raise ValueError(
                    f"multi-hot labels have {labels.shape[1]} classes, but this loss has "
                    f"n_classes={self.n_classes} proxies. Build the loss with the label width."
                )
            return labels
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise TypeError(f"class ids must be integers, got dtype {labels.dtype}.")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.n_classes):
            raise ValueError(
                f"class ids must lie in [0, {self.n_classes}), got values in "
                f"[{int(labels.min())}, {int(labels.max())}]. Build the loss with the number of "
                "classes of the dataset."
            )
        return to_multi_hot(labels, self.n_classes)

    def _penalty(self, u: Tensor) -> Tensor:
        return sign_l2_penalty(u)

    def extra_repr(self) -> str:
        return (
            f"n_bits={self.n_bits}, n_classes={self.n_classes}, "
            f"pair_weight={self.pair_weight}, margin={self.margin:.6g}"
        )
