"""Compiled kernels of the flat scan (internal): blocked XOR + popcount, selection by counting.

Codes are ``uint64`` words stored word-major, ``db_t`` of shape ``(n_words, n_db)``, so that the
inner loop over database items reads one contiguous row per word and vectorises (XOR,
``vpopcntq``, compare). A block of queries walks the database tile by tile: a tile of codes
(:data:`TILE_BYTES` of codes) is reused from the L1 cache by every query of the block.

Selection never sorts the database. Each query keeps a small buffer of candidates, admitted in
increasing id order, and a histogram of their distances (only ``n_bits + 1`` values exist):
the k-th smallest distance ``tau`` is read off the histogram, and once k candidates are at or
below ``tau`` a later item at distance ``tau`` can never beat them (it has a larger id), so
only items strictly closer are admitted. That is the tie rule exactly, also at the k-th
boundary. A full buffer is compacted to its k best; the final order is a counting sort by
distance that keeps the id order within a distance.

Per tile and query, one vectorised pass computes the distances and counts those below the
query's admission limit; a tile without any is done. Otherwise the distances are read in
groups of :data:`GROUP`, each first counted with vector compares, so that only groups holding
a candidate are read item by item (once the k-th distance is tight, candidates are rare).

Importing this module imports numba (when available); kernels compile on first call.
"""

from __future__ import annotations

import numpy as np

from .._threads import thread_limit
from ._jit import jit, make_popcount, numba_available, prange_or_range
from ._pad import PAD_DISTANCE, PAD_ID

popcount = make_popcount()
prange = prange_or_range()

#: Bytes of codes per tile: a tile stays in the L1 data cache (32 KiB or more) while every
#: query of a block reads it.
TILE_BYTES = 16384
#: Most queries per block: each tile is read once per block from memory and reused from
#: cache (a database of 10^6 x 256 bits, 32 MiB, is read from memory once per block). Smaller
#: batches are cut into one block per thread.
QUERY_BLOCK = 64
#: Items per group of the admission pass: a group is scanned item by item only when it holds
#: an admitted distance (a vectorised count tells).
GROUP = 64


