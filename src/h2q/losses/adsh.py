r"""ADSH: asymmetric deep supervised hashing (Jiang and Li, AAAI 2018): loss and code update.

Q.-Y. Jiang and W.-J. Li, "Asymmetric Deep Supervised Hashing", AAAI 2018. ADSH learns the
database codes :math:`V \in \{-1, +1\}^{n \times c}` directly and trains only a query network
:math:`F`. With :math:`u_i = \tanh(F(x_i))` for sampled query points :math:`i \in \Omega` (which
are database points too, at positions ``query_index``) and pair labels
:math:`S_{ij} = +1` when items i and j share a label, else :math:`-1`, the objective is

.. math::

    J(F, V) = \sum_{i \in \Omega} \sum_{j=1}^{n} (u_i^\top v_j - c\,S_{ij})^2
              + \gamma \sum_{i \in \Omega} \lVert v_i - u_i \rVert^2 .

The paper's labels are :math:`S_{ij} \in \{-1, +1\}`. With C balanced classes the dissimilar
pairs then outnumber the similar ones C - 1 to 1 and the objective is lowest when most bits
take one value for every item (the codes collapse); ``adsh_similarity(..., balance=True)``
gives dissimilar pairs :math:`-r` instead, r = similar / dissimilar pairs, as the authors'
implementation does, which the training schedule uses.

Training alternates network epochs on :func:`adsh_loss` (``V`` fixed) with the closed-form
bit-by-bit update of ``V`` (:func:`update_codes`, ``F`` fixed). This module holds the two
mathematical pieces; the training schedule (outer iterations over sampled query points, SGD
with step decay) is :func:`h2q.training.adsh.train_adsh`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..labels import share_label

__all__ = ["ADSH_GAMMA", "adsh_loss", "adsh_similarity", "update_codes"]

#: The weight of the quantization term, gamma = 200 (the authors' setting).
ADSH_GAMMA = 200.0


def adsh_similarity(query_labels: Tensor, db_labels: Tensor, *, balance: bool = False) -> Tensor:
    """Pair labels ``(n_queries, n_db)``: +1 where the items share a label, else -1 (or -r).

    Parameters
    ----------
    query_labels, db_labels : Tensor
        Class ids ``(n,)`` or multi-hot rows ``(n, n_classes)`` (both the same kind).
    balance : bool, default False
        Give dissimilar pairs ``-r`` instead of -1, with ``r`` = (number of similar pairs) /
        (number of dissimilar pairs) in this matrix, so that both kinds weigh the same in
        total (the authors' implementation does this). With -1 and C balanced classes the
        dissimilar pairs outweigh the similar ones C - 1 to 1, and the objective is lowest
        when most bits take one value for every item: the codes collapse.

    Returns
    -------
    Tensor of float32, shape (n_queries, n_db)
    """
    same = share_label(query_labels, db_labels).float()
    if not balance:
        return same * 2.0 - 1.0
    n_same = float(same.sum())
    n_diff = same.numel() - n_same
    r = n_same / n_diff if n_diff > 0 else 1.0
    return same * (1.0 + r) - r


def _check(u: Tensor, codes: Tensor, similarity: Tensor, query_index: Tensor) -> None:
    if u.ndim != 2 or codes.ndim != 2 or u.shape[1] != codes.shape[1]:
        raise ValueError(
            f"u {tuple(u.shape)} and codes {tuple(codes.shape)} must be 2-D with the same "
            "number of bits."
        )
    if tuple(similarity.shape) != (len(u), len(codes)):
        raise ValueError(
            f"similarity has shape {tuple(similarity.shape)}; it needs one row per query "
            f"and one column per database item: {(len(u), len(codes))}."
        )
    if tuple(query_index.shape) != (len(u),):
        raise ValueError(
            f"query_index has shape {tuple(query_index.shape)}; it needs one database "
            f"position per query: ({len(u)},)."
        )


def adsh_loss(
    u: Tensor,
    codes: Tensor,
    similarity: Tensor,
    query_index: Tensor,
    gamma: float = ADSH_GAMMA,
) -> Tensor:
    r"""The ADSH objective :math:`J` for a batch of sampled query points (a sum, as in the paper).

    Parameters
    ----------
    u : Tensor, shape (m, c)
        ``tanh`` of the query network's outputs for the batch.
    codes : Tensor, shape (n, c)
        Database codes in {-1, +1} (fixed: no gradient flows into them).
    similarity : Tensor, shape (m, n)
        Pair labels in {-1, +1} (:func:`adsh_similarity`).
    query_index : Tensor of int64, shape (m,)
        Database position of each query point (its own code is ``codes[query_index]``).
    gamma : float, default 200

    Returns
    -------
    Tensor
        Scalar :math:`\sum_{ij} (u_i^\top v_j - c S_{ij})^2 + \gamma \sum_i \lVert v_{q(i)} -
        u_i \rVert^2`.
    """
    _check(u, codes, similarity, query_index)
    codes = codes.detach().to(u.dtype)
    n_bits = u.shape[1]
    pair = (u @ codes.T - n_bits * similarity.to(u.dtype)).square().sum()
    own = (codes[query_index] - u).square().sum()
    return pair + gamma * own


def update_codes(
    codes: Tensor,
    u: Tensor,
    similarity: Tensor,
    query_index: Tensor,
    gamma: float = ADSH_GAMMA,
) -> Tensor:
    r"""Discrete update of the database codes: each bit column in turn set to its minimiser.

    With the query outputs fixed, :math:`J(V) = \lVert V U^\top \rVert_F^2 - 2\,
    \mathrm{tr}(V Q^\top) + \text{const}` where :math:`Q = c\,S^\top U + \gamma \bar U` and
    :math:`\bar U` holds :math:`u_i` in row ``query_index[i]`` and zeros elsewhere. Keeping every
    column but k fixed, the terms in :math:`V_{*k}` are :math:`2 V_{*k}^\top (\hat V_k \hat U_k^\top
    U_{*k} - Q_{*k})` (hats: the matrices without column k), minimised by
    :math:`V_{*k} = -\mathrm{sign}(\hat V_k \hat U_k^\top U_{*k} - Q_{*k})`; an entry whose
    argument is exactly 0 keeps its value. Each column step minimises J exactly over that
    column, so J never increases.

    Parameters
    ----------
    codes : Tensor, shape (n, c)
        Current database codes in {-1, +1}.
    u, similarity, query_index, gamma
        As in :func:`adsh_loss` (``query_index`` must not repeat a position).

    Returns
    -------
    Tensor, shape (n, c)
        New codes in {-1, +1}, dtype of ``codes``.
    """
    _check(u, codes, similarity, query_index)
    if len(torch.unique(query_index)) != len(query_index):
        raise ValueError("query_index repeats a database position; sample query points once.")
    with torch.no_grad():
        dtype = torch.float64
        U = u.detach().to(dtype)
        V = codes.detach().to(dtype).clone()
        n_bits = U.shape[1]
        Q = n_bits * similarity.to(dtype).T @ U
        Q[query_index] += gamma * U
        G = U.T @ U  # (c, c)
        for k in range(n_bits):
            arg = V @ G[:, k] - V[:, k] * G[k, k] - Q[:, k]
            V[:, k] = torch.where(arg == 0, V[:, k], -torch.sign(arg))
    return V.to(codes.dtype)
