"""Compiled kernels of the ranking metrics (internal): average-precision terms of whole
rankings, and the per-radius counts of the precision-recall curve.

:func:`h2q.evaluation.metrics._ap_terms` builds, for each ranked position, the bool relevance
of the item there (gathered through the distinct label rows), its running hit count and the
precision at that position, in three passes over arrays the size of the ranking. The kernel
below writes the same float64 terms (``hits / rank`` where the item is relevant, ``0.0``
elsewhere; the same IEEE division) in one pass over the ranked ids, so that numpy's row sums
of them, and so every AP, are the same bit for bit.

:func:`radius_counts` replaces the two offset ``bincount`` passes of
:func:`h2q.evaluation.metrics.precision_recall_curve` and their cumulative sums by one pass
per query that counts the same integers.

Importing this module imports numba (when available); the kernel compiles on first call.
"""

from __future__ import annotations

import numpy as np

from ..search._jit import jit

__all__ = ["radius_counts", "ranked_ap_terms"]


@jit()
def ranked_ap_terms(
    ranking: np.ndarray,
    shared: np.ndarray,
    label_row: np.ndarray,
    k: int,
    terms: np.ndarray,
    hits: np.ndarray,
    hits_at_k: np.ndarray,
) -> None:
    """``terms[r, p]``: precision at rank ``p + 1`` of row ``r`` where the item ranked there
    is relevant, else 0; ``hits[r]`` and ``hits_at_k[r]``: the row's number of relevant
    items, in all and in its first ``k``.

    Parameters
    ----------
    ranking : numpy.ndarray of int64, shape (n_rows, n_ranked)
        Database ids in ranking order.
    shared : numpy.ndarray of bool, shape (n_rows, n_distinct_label_rows)
        Whether query ``r`` shares a label with each distinct database label row.
    label_row : numpy.ndarray of int64, shape (n_db,)
        Index of each database item's label row in ``shared``.
    k : int
        Cut-off of ``hits_at_k`` (at most ``n_ranked``).
    terms : numpy.ndarray of float64, shape (n_rows, n_ranked)
    hits, hits_at_k : numpy.ndarray of int64, shape (n_rows,)
        Written in place.
    """
    for r in range(ranking.shape[0]):
        count = 0
        for p in range(ranking.shape[1]):
            if p == k:
                hits_at_k[r] = count
            if shared[r, label_row[ranking[r, p]]]:
                count += 1
                terms[r, p] = count / (p + 1.0)
            else:
                terms[r, p] = 0.0
        hits[r] = count
        if k >= ranking.shape[1]:
            hits_at_k[r] = count


@jit()
def radius_counts(
    dist: np.ndarray,
    shared: np.ndarray,
    label_row: np.ndarray,
    retrieved: np.ndarray,
    true_pos: np.ndarray,
) -> None:
    """``retrieved[r, v]`` and ``true_pos[r, v]``: how many database items, and how many
    relevant ones, lie within Hamming distance ``v`` of query ``r``.

    Parameters
    ----------
    dist : numpy.ndarray of integers, shape (n_rows, n_db)
        Hamming distances, each in ``[0, n_radii)``.
    shared : numpy.ndarray of bool, shape (n_rows, n_distinct_label_rows)
        Whether query ``r`` shares a label with each distinct database label row.
    label_row : numpy.ndarray of int64, shape (n_db,)
        Index of each database item's label row in ``shared``.
    retrieved, true_pos : numpy.ndarray of int64, shape (n_rows, n_radii)
        Written in place.
    """
    n_radii = retrieved.shape[1]
    for r in range(dist.shape[0]):
        retrieved[r, :] = 0
        true_pos[r, :] = 0
        for i in range(dist.shape[1]):
            d = dist[r, i]
            retrieved[r, d] += 1
            if shared[r, label_row[i]]:
                true_pos[r, d] += 1
        for v in range(1, n_radii):
            retrieved[r, v] += retrieved[r, v - 1]
            true_pos[r, v] += true_pos[r, v - 1]
