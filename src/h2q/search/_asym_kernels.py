"""Compiled kernels of asymmetric scoring (internal): bit-plane dot products, top-k, codes.

Database codes are stored as bit planes, word-major: ``planes_t`` of shape
``(bits_per_dim, n_words, n)``, ``uint64``, plane 0 the most significant bit of each
dimension's code (for 1 bit per dimension, the sign bit). A query is quantized to
``query_bits`` planes, ``q_planes`` of shape ``(query_bits, n_words)``, plane ``j`` of weight
``2**j``. The integer dot product of an item's code ``u`` with the quantized query ``qu`` is

    <u, qu> = sum over planes p, j of 2**(B - 1 - p + j) * popcount(u_p AND qu_j),

computed for a tile of items at a time (the loop over items vectorises: AND, ``vpopcntq``,
shift, add), and turned into the estimate by the affine formula of
:mod:`h2q.search._rabitq`::

    key = A[i] + B[i] * (delta * <u, qu> + lo * sum(u) - h * sum_q) + const

(smaller keys rank first). Selection keeps, per query, a buffer of candidates below the
current k-th key; a full buffer is cut back to its k best.

Importing this module imports numba (when available); kernels compile on first call.
"""

from __future__ import annotations

import numpy as np

from .._threads import thread_limit
from ._jit import jit, make_popcount, prange_or_range
from ._kernels import query_block

popcount = make_popcount()
prange = prange_or_range()

#: Bytes of bit planes per tile (kept in the L1 data cache while a block of queries reads it).
TILE_BYTES = 16384


