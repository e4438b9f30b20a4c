"""Shared math for the stage-1 similarity losses.

Everything two or more losses need lives here, once: input checks, the pair-similarity matrix
(through :func:`h2q.labels.share_label`, the field's "share at least one label" rule), the
off-diagonal pair mask, class-balance weights, masked means, cosine matrices, the
Hamming-like distance of relaxed codes, the sign-L2 quantization penalty, the code-table
margin used by CEL and HyP², and the :class:`HashingLoss` base class.

Conventions shared by every loss
--------------------------------
- Pairs are the ordered pairs ``(i, j)`` with ``i != j`` of one batch; a sample is never paired
  with itself (a self-pair is always "similar" and carries no information about the labels).
  Every pair term is symmetric, so this equals the mean over unordered pairs.
- Quantization penalties are summed over the bits of a sample and averaged over samples.
- Device and dtype follow the embeddings; labels are moved to the embeddings' device.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_embeddings_tensor, check_labels_tensor, check_positive_int
from ..labels import share_label

__all__ = [
    "HashingLoss",
    "PairwiseHashingLoss",
    "check_n_classes",
    "check_similar_fraction",
    "class_balance_weights",
    "class_balanced_mean",
    "code_table_margin",
    "cosine_matrix",
    "hamming_distance_from_cosine",
    "log_cosh",
    "masked_mean",
    "off_diagonal_mask",
    "pair_similarity",
    "sign_l2_penalty",
]


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def check_n_classes(n_classes: Any) -> int:
    """Return ``n_classes`` as an ``int`` >= 2 or raise ``ValueError``."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, Integral) or n_classes < 2:
        raise ValueError(
            f"n_classes must be an integer >= 2, got {n_classes!r}. Pass the number of classes "
            "of the training labels (the width of the multi-hot rows)."
        )
    return int(n_classes)


def check_similar_fraction(similar_fraction: float | None) -> float | None:
    """Validate the dataset-level fraction of similar pairs (``None`` = estimate per batch)."""
    if similar_fraction is None:
        return None
    p = float(similar_fraction)
    if not 0.0 < p < 1.0:
        raise ValueError(
            f"similar_fraction must lie strictly between 0 and 1, got {similar_fraction!r}. "
            "Pass the fraction of similar pairs in the training set, or None to estimate it "
            "on each batch."
        )
    return p


def pair_similarity(labels: Tensor) -> Tensor:
    """Boolean (n, n) matrix S: ``S[i, j]`` is True when samples i and j share a label.

    A thin wrapper over :func:`h2q.labels.share_label`, the one relevance rule of the project.
    """
    return share_label(labels, labels)


def off_diagonal_mask(n: int, device: torch.device | None = None) -> Tensor:
    """Boolean (n, n) matrix that is True off the diagonal: the pairs ``i != j``."""
    return ~torch.eye(n, dtype=torch.bool, device=device)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over the True entries of ``mask``; 0 (with a graph) when none is.

    ``values`` must be finite everywhere: a masked-out inf would still poison the gradient.
    """
    mask = mask.to(values.dtype)
    # Note: clamp the count so an empty selection gives 0 instead of 0/0 = nan.
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def class_balance_weights(
    similar: Tensor,
    pairs: Tensor,
    similar_fraction: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Class-balance weights of HashNet and DCH, zero outside ``pairs``.

    ``w_ij = |P| / |P1|`` for a similar pair and ``|P| / |P0|`` for a dissimilar one, where P
    are the pairs, P1 the similar ones and P0 the dissimilar ones. With ``similar_fraction = p``
    (measured once on the training set, as the papers define S over all training pairs) the
    weights are ``1 / p`` and ``1 / (1 - p)`` instead of the batch estimate. The mean of
    ``w_ij * l_ij`` over pairs is then ``mean_P1 l + mean_P0 l`` (batch estimate).

    Parameters
    ----------
    similar : bool tensor (n, n)
    pairs : bool tensor (n, n)
        The pairs that count (usually :func:`off_diagonal_mask`).
    similar_fraction : float in (0, 1) or None
    dtype : torch.dtype, default float32
        Dtype of the result (pass the embeddings' dtype).

    Returns
    -------
    tensor (n, n) of ``dtype`` on the device of ``similar``.
    """
    pos = (similar & pairs).to(dtype)
    neg = (~similar & pairs).to(dtype)
    if similar_fraction is None:
        n_pairs = pairs.sum().to(dtype)
        # Note: a class with no pair in the batch gets no term, so its weight is irrelevant;
        # clamp keeps it finite.
        w_pos = n_pairs / pos.sum().clamp_min(1.0)
        w_neg = n_pairs / neg.sum().clamp_min(1.0)
        return pos * w_pos + neg * w_neg
    return pos * (1.0 / similar_fraction) + neg * (1.0 / (1.0 - similar_fraction))


