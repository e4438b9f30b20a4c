"""The exact chunked numpy scan (internal): the pure-numpy back end of the flat index.

See :mod:`h2q.search.flat` for the ranking rule it implements.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .._popcount import KernelScratch, block_distances, iter_distance_blocks, to_words
from ._common import feature_distances, feature_distances_block, same_as_rowwise
from ._jit import numba_available
from ._pad import PAD_DISTANCE, PAD_ID

#: ``uint64`` elements of the scratch block of one scan step (2 MiB).
_SCAN_BLOCK_WORDS = 1 << 18
#: float32 elements of one block of feature distances of a whole-database ranking (256 KiB).
_FEATURE_BLOCK = 1 << 16
#: Candidates beyond ``4 * n_queries * k`` tolerated before dropping those that fell behind.
_PRUNE_SLACK = 1 << 16


class Scan:
    """Exact chunked numpy scan over a fixed database (internal).

    Holds the codes as word-major ``uint64`` words (shape ``(n_words, n_db)``, each word
    contiguous) and, optionally, the normalised features.
    """

    def __init__(self, codes: np.ndarray, n_bits: int, features: np.ndarray | None) -> None:
        self.n_db = len(codes)
        self.n_bits = n_bits
        self.words_t = np.ascontiguousarray(to_words(codes).T)
        self.features = features
        self.features_t: np.ndarray | None = None  # transposed, for whole-database rankings
        self.block_exact: bool | None = None  # whether feature_distances_block matches numpy
        # Distances fit in uint8 up to 254 bits; limits go up to n_bits + 1.
        self.dist_dtype = np.uint8 if n_bits <= 254 else np.uint16

    def topk(
        self, query_codes: np.ndarray, k: int, query_features: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        parts = list(self.iter_topk(to_words(query_codes), k, query_features, None))
        return np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])

    def iter_topk(
        self,
        q_words: np.ndarray,
        k: int,
        query_features: np.ndarray | None,
        chunk_size: int | None,
    ) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
        """Top k of each query (packed as ``uint64`` words, :func:`to_words`), a chunk of
        queries at a time."""
        n_q = len(q_words)
        if k >= self.n_db:
            yield from self._iter_full(q_words, k, query_features, chunk_size)
            return
        if chunk_size is None:
            chunk_size = max(8, min(256, _SCAN_BLOCK_WORDS // max(self.n_db, 1)))
        chunk_size = min(chunk_size, n_q)
        block = max(1024, _SCAN_BLOCK_WORDS // chunk_size)
        scratch = KernelScratch(chunk_size, min(block, self.n_db), q_words.shape[1] > 1)
        dist_buf = np.empty(chunk_size * min(block, self.n_db), dtype=self.dist_dtype)
        mask_buf = np.empty(dist_buf.shape, dtype=np.bool_)
        for start in range(0, n_q, chunk_size):
            stop = min(start + chunk_size, n_q)
            rows, ids, dists, tau = self._candidates(
                q_words[start:stop],
                k,
                keep_ties=query_features is not None,
                block=block,
                buffers=(dist_buf, mask_buf, scratch),
            )
            if query_features is None:
                D, I = _first_k_per_row(rows, ids, dists, stop - start, k, self.n_bits + 1)
            else:
                keep = dists <= tau[rows]
                D, I = self._rerank(
                    rows[keep], ids[keep], dists[keep], query_features[start:stop], k
                )
            yield slice(start, stop), D, I

    def _candidates(
        self,
        q_words: np.ndarray,
        k: int,
        *,
        keep_ties: bool,
        block: int,
        buffers: tuple[np.ndarray, np.ndarray, KernelScratch],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Scan the database once; return a superset of each row's top-k candidates.

        Returns ``(rows, ids, dists, tau)`` with ``tau[r]`` the exact k-th smallest distance
        of row ``r``. The candidates include every item of the top k under the (distance,
        id) rule, and, when ``keep_ties``, every item with distance ``<= tau[r]``.
        """
        dist_buf, mask_buf, scratch = buffers
        c = len(q_words)
        n_vals = self.n_bits + 1
        hist = np.zeros((c, n_vals), dtype=np.int64)
        # An item is admitted when its distance is < limit[r]. Until a row holds k items
        # everything is admitted; then only items closer than the current k-th (or as close,
        # when ties must all compete). Ids are scanned in increasing order, so an item at
        # the current k-th distance can never beat the earlier ones in the (distance, id)
        # order: dropping it is exact, as in faiss's heap.
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        n_kept = 0
        for b0 in range(0, self.n_db, block):
            b1 = min(b0 + block, self.n_db)
            m = b1 - b0
            # Contiguous views of flat buffers: 1-D nonzero is ~10x faster than 2-D.
            dist = dist_buf[: c * m].reshape(c, m)
            block_distances(q_words, self.words_t, b0, b1, dist, scratch)
            if b0 == 0:
                # Count the whole first block, so that its items are admitted against a
                # real threshold instead of all being kept and pruned later.
                offsets = np.arange(0, c * n_vals, n_vals)[:, None]
                hist += np.bincount((dist + offsets).ravel(), minlength=c * n_vals).reshape(
                    c, n_vals
                )
                tau, limit = self._thresholds(hist, k, keep_ties=True)
                # Within the first block, every item at the k-th distance may still be needed.
            mask = np.less(dist, limit[:, None], out=mask_buf[: c * m].reshape(c, m))
            flat = np.flatnonzero(mask)
            if not flat.size:
                continue
            r, j = np.divmod(flat, m)
            d = dist.ravel()[flat]
            parts.append((r, j + b0, d))
            n_kept += r.size
            if b0:
                hist += np.bincount(r * n_vals + d, minlength=c * n_vals).reshape(c, n_vals)
            tau, limit = self._thresholds(hist, k, keep_ties)
            if n_kept > 4 * c * k + _PRUNE_SLACK and len(parts) > 1:
                parts = [_prune(parts, tau)]
                n_kept = parts[0][0].size
        rows, ids, dists = (np.concatenate(x) for x in zip(*parts, strict=True))
        return rows, ids, dists, tau

    def _rerank(
        self,
        rows: np.ndarray,
        ids: np.ndarray,
        dists: np.ndarray,
        query_features: np.ndarray,
        k: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        return rerank(rows, ids, dists, self.features, query_features, k, self.n_bits)

    def _order(self, dists: np.ndarray, fd: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return feature_order(dists, fd, ids, self.n_bits, self.n_db)

    def _thresholds(
        self, hist: np.ndarray, k: int, keep_ties: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Current k-th distance per row (``n_bits`` while a row holds fewer than k items)
        and the admission limit (an item is admitted when its distance is < limit)."""
        cum = np.cumsum(hist, axis=1)
        full = cum[:, -1] >= k
        tau = np.where(full, (cum < k).sum(axis=1), self.n_bits)
        limit = np.where(full, tau + 1 if keep_ties else tau, self.n_bits + 1)
        return tau, limit.astype(self.dist_dtype)

    def _iter_full(
        self,
        q_words: np.ndarray,
        k: int,
        query_features: np.ndarray | None,
        chunk_size: int | None,
    ) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
        """Rank the whole database (k >= n_db), padding to k."""
        n = self.n_db
        for start, stop, dist, order in self.iter_order(q_words, query_features, chunk_size):
            c = stop - start
            ranked = self._ranked_distances(dist, order)
            if k == n:  # nothing to pad: the sort's own arrays (no copy into padded ones)
                yield slice(start, stop), ranked, order
                continue
            D = np.full((c, k), PAD_DISTANCE, dtype=np.int32)
            I = np.full((c, k), PAD_ID, dtype=np.int64)
            I[:, :n] = order
            D[:, :n] = ranked
            yield slice(start, stop), D, I

    def _ranked_distances(self, dist: np.ndarray, order: np.ndarray) -> np.ndarray:
        """Int32 ``dist`` gathered through ``order`` (which ranks by distance first): the
        rows sorted by a compiled counting sort, or numpy's gather."""
        if numba_available() and dist.dtype.kind == "u":
            from ._feature_kernels import sorted_distances

            ranked = np.empty(dist.shape, dtype=np.int32)
            sorted_distances(dist, self.n_bits + 1, ranked)
            return ranked
        return np.take_along_axis(dist, order, axis=1).astype(np.int32)

    def iter_order(
        self, q_words: np.ndarray, query_features: np.ndarray | None, chunk_size: int | None
    ) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """``(start, stop, dist, order)`` for each chunk of queries: the Hamming distances to
        every item (reused between yields) and the positions that sort each row by the
        ranking rule (a new array each time)."""
        for start, stop, dist in iter_distance_blocks(
            q_words, self.words_t, chunk_size, self.dist_dtype
        ):
            if query_features is None:
                # Stable sort: equal distances keep increasing ids (a radix sort for uint8).
                order = np.argsort(dist, axis=1, kind="stable")
            else:
                order = np.empty(dist.shape, dtype=np.int64)
                self._full_feature_order(dist, query_features[start:stop], order)
            yield start, stop, dist, order

    def _full_feature_order(
        self, dist: np.ndarray, query_features: np.ndarray, order: np.ndarray
    ) -> None:
        """``order``: the positions that sort each row of ``dist`` by (distance, feature
        distance, id), the order of :func:`feature_order`, computed for blocks of rows."""
        n, c = self.n_db, len(dist)
        id_bits = max(1, (n - 1).bit_length())
        if self.features.dtype == np.float32 and self.n_bits.bit_length() + 31 + id_bits <= 63:
            if self.features_t is None:
                self.features_t = np.ascontiguousarray(self.features.T)
            rows = max(1, _FEATURE_BLOCK // n)
            for r0 in range(0, c, rows):
                r1 = min(r0 + rows, c)
                fd = feature_distances_block(self.features_t, query_features[r0:r1])
                if self.block_exact is None:  # numpy's summation order, checked once
                    self.block_exact = same_as_rowwise(self.features, query_features[r0], fd[0])
                if not self.block_exact:
                    break
                _sort_rows(dist[r0:r1], fd, id_bits, self.n_bits + 1, order[r0:r1])
            else:
                return
        buffer = np.empty_like(self.features)
        for r in range(c):
            fd = feature_distances(self.features, None, query_features[r], buffer)
            order[r] = self._order(dist[r], fd, np.arange(n))


def _sort_rows(
    dist: np.ndarray, fd: np.ndarray, id_bits: int, n_vals: int, out: np.ndarray
) -> None:
    """``out``: the positions that sort each row by (distance, feature distance, id), the
    order of :func:`feature_order`: a compiled radix sort, or numpy's sort of the packed keys
    (unique, so sorting the keys themselves gives the same order; the low bits are ids)."""
    if numba_available() and dist.shape[1] < 1 << 32:
        from ._feature_kernels import radix_order

        radix_order(dist, fd.view(np.uint32), n_vals, out)
        return
    key = _order_keys(dist, fd, id_bits)
    key.sort(axis=1)
    np.bitwise_and(key, (1 << id_bits) - 1, out=out)


def _order_keys(dist: np.ndarray, fd: np.ndarray, id_bits: int) -> np.ndarray:
    """:func:`feature_order`'s packed int64 keys of a block of rows (ids are column indices)."""
    key = fd.view(np.uint32).astype(np.int64) << id_bits
    key |= dist.astype(np.int64) << (31 + id_bits)
    key |= np.arange(dist.shape[1])
    return key


def _prune(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], tau: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, ids, dists = (np.concatenate(x) for x in zip(*parts, strict=True))
    # Items beyond the current k-th distance can no longer enter the top k. (Items at the
    # k-th distance are kept in both modes: without ties, the earliest of them still count.)
    keep = dists <= tau[rows]
    return rows[keep], ids[keep], dists[keep]


def _first_k_per_row(
    rows: np.ndarray,
    ids: np.ndarray,
    dists: np.ndarray,
    n_rows: int,
    k: int,
    n_vals: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Sort candidates by (row, distance, id); keep k per row, padded.

    Within each row the candidates must come in increasing id order: the sort is stable, so
    the id is the last key without being sorted on.
    """
    group = rows * n_vals + dists
    key = group.astype(np.uint16) if n_rows * n_vals <= 1 << 16 else group
    order = np.argsort(key, kind="stable")  # a radix sort for uint16
    rows, ids, dists = rows[order], ids[order], dists[order]
    starts = np.searchsorted(rows, np.arange(n_rows))
    pos = np.arange(rows.size) - starts[rows]
    take = pos < k
    D = np.full((n_rows, k), PAD_DISTANCE, dtype=np.int32)
    I = np.full((n_rows, k), PAD_ID, dtype=np.int64)
    D[rows[take], pos[take]] = dists[take]
    I[rows[take], pos[take]] = ids[take]
    return D, I


def rerank(
    rows: np.ndarray,
    ids: np.ndarray,
    dists: np.ndarray,
    features: np.ndarray,
    query_features: np.ndarray,
    k: int,
    n_bits: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Top k of each row by (distance, feature distance, id) among its candidates.

    ``rows``, ``ids``, ``dists`` list the candidates (any order); each row must hold every
    item at or below its k-th distance for the result to be exact.
    """
    c = len(query_features)
    small = rows.astype(np.uint16) if c <= 1 << 16 else rows
    by_row = np.argsort(small, kind="stable")  # a radix sort for uint16
    rows, ids, dists = rows[by_row], ids[by_row], dists[by_row]
    bounds = np.searchsorted(rows, np.arange(c + 1))
    widest = max(1, int(np.diff(bounds).max()))
    buffer = np.empty((widest, features.shape[1]), features.dtype)
    D = np.full((c, k), PAD_DISTANCE, dtype=np.int32)
    I = np.full((c, k), PAD_ID, dtype=np.int64)
    for r in range(c):
        seg_ids, seg_dists = ids[bounds[r] : bounds[r + 1]], dists[bounds[r] : bounds[r + 1]]
        fd = feature_distances(features, seg_ids, query_features[r], buffer)
        order = feature_order(seg_dists, fd, seg_ids, n_bits, len(features))[:k]
        D[r, : len(order)] = seg_dists[order]
        I[r, : len(order)] = seg_ids[order]
    return D, I


def feature_order(
    dists: np.ndarray, fd: np.ndarray, ids: np.ndarray, n_bits: int, n_db: int
) -> np.ndarray:
    """Positions that sort items by (Hamming distance, feature distance, id)."""
    id_bits = max(1, (n_db - 1).bit_length())
    if fd.dtype == np.float32 and n_bits.bit_length() + 31 + id_bits <= 63:
        # Non-negative float32 values order like their bit patterns (31 bits, sign 0), so
        # the three keys pack into one unique int64, and a plain (unstable, fast) sort
        # gives the exact lexicographic order.
        key = dists.astype(np.int64) << (31 + id_bits)
        key |= fd.view(np.uint32).astype(np.int64) << id_bits
        key |= ids
        return np.argsort(key)
    return np.lexsort((ids, fd, dists))