@jit()
def _tile_items(n_words, n_planes):
    return max(64, TILE_BYTES // (8 * n_words * n_planes) // 64 * 64)


@jit()
def tile_code_sums(planes_t, t0, t1, out):
    """``out[j] = sum(u)`` of items ``t0 + j``: the sum of each item's integer code."""
    nb = planes_t.shape[0]
    m = t1 - t0
    out[:m] = 0
    for p in range(nb):
        shift = nb - 1 - p
        for w in range(planes_t.shape[1]):
            a = planes_t[p, w, t0:t1]
            for j in range(m):
                out[j] += np.int64(popcount(a[j])) << shift


@jit()
def tile_dots(planes_t, q_planes, t0, t1, out):
    """``out[j] = <u, qu>`` of items ``t0 + j`` with one quantized query (its bit planes).

    Query planes are taken four at a time, kept in registers, so that each word of the
    tile is loaded once per group of four: ``popcount(x & q0) + 2 popcount(x & q1) + ...``;
    two words are summed per pass over the tile.
    """
    nb = planes_t.shape[0]
    qb = q_planes.shape[0]
    m = t1 - t0
    out[:m] = 0
    n_words = planes_t.shape[1]
    for p in range(nb):
        for j0 in range(0, qb, 4):
            shift = nb - 1 - p + j0
            w = 0
            while w + 1 < n_words:  # two words per pass: half the loads and stores of out
                qa = _four(q_planes, j0, w, qb)
                qc = _four(q_planes, j0, w + 1, qb)
                _add_two(planes_t[p, w, t0:t1], planes_t[p, w + 1, t0:t1], qa, qc, shift, out, m)
                w += 2
            if w < n_words:
                qa = _four(q_planes, j0, w, qb)
                _add_one(planes_t[p, w, t0:t1], qa, shift, out, m)


@jit()
def _four(q_planes, j0, w, qb):
    """Query planes ``j0 .. j0 + 3`` of word ``w`` (zero beyond ``qb``)."""
    zero = np.uint64(0)
    return (
        q_planes[j0, w],
        q_planes[j0 + 1, w] if j0 + 1 < qb else zero,
        q_planes[j0 + 2, w] if j0 + 2 < qb else zero,
        q_planes[j0 + 3, w] if j0 + 3 < qb else zero,
    )


@jit()
def _weighted(x, q):
    one, two, three = np.uint64(1), np.uint64(2), np.uint64(3)
    s = popcount(x & q[0]) + (popcount(x & q[1]) << one)
    return s + (popcount(x & q[2]) << two) + (popcount(x & q[3]) << three)


@jit()
def _add_one(a, q, shift, out, m):
    for j in range(m):
        out[j] += np.int64(_weighted(a[j], q)) << shift


@jit()
def _add_two(a, b, qa, qb, shift, out, m):
    for j in range(m):
        out[j] += np.int64(_weighted(a[j], qa) + _weighted(b[j], qb)) << shift


@jit()
def _cut(cand_k, cand_i, n, k):
    """Keep the k smallest keys of a buffer (by key, then arrival); return the k-th key."""
    order = np.argsort(cand_k[:n], kind="mergesort")[:k]
    keys = cand_k[order].copy()
    ids = cand_i[order].copy()
    cand_k[:k] = keys
    cand_i[:k] = ids
    return keys[k - 1]


@jit()
def decode_half(h, t0, t1, scale, out_bits, out):
    """``out[j] = scale * float(h[t0 + j])``: IEEE half floats stored as uint16 (numba has no
    float16), normal numbers exact, subnormals flushed to zero."""
    for j in range(t1 - t0):
        x = np.uint32(h[t0 + j])
        e = x & np.uint32(0x7C00)
        sign = (x & np.uint32(0x8000)) << np.uint32(16)
        body = ((e + np.uint32(0x1C000)) | (x & np.uint32(0x3FF))) << np.uint32(13)
        out_bits[j] = sign | body if e != 0 else sign
    as_float = out_bits.view(np.float32)
    for j in range(t1 - t0):
        out[j] = as_float[j] * scale


@jit()
def _tile_keys(a, b, dots, sums, assign, t0, m, par, h, off, lim, out):
    """Keys of items ``t0 .. t0 + m - 1`` into ``out``; how many are below ``lim`` (one
    vectorised pass, so that tiles without a candidate are skipped)."""
    delta, lo, hs = np.float32(par[0]), np.float32(par[1]), np.float32(h * par[2])
    cid = assign[t0 : t0 + m]
    hits = 0
    for j in range(m):  # float32 throughout: twice the lanes of float64
        inner = delta * np.float32(dots[j]) + lo * np.float32(sums[j]) - hs
        key = a[j] + b[j] * inner + off[cid[j]]
        out[j] = key
        hits += key < lim
    return hits


@jit(parallel=True)
def asym_topk(
    planes_t, assign, A16, B16, scales, q_planes, q_par, off, h, k, block, keys_out, pos_out
):
    """Top k (smallest keys) of each query over every item, by id.

    Parameters
    ----------
    planes_t : uint64 (nb, n_words, n)
    assign : uint8 (n,)
        Each item's centroid.
    A16, B16 : uint16 (n,)
        Per-item factors of the estimate, half floats, times ``scales[0]``, ``scales[1]``.
    q_planes : uint64 (n_q, qb, n_words)
        The quantized queries' bit planes.
    q_par : float64 (n_q, 3)
        ``delta, lo, sum_q`` of each quantized query.
    off : float64 (n_q, n_centroids)
        The exact per (query, centroid) part of the key.
    h : float
        Offset of the code grid, ``(2**nb - 1) / 2``.
    keys_out, pos_out : (n_q, k) arrays, filled with padding on entry.
    """
    n_q = q_planes.shape[0]
    n = planes_t.shape[2]
    tile = _tile_items(planes_t.shape[1], planes_t.shape[0])
    cap = 2 * k + 64
    n_blocks = (n_q + block - 1) // block
    for b in prange(n_blocks):
        q0 = b * block
        c_n = min(block, n_q - q0)
        cand_k = np.empty((c_n, cap), dtype=np.float32)
        cand_i = np.empty((c_n, cap), dtype=np.int64)
        count = np.zeros(c_n, dtype=np.int64)
        lim = np.full(c_n, np.inf, dtype=np.float32)
        dots = np.empty(tile, dtype=np.int64)
        sums = np.empty(tile, dtype=np.int64)
        tkeys = np.empty(tile, dtype=np.float32)
        bits = np.empty(tile, dtype=np.uint32)
        fa = np.empty(tile, dtype=np.float32)
        fb = np.empty(tile, dtype=np.float32)
        for t0 in range(0, n, tile):
            t1 = min(t0 + tile, n)
            m = t1 - t0
            tile_code_sums(planes_t, t0, t1, sums)
            decode_half(A16, t0, t1, scales[0], bits, fa)
            decode_half(B16, t0, t1, scales[1], bits, fb)
            for r in range(c_n):
                q = q0 + r
                tile_dots(planes_t, q_planes[q], t0, t1, dots)
                lr = lim[r]
                hits = _tile_keys(fa, fb, dots, sums, assign, t0, m, q_par[q], h, off[q], lr, tkeys)
                if hits == 0:
                    continue
                n_c = count[r]
                for j in range(m):
                    key = tkeys[j]
                    if key < lr:
                        cand_k[r, n_c] = key
                        cand_i[r, n_c] = t0 + j
                        n_c += 1
                        if n_c == cap:
                            lr = _cut(cand_k[r], cand_i[r], n_c, k)
                            n_c = k
                count[r] = n_c
                lim[r] = lr
        for r in range(c_n):
            cnt = count[r]
            order = np.argsort(cand_k[r, :cnt], kind="mergesort")
            for p in range(min(k, cnt)):
                keys_out[q0 + r, p] = cand_k[r, order[p]]
                pos_out[q0 + r, p] = cand_i[r, order[p]]


@jit(parallel=True)
def asym_keys_at(planes_t, assign, A16, B16, scales, q_planes, q_par, off, h, pos, out):
    """Keys of given items (ids ``pos``, shape (n_q, C); -1 = none) for each query."""
    n_q, n_cand = pos.shape
    nb, n_words = planes_t.shape[0], planes_t.shape[1]
    qb = q_planes.shape[1]
    for q in prange(n_q):
        bits = np.empty(1, dtype=np.uint32)
        fa = np.empty(1, dtype=np.float32)
        fb = np.empty(1, dtype=np.float32)
        for t in range(n_cand):
            i = pos[q, t]
            if i < 0:
                out[q, t] = np.inf
                continue
            dot = np.int64(0)
            s = np.int64(0)
            for p in range(nb):
                for w in range(n_words):
                    a = planes_t[p, w, i]
                    s += np.int64(popcount(a)) << (nb - 1 - p)
                    for jq in range(qb):
                        dot += np.int64(popcount(a & q_planes[q, jq, w])) << (nb - 1 - p + jq)
            decode_half(A16, i, i + 1, scales[0], bits, fa)
            decode_half(B16, i, i + 1, scales[1], bits, fb)
            par = q_par[q]
            key = fa[0] + fb[0] * (par[0] * dot + par[1] * s - h * par[2]) + off[q, assign[i]]
            out[q, t] = key


@jit(parallel=True)
def best_grid_codes(a, bits, out):
    """Extended RaBitQ codes: per row, the grid code of ``bits`` bits nearest in angle.

    ``a`` (n, d) holds the absolute values of unit rows. A dimension's magnitude level is
    ``k_i in 0 .. 2**(bits - 1) - 1`` (reconstruction ``k_i + 0.5``, sign from the row); the
    codes reachable by rescaling, ``k_i = min(K, floor(t * a_i))``, change only at
    ``t = k / a_i``, so every one of them is visited in order of ``t`` while the cosine with
    the row is updated incrementally, and the best is kept (exact, as the paper's search).
    ``out`` (n, d) receives the levels ``k_i``.
    """
    n, d = a.shape
    K = (1 << (bits - 1)) - 1
    for r in prange(n):
        row = a[r]
        n_ev = 0
        ev_t = np.empty(d * K, dtype=np.float64)
        ev_i = np.empty(d * K, dtype=np.int64)
        for i in range(d):
            if row[i] > 0:
                for kk in range(1, K + 1):
                    ev_t[n_ev] = kk / row[i]
                    ev_i[n_ev] = i
                    n_ev += 1
        order = np.argsort(ev_t[:n_ev], kind="mergesort")
        num = 0.5 * row.sum()
        den2 = 0.25 * d
        best = num / np.sqrt(den2)
        best_p = -1
        lev = np.zeros(d, dtype=np.int64)
        for p in range(n_ev):
            i = ev_i[order[p]]
            lev[i] += 1
            num += row[i]
            den2 += 2.0 * lev[i]
            cos = num / np.sqrt(den2)
            if cos > best:
                best = cos
                best_p = p
        out[r, :] = 0
        for p in range(best_p + 1):
            out[r, ev_i[order[p]]] += 1


@jit(parallel=True)
def quantize_queries(Yq, C, qb, random, noise, planes, par):
    """Each query relative to each centroid, quantized to ``qb`` bits, as bit planes.

    ``planes`` (n_q, n_c, qb, n_words) receives plane ``j`` (weight ``2**j``) of the levels
    ``floor((q_c - lo) / delta + r)`` with ``r = noise[q, c, i]`` when ``random`` else 0.5;
    ``par[q, c]`` receives ``delta, lo, sum of the quantized q_c``.
    """
    n_q, D = Yq.shape
    n_c = C.shape[0]
    levels = (1 << qb) - 1
    for q in prange(n_q):
        qc = np.empty(D)
        uq = np.empty(D, dtype=np.int64)
        for c in range(n_c):
            lo, hi = np.inf, -np.inf
            for i in range(D):
                v = Yq[q, i] - C[c, i]
                qc[i] = v
                lo = min(lo, v)
                hi = max(hi, v)
            delta = (hi - lo) / levels if hi > lo else 1.0
            total = 0
            for i in range(D):
                r = noise[q, c, i] if random else 0.5
                u = min(levels, max(0, int(np.floor((qc[i] - lo) / delta + r))))
                uq[i] = u
                total += u
            for j in range(qb):
                for w in range(planes.shape[3]):
                    word = np.uint64(0)
                    for b in range(min(64, D - 64 * w)):
                        word |= np.uint64((uq[64 * w + b] >> j) & 1) << np.uint64(b)
                    planes[q, c, j, w] = word
            par[q, c, 0] = delta
            par[q, c, 1] = lo
            par[q, c, 2] = delta * total + D * lo


def topk(layout, q_planes, q_par, off, h, k):
    """Run :func:`asym_topk` on ``layout = (planes, A16, B16, assign, scales)``; fresh
    padded ``(keys, ids)`` arrays."""
    planes, A16, B16, assign, scales = layout
    n_q = q_planes.shape[0]
    keys = np.full((n_q, k), np.inf, dtype=np.float32)
    pos = np.full((n_q, k), -1, dtype=np.int64)
    with thread_limit(None, parallel_kernels=True):  # H2Q_NUM_THREADS, when set
        block = query_block(n_q)
        asym_topk(
            planes, assign, A16, B16, scales, q_planes, q_par, off, float(h), k, block, keys, pos
        )
    return keys, pos


def keys_at(layout, q_planes, q_par, off, h, pos):
    """Run :func:`asym_keys_at`; float64 keys of shape ``pos.shape``."""
    planes, A16, B16, assign, scales = layout
    out = np.empty(pos.shape, dtype=np.float64)
    with thread_limit(None, parallel_kernels=True):
        asym_keys_at(planes, assign, A16, B16, scales, q_planes, q_par, off, float(h), pos, out)
    return out


def grid_levels(a: np.ndarray, bits: int) -> np.ndarray:
    """Run :func:`best_grid_codes`; levels ``k_i`` of shape ``a.shape``, int64."""
    out = np.empty(a.shape, dtype=np.int64)
    with thread_limit(None, parallel_kernels=True):
        best_grid_codes(np.ascontiguousarray(a, dtype=np.float64), int(bits), out)
    return out
