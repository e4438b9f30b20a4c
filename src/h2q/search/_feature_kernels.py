"""Compiled kernels of the ranking with the feature tie-break (internal): squared feature
distances, the radix order by (distance, feature distance, position), and the sorted distances.

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

__all__ = ["MAX_FEATURES", "feature_distances_rows", "radix_order", "sorted_distances"]

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
    position), the order of the packed keys of :func:`h2q.search._scan._order_keys`, without
    a comparison sort.

    A least-significant-digit radix sort of ``feature distance bits << 32 | position`` words:
    one pass counts every digit, then three stable scatter passes over the 31 bits of the
    feature distances (11 bits at a time; a pass whose digit is the same for every item is
    skipped) and one over the Hamming distances. Positions enter in increasing order and
    every pass is stable, so equal (distance, feature distance) pairs stay by position.

    Parameters
    ----------
    dist : numpy.ndarray of uint8 or uint16, shape (n_rows, n_db)
        Hamming distances, each below ``n_vals``; ``n_db < 2**32``.
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
    mask = np.uint64(n_buckets - 1)
    low = np.uint64(0xFFFFFFFF)
    words, spare = np.empty(n, np.uint64), np.empty(n, np.uint64)
    count = np.empty((3, n_buckets), np.int64)
    count_dist = np.empty(n_vals, np.int64)
    for r in range(dist.shape[0]):
        count[:, :] = 0
        count_dist[:] = 0
        for i in range(n):
            key = np.uint64(fd_bits[r, i])
            for p in range(3):
                count[p, (key >> np.uint64(_DIGIT_BITS * p)) & mask] += 1
            count_dist[dist[r, i]] += 1
            words[i] = (key << np.uint64(32)) | np.uint64(i)
        for p in range(3):
            shift = np.uint64(32 + _DIGIT_BITS * p)
            c = count[p]
            if c[(words[0] >> shift) & mask] == n:
                continue  # one digit for all: this pass would not move anything
            _exclusive_prefix_sum(c)
            for i in range(n):
                word = words[i]
                b = (word >> shift) & mask
                j = c[b]
                c[b] = j + 1
                spare[j] = word
            words, spare = spare, words
        _exclusive_prefix_sum(count_dist)
        row, row_dist = out[r], dist[r]
        for i in range(n):
            item = np.int64(words[i] & low)
            b = row_dist[item]
            j = count_dist[b]
            count_dist[b] = j + 1
            row[j] = item


@jit()
def _exclusive_prefix_sum(counts: np.ndarray) -> None:
    """``counts[v]`` becomes the sum of the counts before ``v`` (a bucket's first slot)."""
    total = 0
    for v in range(len(counts)):
        c = counts[v]
        counts[v] = total
        total += c


@jit()
def sorted_distances(dist: np.ndarray, n_vals: int, out: np.ndarray) -> None:
    """``out[r]``: row ``r`` of ``dist`` in increasing order (a counting sort), which is the
    row gathered through any order that ranks by distance first, such as
    :func:`radix_order`'s.

    Parameters
    ----------
    dist : numpy.ndarray of unsigned integers, shape (n_rows, n_db)
        Hamming distances, each below ``n_vals``.
    n_vals : int
        One more than the largest possible Hamming distance.
    out : numpy.ndarray of int32, shape (n_rows, n_db)
        Written in place.
    """
    counts = np.empty(n_vals, np.int64)
    for r in range(dist.shape[0]):
        counts[:] = 0
        for i in range(dist.shape[1]):
            counts[dist[r, i]] += 1
        p = 0
        for v in range(n_vals):
            for _ in range(counts[v]):
                out[r, p] = v
                p += 1
