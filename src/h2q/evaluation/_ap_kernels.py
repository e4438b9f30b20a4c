"""Compiled average-precision terms of whole rankings (internal).

:func:`h2q.evaluation.metrics._ap_terms` builds, for each ranked position, the bool relevance
of the item there (gathered through the distinct label rows), its running hit count and the
precision at that position, in three passes over arrays the size of the ranking. The kernel
below writes the same float64 terms (``hits / rank`` where the item is relevant, ``0.0``
elsewhere; the same IEEE division) in one pass over the ranked ids, so that numpy's row sums
of them, and so every AP, are the same bit for bit.

Importing this module imports numba (when available); the kernel compiles on first call.
"""

from __future__ import annotations

import numpy as np

from ..search._jit import jit

__all__ = ["ranked_ap_terms"]


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