def class_balanced_mean(
    similar: Tensor, pairs: Tensor, similar_fraction: float | None, *terms: Tensor
) -> Tensor:
    """Mean over ``pairs`` of ``w * terms[0] * terms[1] * ...`` (multiplied left to right),
    ``w`` the :func:`class_balance_weights` in the dtype of ``terms[0]``: the similarity term
    of HashNet, DCH and WGLHH."""
    value = class_balance_weights(similar, pairs, similar_fraction, terms[0].dtype)
    for term in terms:
        value = value * term
    return masked_mean(value, pairs)


# --------------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------------


def cosine_matrix(a: Tensor, b: Tensor | None = None) -> Tensor:
    """Cosine similarities ``cos(a_i, b_j)``, shape (len(a), len(b)); ``b = a`` by default."""
    a_n = F.normalize(a, dim=1)
    b_n = a_n if b is None else F.normalize(b, dim=1)
    return a_n @ b_n.T


def hamming_distance_from_cosine(cos: Tensor, n_bits: int) -> Tensor:
    """Hamming-like distance of relaxed codes, ``d = (n_bits / 2) * (1 - cos)``.

    For codes in {-1, +1}^k this is exactly the Hamming distance (DCH, WGLHH).
    """
    # Note: rounding can push cos a hair above 1; clamp so that d >= 0.
    return 0.5 * n_bits * (1.0 - cos).clamp_min(0.0)


def sign_l2_penalty(u: Tensor) -> Tensor:
    """``mean_i ||u_i - sign(u_i)||^2`` (DPSH's and WGLHH's quantization loss; H²Q's "L2")."""
    return (u - torch.sign(u)).pow(2).sum(dim=1).mean()


# --------------------------------------------------------------------------------------------
# CEL / HyP² margin
# --------------------------------------------------------------------------------------------

# Best known minimum distance d of a binary linear [n, m] code, for m = 1, 2, ... (index m-1),
# from M. Grassl's tables of bounds on the minimum distance of linear codes (codetables.de),
# the table behind the HyP² threshold. Rows are the usual hash lengths.
_BEST_KNOWN_DISTANCE: dict[int, tuple[int, ...]] = {
    8: (8, 5, 4, 4, 2, 2, 2, 1),
    12: (12, 8, 6, 6, 4, 4, 4, 3, 2, 2, 2, 1),
    16: (16, 10, 8, 8, 8, 6, 6, 5, 4, 4, 4, 2),
    24: (24, 16, 13, 12, 12, 10, 10, 8, 8, 8, 8, 8),
    32: (32, 21, 18, 16, 16, 16, 14, 13, 12, 12, 12, 10),
    36: (36, 24, 20, 18, 17, 16, 16, 16, 14, 14, 12, 12),
    48: (48, 32, 27, 24, 24, 24, 22, 22, 20, 20, 18, 18),
    64: (64, 42, 36, 33, 32, 32, 32, 29, 28, 28, 26, 26),
    128: (128, 85, 72, 68, 64, 64, 64, 64, 60, 60, 58, 57),
}


