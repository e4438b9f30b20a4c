"""Exact float nearest neighbours, computed in blocks (the reference that recall is measured by).

The score is the inner product (``metric="ip"``, larger first) or the squared Euclidean distance
(``metric="l2"``, smaller first); equal scores go by smaller id, as everywhere in
:mod:`h2q.search`. Queries and database are processed in blocks, so memory stays about
``query_block * db_block`` scores whatever the sizes (10^5 queries x 10^6 items fit easily).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_embeddings, check_positive_int
from .rescore import Metric

__all__ = ["exact_neighbors"]


def exact_neighbors(
    query_vectors: Any,
    database_vectors: Any,
    k: int,
    *,
    metric: Metric = "ip",
    query_block: int = 1024,
    db_block: int = 65536,
) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``k`` best database vectors of each query.

    Parameters
    ----------
    query_vectors : numpy.ndarray of shape (n_queries, d), float
    database_vectors : numpy.ndarray of shape (n_db, d), float
    k : int
        Neighbours per query, ``1 <= k <= n_db``.
    metric : {"ip", "l2"}, default "ip"
    query_block, db_block : int
        Block sizes; memory is about ``query_block * (db_block + 2 * k)`` scores.

    Returns
    -------
    S : numpy.ndarray of shape (n_queries, k)
        Scores in ranking order (inner products, or squared distances for ``"l2"``).
    I : numpy.ndarray of shape (n_queries, k), dtype int64
        Database ids in ranking order.
    """
    if metric not in ("ip", "l2"):
        raise ValueError(f"metric must be 'ip' or 'l2', got {metric!r}.")
    Q = check_embeddings(query_vectors, "query_vectors", allow_torch=False)
    X = check_embeddings(database_vectors, "database_vectors", allow_torch=False)
    if Q.shape[1] != X.shape[1]:
        raise ValueError(
            f"query_vectors has {Q.shape[1]} dimensions but database_vectors has {X.shape[1]}; "
            "pass vectors of the same embedding model."
        )
    k = check_positive_int(k, "k")
    if k > len(X):
        raise ValueError(f"k={k} exceeds the {len(X)} database vectors; pass k <= {len(X)}.")
    query_block = check_positive_int(query_block, "query_block")
    db_block = check_positive_int(db_block, "db_block")
    dtype = np.result_type(Q.dtype, X.dtype)
    Q, X = Q.astype(dtype, copy=False), X.astype(dtype, copy=False)
    sq_norms = np.einsum("ij,ij->i", X, X) if metric == "l2" else None
    S = np.empty((len(Q), k), dtype=dtype)
    I = np.empty((len(Q), k), dtype=np.int64)
    for q0 in range(0, len(Q), query_block):
        q1 = min(q0 + query_block, len(Q))
        key, ids = _best_of_blocks(Q[q0:q1], X, sq_norms, k, db_block)
        if metric == "ip":
            S[q0:q1] = -key
        else:
            S[q0:q1] = np.maximum(key + np.einsum("ij,ij->i", Q[q0:q1], Q[q0:q1])[:, None], 0)
        I[q0:q1] = ids
    return S, I


def _best_of_blocks(
    Q: np.ndarray, X: np.ndarray, sq_norms: np.ndarray | None, k: int, db_block: int
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest ``k`` keys per query by (key, id); key = -ip, or ``||x||^2 - 2 q.x`` for l2."""
    best_key = np.full((len(Q), 0), np.inf, dtype=Q.dtype)
    best_ids = np.zeros((len(Q), 0), dtype=np.int64)
    for b0 in range(0, len(X), db_block):
        b1 = min(b0 + db_block, len(X))
        key = Q @ X[b0:b1].T
        if sq_norms is None:
            np.negative(key, out=key)
        else:
            key = sq_norms[b0:b1] - 2 * key
        cand_key, cand_ids = _block_candidates(key, min(k, b1 - b0))
        merged_key = np.concatenate([best_key, cand_key], axis=1)
        merged_ids = np.concatenate([best_ids, cand_ids + b0], axis=1)
        order = np.lexsort((merged_ids, merged_key), axis=1)[:, :k]
        best_key = np.take_along_axis(merged_key, order, axis=1)
        best_ids = np.take_along_axis(merged_ids, order, axis=1)
    return best_key, best_ids


def _block_candidates(key: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """Every column whose key is <= the row's kk-th smallest (ties at the boundary included)."""
    part = np.argpartition(key, kk - 1, axis=1)[:, :kk]
    kth = np.take_along_axis(key, part, axis=1).max(axis=1)
    within = key <= kth[:, None]
    counts = within.sum(axis=1)
    if np.all(counts == kk):  # no tie crosses the boundary: the partition is the set
        return np.take_along_axis(key, part, axis=1), part.astype(np.int64)
    width = int(counts.max())
    rows, cols = np.nonzero(within)
    pos = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    cand_key = np.full((len(key), width), np.inf, dtype=key.dtype)
    cand_ids = np.full((len(key), width), np.iinfo(np.int64).max // 2, dtype=np.int64)
    cand_key[rows, pos] = key[rows, cols]
    cand_ids[rows, pos] = cols
    return cand_key, cand_ids