@jit()
def _tile_items(n_words):
    """Items per tile for codes of ``n_words`` words (a multiple of :data:`GROUP`)."""
    return max(GROUP, TILE_BYTES // (8 * n_words) // GROUP * GROUP)


@jit()
def _tile_distances(q_words, db_t, t0, t1, dist, lim):
    """``dist[j] = popcount(q ^ db[t0 + j])`` summed over words, for ``j < t1 - t0``.

    Returns how many of them are below ``lim`` (counted in the same vectorised pass). Codes of
    up to four words are summed in registers, one pass per tile; wider codes add four words
    at a time into ``dist``. Each word's row is sliced first: indexing ``db_t[w, t0 + j]``
    directly makes LLVM emit gathers (the index might be negative), a slice indexed by the
    loop counter compiles to contiguous vector loads.
    """
    n_words = q_words.shape[0]
    m = t1 - t0
    if n_words == 1:
        return _dist1(q_words[0], db_t[0, t0:t1], dist, m, lim)
    if n_words == 2:
        return _dist2(q_words, db_t[0, t0:t1], db_t[1, t0:t1], dist, m, lim)
    if n_words == 3:
        a = db_t[0, t0:t1]
        return _dist3(q_words, a, db_t[1, t0:t1], db_t[2, t0:t1], dist, m, lim)
    if n_words == 4:
        return _dist4(q_words, db_t, t0, t1, dist, lim)
    dist[:m] = 0
    lead = n_words % 4  # words added one at a time, then whole groups of four
    for w in range(lead):
        _add1(q_words[w], db_t[w, t0:t1], dist, m)
    for w0 in range(lead, n_words - 4, 4):
        _add4(q_words[w0 : w0 + 4], db_t, w0, t0, t1, dist)
    return _last4(q_words, db_t, n_words - 4, t0, t1, dist, lim)


@jit()
def _dist4(q, db_t, t0, t1, dist, lim):
    a, b = db_t[0, t0:t1], db_t[1, t0:t1]
    c, e = db_t[2, t0:t1], db_t[3, t0:t1]
    q0, q1, q2, q3 = q[0], q[1], q[2], q[3]
    hits = 0
    for j in range(t1 - t0):
        s = popcount(q0 ^ a[j]) + popcount(q1 ^ b[j]) + popcount(q2 ^ c[j])
        d = np.int32(s + popcount(q3 ^ e[j]))
        dist[j] = d
        hits += d < lim
    return hits


@jit()
def _add1(q0, a, dist, m):
    for j in range(m):
        dist[j] += np.int32(popcount(q0 ^ a[j]))


@jit()
def _dist1(q0, a, dist, m, lim):
    hits = 0
    for j in range(m):
        d = np.int32(popcount(q0 ^ a[j]))
        dist[j] = d
        hits += d < lim
    return hits


@jit()
def _dist2(q, a, b, dist, m, lim):
    q0, q1 = q[0], q[1]
    hits = 0
    for j in range(m):
        d = np.int32(popcount(q0 ^ a[j]) + popcount(q1 ^ b[j]))
        dist[j] = d
        hits += d < lim
    return hits


@jit()
def _dist3(q, a, b, c, dist, m, lim):
    q0, q1, q2 = q[0], q[1], q[2]
    hits = 0
    for j in range(m):
        d = np.int32(popcount(q0 ^ a[j]) + popcount(q1 ^ b[j]) + popcount(q2 ^ c[j]))
        dist[j] = d
        hits += d < lim
    return hits


@jit()
def _add4(q, db_t, w0, t0, t1, dist):
    """``dist[j] += popcount`` of words ``w0 .. w0 + 3`` (a middle group of a wide code)."""
    a, b = db_t[w0, t0:t1], db_t[w0 + 1, t0:t1]
    c, e = db_t[w0 + 2, t0:t1], db_t[w0 + 3, t0:t1]
    q0, q1, q2, q3 = q[0], q[1], q[2], q[3]
    for j in range(t1 - t0):
        s = popcount(q0 ^ a[j]) + popcount(q1 ^ b[j]) + popcount(q2 ^ c[j])
        dist[j] += np.int32(s + popcount(q3 ^ e[j]))


@jit()
def _last4(q_words, db_t, w0, t0, t1, dist, lim):
    """Add words ``w0 .. w0 + 3`` (the last four) to ``dist``; count the results below lim."""
    a, b = db_t[w0, t0:t1], db_t[w0 + 1, t0:t1]
    c, e = db_t[w0 + 2, t0:t1], db_t[w0 + 3, t0:t1]
    q0, q1, q2, q3 = q_words[w0], q_words[w0 + 1], q_words[w0 + 2], q_words[w0 + 3]
    hits = 0
    for j in range(t1 - t0):
        s = popcount(q0 ^ a[j]) + popcount(q1 ^ b[j]) + popcount(q2 ^ c[j])
        d = dist[j] + np.int32(s + popcount(q3 ^ e[j]))
        dist[j] = d
        hits += d < lim
    return hits


@jit()
def kth(hist, k):
    """Smallest distance t with at least k items at distance <= t (``len(hist)`` if none)."""
    total = 0
    for t in range(hist.shape[0]):
        total += hist[t]
        if total >= k:
            return t
    return hist.shape[0]


@jit()
def _compact(cand_d, cand_i, count, hist, k):
    """Keep the k best of a candidate buffer in id order; return the new count.

    The buffer holds items in increasing id order, so "best" is: every item closer than the
    k-th distance, then the earliest items at the k-th distance until k are kept.
    """
    tau = kth(hist, k)
    room = k
    for t in range(tau):
        room -= hist[t]
    kept = 0
    for p in range(count):
        d = cand_d[p]
        if d < tau or (d == tau and room > 0):
            if d == tau:
                room -= 1
            cand_d[kept] = d
            cand_i[kept] = cand_i[p]
            kept += 1
    hist[:] = 0
    for p in range(kept):
        hist[cand_d[p]] += 1
    return kept


@jit()
def _emit(cand_d, cand_i, count, hist, k, D_row, I_row):
    """Write the first k candidates by (distance, id) into a result row (a counting sort)."""
    start = np.zeros(hist.shape[0] + 1, dtype=np.int64)
    for t in range(hist.shape[0]):
        start[t + 1] = start[t] + hist[t]
    for p in range(count):
        d = cand_d[p]
        pos = start[d]
        start[d] = pos + 1
        if pos < k:
            D_row[pos] = d
            I_row[pos] = cand_i[p]


@jit(parallel=True)
def flat_topk(q_words, db_t, k, n_bits, block, D, I):
    """Top k of each query by (Hamming distance, id) over the whole database.

    ``q_words`` has shape ``(n_queries, n_words)``; ``D`` and ``I`` of shape ``(n_queries, k)``
    arrive filled with the padding values (used when ``k`` exceeds the database).
    """
    n_q = q_words.shape[0]
    n_db = db_t.shape[1]
    cap = 2 * k + 64
    tile = _tile_items(q_words.shape[1])
    n_blocks = (n_q + block - 1) // block
    for b in prange(n_blocks):
        q0 = b * block
        c = min(block, n_q - q0)
        cand_d = np.empty((c, cap), dtype=np.int32)
        cand_i = np.empty((c, cap), dtype=np.int64)
        count = np.zeros(c, dtype=np.int64)
        hist = np.zeros((c, n_bits + 1), dtype=np.int64)
        limit = np.full(c, n_bits + 1, dtype=np.int32)
        dist = np.empty(tile, dtype=np.int32)
        for t0 in range(0, n_db, tile):
            t1 = min(t0 + tile, n_db)
            for r in range(c):
                lim = limit[r]
                if _tile_distances(q_words[q0 + r], db_t, t0, t1, dist, lim) == 0:
                    continue
                _admit(dist, t0, t1 - t0, lim, cand_d[r], cand_i[r], count, r, hist[r], k)
                if count[r] >= k:
                    limit[r] = kth(hist[r], k)
        for r in range(c):
            _emit(cand_d[r], cand_i[r], count[r], hist[r], k, D[q0 + r], I[q0 + r])


@jit()
def _admit(dist, t0, m, lim, cand_d, cand_i, count, r, hist, k):
    """Append the items of a tile closer than ``lim`` to a query's buffer (in id order).

    The tile is read in groups of :data:`GROUP` distances: a vectorised count skips the groups
    without an admitted item, so the cost follows the number of admissions, not the tile size.
    """
    cap = cand_d.shape[0]
    n = count[r]
    for g0 in range(0, m, GROUP):
        seg = dist[g0 : min(g0 + GROUP, m)]
        below = 0
        for j in range(seg.shape[0]):
            below += seg[j] < lim
        if below == 0:
            continue
        for j in range(seg.shape[0]):
            d = seg[j]
            if d < lim:
                cand_d[n] = d
                cand_i[n] = t0 + g0 + j
                hist[d] += 1
                n += 1
                if n == cap:
                    n = _compact(cand_d, cand_i, n, hist, k)
                    lim = min(lim, kth(hist, k))
    count[r] = n


@jit(parallel=True)
def flat_range(q_words, db_t, radius, cap, block, counts, D, I):
    """Items within ``radius[q]`` of each query, by (distance, id), in one blocked pass.

    Each query's first ``cap`` items go to row ``q`` of ``D`` and ``I`` (shape ``(n_q, cap)``);
    ``counts[q]`` receives the full count, so that the caller can redo the queries that
    overflowed with a larger ``cap``.
    """
    n_q = q_words.shape[0]
    n_db = db_t.shape[1]
    tile = _tile_items(q_words.shape[1])
    n_blocks = (n_q + block - 1) // block
    for b in prange(n_blocks):
        q0 = b * block
        c = min(block, n_q - q0)
        dist = np.empty(tile, dtype=np.int32)
        for t0 in range(0, n_db, tile):
            t1 = min(t0 + tile, n_db)
            for q in range(q0, q0 + c):
                lim = radius[q] + 1
                if _tile_distances(q_words[q], db_t, t0, t1, dist, lim) == 0:
                    continue
                n = counts[q]
                for j in range(t1 - t0):
                    if dist[j] < lim:
                        if n < cap:
                            D[q, n] = dist[j]
                            I[q, n] = t0 + j
                        n += 1
                counts[q] = n
        for q in range(q0, q0 + c):
            n = min(counts[q], cap)
            # Items arrived in id order; a stable sort by distance gives the (distance, id) order.
            order = np.argsort(D[q, :n], kind="mergesort")
            D[q, :n] = D[q, :n][order]
            I[q, :n] = I[q, :n][order]


def query_block(n_queries: int) -> int:
    """Queries per block: at most :data:`QUERY_BLOCK`, and a block for every thread."""
    threads = 1
    if numba_available():
        import numba

        threads = numba.get_num_threads()
    return max(1, min(QUERY_BLOCK, -(-n_queries // threads)))


def topk(words_t: np.ndarray, q_words: np.ndarray, k: int, n_bits: int):
    """Run :func:`flat_topk` into fresh padded ``(D, I)`` arrays."""
    D = np.full((len(q_words), k), PAD_DISTANCE, dtype=np.int32)
    I = np.full((len(q_words), k), PAD_ID, dtype=np.int64)
    with thread_limit(None, parallel_kernels=True):  # H2Q_NUM_THREADS, when set
        block = query_block(len(q_words))
        flat_topk(np.ascontiguousarray(q_words), words_t, k, n_bits, block, D, I)
    return D, I


def range_search(words_t: np.ndarray, q_words: np.ndarray, radius: np.ndarray):
    """Run :func:`flat_range` (again, wider, for the queries that overflowed); ``(lims, D, I)``."""
    q_words = np.ascontiguousarray(q_words)
    radius = np.ascontiguousarray(radius, dtype=np.int64)
    counts, D, I = _range_pass(words_t, q_words, radius, 32)
    over = np.flatnonzero(counts > D.shape[1])
    rows = np.repeat(np.arange(len(q_words)), np.minimum(counts, D.shape[1]))
    keep = np.arange(D.shape[1]) < counts[:, None]
    parts_d, parts_i, parts_rows = [D[keep]], [I[keep]], [rows]
    if over.size:
        c2, D2, I2 = _range_pass(words_t, q_words[over], radius[over], int(counts[over].max()))
        keep2 = np.arange(D2.shape[1]) < c2[:, None]
        keep_rows = ~np.isin(rows, over)
        parts_d, parts_i = [D[keep][keep_rows], D2[keep2]], [I[keep][keep_rows], I2[keep2]]
        parts_rows = [rows[keep_rows], np.repeat(over, c2)]
    rows = np.concatenate(parts_rows)
    order = np.argsort(rows, kind="stable")
    lims = np.zeros(len(q_words) + 1, dtype=np.int64)
    np.cumsum(counts, out=lims[1:])
    return lims, np.concatenate(parts_d)[order], np.concatenate(parts_i)[order]


def _range_pass(words_t, q_words, radius, cap):
    counts = np.zeros(len(q_words), dtype=np.int64)
    D = np.empty((len(q_words), cap), dtype=np.int32)
    I = np.empty((len(q_words), cap), dtype=np.int64)
    with thread_limit(None, parallel_kernels=True):
        flat_range(q_words, words_t, radius, cap, query_block(len(q_words)), counts, D, I)
    return counts, D, I