def code_table_margin(n_bits: int, n_classes: int) -> float:
    """Cosine margin of CEL and HyP² for ``n_bits`` bits and ``n_classes`` classes.

    The rule (HyP², Xu et al. 2022, as used by H²Q): ``n_classes`` class codes need
    ``m = ceil(log2(n_classes))`` information bits; the best binary linear ``[n_bits, m]`` code
    has minimum Hamming distance ``d*`` (Grassl's tables), so the two closest of its codewords
    have cosine ``1 - 2 d* / n_bits``. Dissimilar items are only penalised above that cosine:
    ``n_classes`` binary codes of ``n_bits`` bits can keep every pairwise cosine below it, and
    no known code does better.

    Raises
    ------
    ValueError
        For bit lengths not in the built-in table or more than 4096 classes; pass an explicit
        ``margin=`` to the loss then.
    """
    n_bits = check_positive_int(n_bits, "n_bits")
    n_classes = check_n_classes(n_classes)
    m = (n_classes - 1).bit_length()  # = ceil(log2(n_classes)), exact in integers
    row = _BEST_KNOWN_DISTANCE.get(n_bits)
    if row is None or m > len(row):
        known = ", ".join(str(k) for k in sorted(_BEST_KNOWN_DISTANCE))
        raise ValueError(
            f"no code-table margin for n_bits={n_bits} and n_classes={n_classes} (a binary "
            f"linear [{n_bits}, {m}] code); the built-in table covers n_bits in {{{known}}} "
            "and up to 4096 classes. Pass margin= explicitly: 1 - 2 d / n_bits, with d the best "
            "known minimum distance of such a code (codetables.de)."
        )
    return 1.0 - 2.0 * row[m - 1] / n_bits


# --------------------------------------------------------------------------------------------
# base classes
# --------------------------------------------------------------------------------------------


class HashingLoss(nn.Module):
    """Base class of the stage-1 losses: ``forward(embeddings, labels) -> scalar``.

    Subclasses implement :meth:`similarity` (the similarity term on checked inputs) and, when
    ``has_penalty``, :meth:`_penalty` (the method's own quantization penalty). The hooks
    :meth:`activation`, :meth:`set_iteration` and :meth:`step` are used by
    :class:`h2q.losses.HashingObjective`.

    Parameters
    ----------
    n_bits : int, optional
        Width of the hash layer. When given, embeddings of another width are rejected.
    """

    #: whether the method defines its own quantization penalty
    has_penalty: bool = True
    #: whether the constructor needs ``n_classes`` (used by :func:`h2q.losses.make_loss`)
    needs_n_classes: bool = False
    #: smallest batch the similarity term is defined on
    min_samples: int = 2

    def __init__(self, n_bits: int | None = None) -> None:
        super().__init__()
        self.n_bits = None if n_bits is None else check_positive_int(n_bits, "n_bits")

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Similarity term of the loss.

        Parameters
        ----------
        embeddings : float tensor (n_samples, n_bits)
            Network outputs, used as given (no tanh here).
        labels : tensor (n_samples,) or (n_samples, n_classes)
            Class ids or multi-hot rows.

        Returns
        -------
        Scalar tensor, dtype and device of ``embeddings``.
        """
        u = check_embeddings_tensor(embeddings, n_bits=self.n_bits, min_samples=self.min_samples)
        y = check_labels_tensor(labels, u.shape[0], u.device)
        return self.similarity(u, y)

    def similarity(self, u: Tensor, labels: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Similarity term on validated inputs."""
        raise NotImplementedError

    def penalty(self, embeddings: Tensor) -> Tensor:
        """The method's quantization penalty (a scalar); zero when it has none."""
        u = check_embeddings_tensor(embeddings, n_bits=self.n_bits, min_samples=1)
        if not self.has_penalty:
            return u.new_zeros(())
        return self._penalty(u)

    def _penalty(self, u: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def activation(self, embeddings: Tensor) -> Tensor:
        """Output activation of the "+lambda" (penalty) strategy: ``tanh``."""
        return torch.tanh(embeddings)

    def set_iteration(self, iteration: int) -> None:
        """Tell the loss the current training iteration (a no-op unless it has a schedule)."""

    def step(self) -> None:
        """Advance the loss's schedule by one iteration (a no-op unless it has one)."""


class PairwiseHashingLoss(HashingLoss):
    """A loss made of one term per pair of samples: builds S and the pair mask once."""

    def similarity(self, u: Tensor, labels: Tensor) -> Tensor:
        similar = pair_similarity(labels)
        pairs = off_diagonal_mask(u.shape[0], device=u.device)
        return self._pair_loss(u, similar, pairs)

    def _pair_loss(
        self, u: Tensor, similar: Tensor, pairs: Tensor
    ) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def log_cosh(x: Tensor) -> Tensor:
    """Stable ``log(cosh(x)) = |x| + softplus(-2|x|) - log 2``."""
    a = x.abs()
    return a + F.softplus(-2.0 * a) - math.log(2.0)
