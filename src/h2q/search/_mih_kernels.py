"""Compiled kernels of multi-index hashing (internal): table build, k-NN and range probes.

Layout (built by :mod:`h2q.search.mih`): each code is cut into ``m`` substrings; substring ``i``
covers bits ``sub_start[i] : sub_start[i] + sub_len[i]``. Its table is a bucket per possible
key value: the ids of the items whose substring equals the key are
``bucket_ids[i * n + offsets[b] : i * n + offsets[b + 1]]`` with ``b = table_start[i] + key``, in
increasing id order (``offsets`` are ``uint32``, relative to their table, to halve their
size). Codes are kept row-major as ``uint64`` words (``words``, shape ``(n, n_words)``) so that
a candidate's full distance reads one cache line.

Search (Norouzi, Punjani and Fleet, TPAMI 2014): probe every substring at radius 0, then 1, ...;
before probing substring ``i`` at radius ``s``, an item not yet seen has a substring distance
``>= s + 1`` in substrings ``< i`` and ``>= s`` in the others, so its full distance is at least
``m * s + i``. Once that bound exceeds the current k-th distance, no unseen item can enter the
top k (not even at the k-th distance with a smaller id), so the result is exact under the
(distance, id) rule. A query whose probing work exceeds ``budget`` stops and is flagged, for the
caller to scan instead.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit, make_popcount, prange_or_range
from ._kernels import kth

popcount = make_popcount()
prange = prange_or_range()


@jit(parallel=True)
def sub_keys(words, start, length, keys):
    """``keys[j]`` = bits ``start : start + length`` of code ``j`` (length <= 32)."""
    w = start >> 6
    off = np.uint64(start & 63)
    mask = (np.uint64(1) << np.uint64(length)) - np.uint64(1)
    spill = (start & 63) + length > 64
    for j in prange(words.shape[0]):
        key = words[j, w] >> off
        if spill:
            key |= words[j, w + 1] << (np.uint64(64) - off)
        keys[j] = np.int64(key & mask)


@jit()
def counting_sort(keys, n_buckets, base, offsets, out_ids):
    """Bucket ids by key, keeping increasing id order within a bucket.

    Writes ``offsets[0 : n_buckets + 1]`` (positions relative to ``base``) and
    ``out_ids[base : base + len(keys)]``.
    """
    counts = np.zeros(n_buckets + 1, dtype=np.int64)
    for j in range(keys.shape[0]):
        counts[keys[j] + 1] += 1
    offsets[0] = 0
    for b in range(n_buckets):
        offsets[b + 1] = offsets[b] + counts[b + 1]
    fill = offsets[:n_buckets].astype(np.int64) + base
    for j in range(keys.shape[0]):
        b = keys[j]
        out_ids[fill[b]] = j
        fill[b] += 1


@jit()
def _distance(q, words, item):
    d = 0
    for w in range(q.shape[0]):
        d += np.int64(popcount(q[w] ^ words[item, w]))
    return d


@jit()
def _query_key(q, start, length):
    w = start >> 6
    off = np.uint64(start & 63)
    key = q[w] >> off
    if (start & 63) + length > 64:
        key |= q[w + 1] << (np.uint64(64) - off)
    return np.int64(key & ((np.uint64(1) << np.uint64(length)) - np.uint64(1)))


@jit()
def _keep_best(cand_d, cand_i, count, hist, k):
    """Keep the k best candidates by (distance, id); return the new count."""
    key = cand_d[:count].astype(np.int64) * (np.int64(1) << 40) + cand_i[:count]
    order = np.argsort(key)[:k]
    d = cand_d[:count][order]
    i = cand_i[:count][order]
    kept = order.shape[0]
    cand_d[:kept] = d
    cand_i[:kept] = i
    hist[:] = 0
    for p in range(kept):
        hist[cand_d[p]] += 1
    return kept


@jit()
def _probe_bucket(q, words, alive, b_lo, b_hi, bucket_ids, marker, stamp, st):
    """Check every unseen item of one bucket; st = (cand_d, cand_i, hist, meta) of the query.

    ``meta`` holds [count, limit, k, work]. Items with distance <= limit are admitted.
    """
    cand_d, cand_i, hist, meta = st
    for p in range(b_lo, b_hi):
        item = bucket_ids[p]
        if marker[item] == stamp or not alive[item]:
            continue
        marker[item] = stamp
        meta[3] += 1
        d = _distance(q, words, item)
        if d <= meta[1]:
            n = meta[0]
            cand_d[n] = d
            cand_i[n] = item
            hist[d] += 1
            n += 1
            if n == cand_d.shape[0]:
                n = _keep_best(cand_d, cand_i, n, hist, meta[2])
            meta[0] = n
            if n >= meta[2]:
                meta[1] = kth(hist, meta[2])


@jit()
def _next_combination(mask):
    """The next larger integer with the same number of set bits (Gosper's hack)."""
    c = mask & -mask
    r = mask + c
    return (((r ^ mask) >> 2) // c) | r


@jit()
def _knn_one(q, words, alive, tables, k, n_bits, budget, marker, stamp, st):
    """Probe for one query until exact or over budget; return False when over budget."""
    sub_start, sub_len, table_start, offsets, bucket_ids = tables
    m = sub_start.shape[0]
    n = words.shape[0]
    meta = st[3]
    max_s = sub_len.min()
    for s in range(max_s + 1):
        for i in range(m):
            if meta[0] >= k and m * s + i > meta[1]:
                return True
            length = sub_len[i]
            key = _query_key(q, sub_start[i], length)
            base = table_start[i]
            first = i * n
            mask = (np.int64(1) << s) - 1
            end = np.int64(1) << length
            while mask < end:
                b = base + (key ^ mask)
                meta[3] += 1
                lo = first + np.int64(offsets[b])
                hi = first + np.int64(offsets[b + 1])
                _probe_bucket(q, words, alive, lo, hi, bucket_ids, marker, stamp, st)
                if meta[3] > budget:
                    return False
                if s == 0:
                    break
                mask = _next_combination(mask)
    return True


@jit()
def _chunk(c, n_rows, n_chunks):
    """Rows ``q0:q1`` of chunk ``c`` of ``n_rows`` rows cut into ``n_chunks`` near-equal chunks."""
    per_chunk = (n_rows + n_chunks - 1) // n_chunks
    q0 = c * per_chunk
    return q0, min(n_rows, q0 + per_chunk)


@jit(parallel=True)
def knn(q_words, words, alive, tables, k, n_bits, budget, n_chunks, D, I, over, work):
    """Exact top k by (distance, id) for each query, or ``over[q] = True`` past the budget.

    Runs :func:`knn_queries` on ``n_chunks`` chunks of the queries in parallel.
    """
    for c in prange(n_chunks):
        q0, q1 = _chunk(c, q_words.shape[0], n_chunks)
        knn_queries(q_words, words, alive, tables, k, n_bits, budget, q0, q1, D, I, over, work)


@jit()
def knn_queries(q_words, words, alive, tables, k, n_bits, budget, q0, q1, D, I, over, work):
    """Queries ``q0:q1`` of :func:`knn`, in the calling thread.

    ``D`` and ``I`` arrive filled with padding; ``tables`` is
    ``(sub_start, sub_len, table_start, offsets, bucket_ids)``. ``work[q]`` receives the
    query's probe steps (buckets plus candidates checked).
    """
    if q1 <= q0:
        return
    cap = 4 * k + 256
    marker = np.zeros(words.shape[0], dtype=np.uint8)
    stamp = 0
    cand_d = np.empty(cap, dtype=np.int32)
    cand_i = np.empty(cap, dtype=np.int64)
    hist = np.zeros(n_bits + 1, dtype=np.int64)
    meta = np.zeros(4, dtype=np.int64)
    for q in range(q0, q1):
        stamp += 1
        if stamp == 256:
            marker[:] = 0
            stamp = 1
        hist[:] = 0
        meta[0] = 0
        meta[1] = n_bits
        meta[2] = k
        meta[3] = 0
        st = (cand_d, cand_i, hist, meta)
        done = _knn_one(
            q_words[q], words, alive, tables, k, n_bits, budget, marker, np.uint8(stamp), st
        )
        work[q] = meta[3]
        if not done:
            over[q] = True
            continue
        n = _keep_best(cand_d, cand_i, meta[0], hist, k)
        for p in range(n):
            D[q, p] = cand_d[p]
            I[q, p] = cand_i[p]


@jit(parallel=True)
def range_probe(q_words, words, alive, tables, radius, n_chunks, counts, lims, D, I, fill):
    """Items within ``radius[q]`` of each query, by (distance, id): count, then fill.

    Runs :func:`range_queries` on ``n_chunks`` chunks of the queries in parallel.
    """
    for c in prange(n_chunks):
        q0, q1 = _chunk(c, q_words.shape[0], n_chunks)
        range_queries(q_words, words, alive, tables, radius, q0, q1, counts, lims, D, I, fill)


@jit()
def range_queries(q_words, words, alive, tables, radius, q0, q1, counts, lims, D, I, fill):
    """Queries ``q0:q1`` of :func:`range_probe`, in the calling thread.

    With ``fill`` False, ``counts[q]`` receives the number of results; with ``fill`` True the
    results go to ``D`` and ``I`` from ``lims[q]`` on, sorted by (distance, id).

    By the pigeonhole principle an item within ``r`` has a substring within ``r // m`` of the
    query's, so probing radii ``0 .. r // m`` in every substring finds all of them. An item is
    reported by the first substring where it is that close (checked on the item's own code for
    the few items within ``r``), so no per-item marks are needed.
    """
    sub_start, sub_len, table_start, offsets, bucket_ids = tables
    m = sub_start.shape[0]
    n = words.shape[0]
    q_keys = np.empty(m, dtype=np.int64)
    for q in range(q0, q1):
        qw = q_words[q]
        r_q = radius[q]
        s_max = r_q // m
        for i in range(m):
            q_keys[i] = _query_key(qw, sub_start[i], sub_len[i])
        found = 0
        base_out = lims[q] if fill else 0
        for i in range(m):
            length = sub_len[i]
            first = i * n
            for s in range(min(s_max, length) + 1):
                mask = (np.int64(1) << s) - 1
                end = np.int64(1) << length
                while mask < end:
                    b = table_start[i] + (q_keys[i] ^ mask)
                    for p in range(first + offsets[b], first + offsets[b + 1]):
                        item = bucket_ids[p]
                        d = _distance(qw, words, item)
                        if d > r_q or not alive[item]:
                            continue
                        if _found_earlier(words[item], q_keys, sub_start, sub_len, i, s_max):
                            continue
                        if fill:
                            D[base_out + found] = d
                            I[base_out + found] = item
                        found += 1
                    if s == 0:
                        break
                    mask = _next_combination(mask)
        if fill:
            _sort_segment(D, I, base_out, base_out + found)
        else:
            counts[q] = found


@jit()
def _found_earlier(item_words, q_keys, sub_start, sub_len, i, s_max):
    """Whether a substring before ``i`` is within ``s_max`` of the query's (probed before)."""
    for j in range(i):
        key = _query_key(item_words, sub_start[j], sub_len[j])
        if popcount(np.uint64(key ^ q_keys[j])) <= s_max:
            return True
    return False


@jit()
def _sort_segment(D, I, start, stop):
    if stop - start < 2:
        return
    key = D[start:stop].astype(np.int64) * (np.int64(1) << 40) + I[start:stop]
    order = np.argsort(key)
    d = D[start:stop][order]
    i = I[start:stop][order]
    D[start:stop] = d
    I[start:stop] = i
