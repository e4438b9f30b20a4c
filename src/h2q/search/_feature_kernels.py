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

__all__ = ["MAX_FEATURES", "feature_distances_rows", "radix_order"]

#: Widest feature rows the kernel handles: numpy switches to recursive halving above 128.
MAX_FEATURES = 128
#: Bits of one digit of :func:`radix_order` (2,048 buckets: small next to a row of thousands).
_DIGIT_BITS = 11


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
def radix_order(dist: np.ndarray, fd_bits: np.ndarray, n_vals: int, out: np.ndarray) -> None:
    """``out[r]``: the positions that sort row ``r`` by (Hamming distance, feature distance,
    position), the order of the packed keys of :func:`h2q.search._scan._order_keys`, without a
    comparison sort.

    A least-significant-digit radix sort: three stable counting passes over the 31 bits of
    the feature distances (11 bits at a time; a pass whose digit is the same for every item
    is skipped), then one over the Hamming distances. Positions enter in increasing order and
    every pass is stable, so equal (distance, feature distance) pairs stay by position.

    Parameters
    ----------
    dist : numpy.ndarray of uint8 or uint16, shape (n_rows, n_db)
        Hamming distances, each below ``n_vals``.
    fd_bits : numpy.ndarray of uint32, shape (n_rows, n_db)
        Bit patterns of the non-negative float32 feature distances (they order like the
        values).
    n_vals : int
        One more than the largest possible Hamming distance.
    out : numpy.ndarray of int64, shape (n_rows, n_db)
        Written in place.
    """
    n = dist.shape[1]
    n_buckets = 1 << _DIGIT_BITS
    mask = np.uint32(n_buckets - 1)
    keys, ids = np.empty(n, np.uint32), np.empty(n, np.int64)
    keys2, ids2 = np.empty(n, np.uint32), np.empty(n, np.int64)
    count = np.empty(max(n_buckets, n_vals), np.int64)
    for r in range(dist.shape[0]):
        for i in range(n):
            keys[i] = fd_bits[r, i]
            ids[i] = i
        for shift in range(0, 31, _DIGIT_BITS):
            count[:n_buckets] = 0
            for i in range(n):
                count[(keys[i] >> shift) & mask] += 1
            if count[(keys[0] >> shift) & mask] == n:
                continue  # one digit for all: this pass would not move anything
            total = 0
            for v in range(n_buckets):
                c = count[v]
                count[v] = total
                total += c
            for i in range(n):
                b = (keys[i] >> shift) & mask
                j = count[b]
                count[b] = j + 1
                keys2[j] = keys[i]
                ids2[j] = ids[i]
            keys, keys2 = keys2, keys
            ids, ids2 = ids2, ids
        count[:n_vals] = 0
        for i in range(n):
            count[dist[r, i]] += 1
        total = 0
        for v in range(n_vals):
            c = count[v]
            count[v] = total
            total += c
        row = out[r]
        for i in range(n):
            item = ids[i]
            b = dist[r, item]
            j = count[b]
            count[b] = j + 1
            row[j] = item
