"""Compiled squared feature distances for the tie re-ranking (internal).

:func:`h2q.search._common.feature_distances` sums the squared differences of each database row
with numpy's pairwise summation; ranking relies on those exact values (a tie in Hamming
distance is broken by them), so a faster path must reproduce them bit for bit. numpy sums a
contiguous row of up to 128 float32 terms with eight interleaved accumulators (term ``j`` goes
to accumulator ``j % 8``), combines them as ``((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 +
a7))`` and adds the last ``n % 8`` terms one by one; fewer than eight terms are added in order.
The kernel below does the same float32 operations in the same order, for one query against
every database item at a time, with the database stored feature-major (``db_t`` of shape
``(n_features, n_db)``) so that the loop over items is contiguous and vectorises (each lane is
a different item, so no sum is reordered). Callers still compare one row against numpy
(:func:`h2q.search._common.same_as_rowwise`) before trusting the kernel, in case numpy's
summation ever changes.

Importing this module imports numba (when available); the kernel compiles on first call.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit

__all__ = ["MAX_FEATURES", "feature_distances_rows"]

#: Widest feature rows the kernel handles: numpy switches to recursive halving above 128.
MAX_FEATURES = 128


@jit()
def feature_distances_rows(db_t: np.ndarray, queries: np.ndarray, out: np.ndarray) -> None:
    """``out[r, i] = sum_j (db_t[j, i] - queries[r, j]) ** 2`` in numpy's summation order.

    Parameters
    ----------
    db_t : numpy.ndarray of float32, shape (n_features, n_db), C-contiguous
        Database features, transposed; ``n_features <= MAX_FEATURES``.
    queries : numpy.ndarray of float32, shape (n_rows, n_features)
    out : numpy.ndarray of float32, shape (n_rows, n_db)
        Written in place.
    """
    n_features, n_db = db_t.shape
    acc = np.empty((8, n_db), dtype=np.float32)
    for r in range(queries.shape[0]):
        q = queries[r]
        row = out[r]
        if n_features < 8:
            for i in range(n_db):
                d = db_t[0, i] - q[0]
                row[i] = d * d
            for j in range(1, n_features):
                qj = q[j]
                for i in range(n_db):
                    d = db_t[j, i] - qj
                    row[i] += d * d
            continue
        for j in range(8):
            qj = q[j]
            for i in range(n_db):
                d = db_t[j, i] - qj
                acc[j, i] = d * d
        blocked = n_features - n_features % 8
        for j in range(8, blocked):
            qj = q[j]
            a = j % 8
            for i in range(n_db):
                d = db_t[j, i] - qj
                acc[a, i] += d * d
        for i in range(n_db):
            row[i] = ((acc[0, i] + acc[1, i]) + (acc[2, i] + acc[3, i])) + (
                (acc[4, i] + acc[5, i]) + (acc[6, i] + acc[7, i])
            )
        for j in range(blocked, n_features):
            qj = q[j]
            for i in range(n_db):
                d = db_t[j, i] - qj
                row[i] += d * d


@jit()
def pack_order_keys(dist: np.ndarray, fd_bits: np.ndarray, id_bits: int, out: np.ndarray) -> None:
    """``out[r, i] = dist[r, i] << (31 + id_bits) | fd_bits[r, i] << id_bits | i``: the unique
    int64 key whose order is (Hamming distance, feature distance, id), in one pass.

    Parameters
    ----------
    dist : numpy.ndarray of uint8 or uint16, shape (n_rows, n_db)
        Hamming distances.
    fd_bits : numpy.ndarray of uint32, shape (n_rows, n_db)
        Bit patterns of the non-negative float32 feature distances (they order like the
        values).
    id_bits : int
        Bits of the largest id.
    out : numpy.ndarray of int64, shape (n_rows, n_db)
        Written in place.
    """
    shift = 31 + id_bits
    for r in range(dist.shape[0]):
        for i in range(dist.shape[1]):
            out[r, i] = (np.int64(dist[r, i]) << shift) | (np.int64(fd_bits[r, i]) << id_bits) | i
