"""Binary search + rescore: re-order a Hamming shortlist by exact float scores.

The pipeline vector databases ship as "binary quantization with rescoring": search the packed
codes for the Hamming top ``R`` (cheap), then score those ``R`` candidates exactly with the float
vectors and keep the best ``k``. Scores are the inner product (``metric="ip"``, larger first) or
the squared Euclidean distance (``metric="l2"``, smaller first); equal scores go by smaller id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from .._validation import check_embeddings, check_positive_int
from ._pad import PAD_ID

__all__ = ["rescore"]

Metric = Literal["ip", "l2"]

#: Candidate vectors gathered per block (rows x dims floats), to bound memory.
_GATHER_FLOATS = 1 << 22


def rescore(
    I: Any,
    query_vectors: Any,
    database_vectors: Any,
    k: int,
    metric: Metric = "ip",
) -> tuple[np.ndarray, np.ndarray]:
    """Re-order candidate lists by the exact float score and keep the best ``k`` of each.

    Parameters
    ----------
    I : int array of shape (n_queries, R)
        Candidate database ids per query (for example a Hamming top-R); id -1 marks padding.
    query_vectors : numpy.ndarray of shape (n_queries, d), float
    database_vectors : numpy.ndarray of shape (n_db, d), float
    k : int
        Results per query, ``1 <= k <= R``.
    metric : {"ip", "l2"}, default "ip"
        ``"ip"``: inner product, larger first; ``"l2"``: squared Euclidean distance, smaller
        first. Equal scores go by smaller id.

    Returns
    -------
    S : numpy.ndarray of shape (n_queries, k), dtype float32 or float64
        Scores in ranking order (padding: ``-inf`` for ``"ip"``, ``inf`` for ``"l2"``).
    I : numpy.ndarray of shape (n_queries, k), dtype int64
        Database ids in ranking order (padding: -1).
    """
    if metric not in ("ip", "l2"):
        raise ValueError(f"metric must be 'ip' or 'l2', got {metric!r}.")
    I = np.asarray(I)
    if I.ndim != 2 or I.dtype.kind not in "iu":
        raise ValueError(
            f"I must be a 2-D integer array of candidate ids, got {I.dtype} {I.shape}."
        )
    X = check_embeddings(database_vectors, "database_vectors", allow_torch=False)
    Q = check_embeddings(query_vectors, "query_vectors", allow_torch=False)
    _check_vector_shapes(Q, X, len(I))
    k = check_positive_int(k, "k")
    if k > I.shape[1]:
        raise ValueError(
            f"k={k} exceeds the {I.shape[1]} candidates per query; take a larger shortlist "
            "(rescore >= k)."
        )
    if I.size and (I.max() >= len(X) or I.min() < PAD_ID):
        raise ValueError(
            f"I holds ids outside [-1, {len(X) - 1}]; pass candidate ids of database_vectors."
        )
    dtype = np.result_type(Q.dtype, X.dtype)
    S_out = np.empty((len(I), k), dtype=dtype)
    I_out = np.empty((len(I), k), dtype=np.int64)
    rows = max(1, _GATHER_FLOATS // max(1, I.shape[1] * X.shape[1]))
    for start in range(0, len(I), rows):
        stop = min(start + rows, len(I))
        S_out[start:stop], I_out[start:stop] = _rescore_block(
            I[start:stop].astype(np.int64), Q[start:stop], X, k, metric
        )
    return S_out, I_out


def _rescore_block(
    ids: np.ndarray, Q: np.ndarray, X: np.ndarray, k: int, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    pad = ids == PAD_ID
    vectors = X[np.where(pad, 0, ids)]  # (rows, R, d)
    if metric == "ip":
        score = np.einsum("rcd,rd->rc", vectors, Q.astype(vectors.dtype, copy=False))
        key = -score
    else:
        diff = vectors - Q[:, None, :]
        score = np.einsum("rcd,rcd->rc", diff, diff)
        key = score.copy()
    key[pad] = np.inf
    score[pad] = -np.inf if metric == "ip" else np.inf
    # Sort by (key, id); padding (id -1, key inf) goes last.
    ids_key = np.where(pad, np.iinfo(np.int64).max, ids)
    order = np.lexsort((ids_key, key), axis=-1)[:, :k]
    return np.take_along_axis(score, order, axis=1), np.take_along_axis(ids, order, axis=1)


def _check_vector_shapes(Q: np.ndarray, X: np.ndarray, n_queries: int) -> None:
    if len(Q) != n_queries:
        raise ValueError(
            f"query_vectors has {len(Q)} rows, but there are {n_queries} queries; pass one "
            "float vector per query code."
        )
    if Q.shape[1] != X.shape[1]:
        raise ValueError(
            f"query_vectors has {Q.shape[1]} dimensions but database_vectors has "
            f"{X.shape[1]}; pass vectors of the same embedding model."
        )


def search_and_rescore(
    search: Callable[[int], tuple[np.ndarray, np.ndarray]],
    k: int,
    shortlist: Any,
    query_vectors: Any,
    database_vectors: Any,
    metric: Metric,
    ntotal: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Hamming top ``shortlist`` by ``search(R)``, then :func:`rescore` to the best ``k``."""
    shortlist = check_positive_int(shortlist, "rescore")
    if shortlist < k:
        raise ValueError(f"rescore={shortlist} is smaller than k={k}; pass rescore >= k.")
    if query_vectors is None or database_vectors is None:
        raise ValueError(
            "rescore needs query_vectors and database_vectors (the float vectors of the "
            "queries and of every indexed item, in id order); pass both."
        )
    X = check_embeddings(database_vectors, "database_vectors", allow_torch=False)
    if len(X) != ntotal:
        raise ValueError(
            f"database_vectors has {len(X)} rows, but the index holds {ntotal} ids; pass one "
            "vector per indexed item, in id order."
        )
    _, I = search(shortlist)
    return rescore(I, query_vectors, X, k, metric)
