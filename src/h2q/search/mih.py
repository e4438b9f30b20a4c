"""Exact multi-index hashing: k-NN and range search that touch a small part of the database.

Norouzi, Punjani and Fleet ("Fast Exact Search in Hamming Space with Multi-Index Hashing",
CVPR 2012 / TPAMI 2014): each code is cut into ``m`` disjoint substrings and each substring is
indexed in a table of buckets keyed by its value. By the pigeonhole principle an item within
Hamming distance ``r`` of a query is within ``r // m`` of it in at least one substring, so probing
small Hamming balls around the query's substrings finds every near item, and a bound on the
items not yet seen tells when the k nearest are final. Results are exact and identical to the
flat scan, tie rule included (equal distances: smaller id first, also at the k-th boundary).

The number of substrings follows the paper's analysis, ``m ~ n_bits / log2(n)`` (each
substring then holds about ``log2(n)`` bits, so a bucket holds about one item of uniformly
spread codes); it can be overridden. When probing would cost more than a scan (codes spread
uniformly, a large k, or a large radius), the index measures that on a sample of the queries
and scans instead, so it is never much slower than :class:`~h2q.search.HammingIndex`.

The probing kernels are compiled with numba (the ``fast`` extra); without numba, searches use
the numpy scan (exact, same results) unless ``scan_fallback=False`` forces the pure-Python
probes (only sensible for small tests).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from .._io import load_state, save_state
from .._popcount import to_words
from .._threads import thread_limit
from .._validation import check_positive_int
from ..codes import check_codes, check_n_bits
from ..exceptions import FileFormatError
from ._common import (
    RangeSearchResult,
    check_query,
    flat_range_search,
    joined_chunks,
    normalised_features,
    query_features_for,
)
from ._jit import numba_available
from ._pad import PAD_DISTANCE, PAD_ID
from ._scan import Scan, rerank
from .base import BaseIndex
from .rescore import Metric, search_and_rescore

__all__ = ["MultiIndexHammingIndex"]

_FILE_KIND = "MultiIndexHammingIndex"
_FILE_VERSION = 1
#: Longest substring: its table has 2**24 + 1 offsets (128 MiB), the largest we allow.
MAX_SUBSTRING_BITS = 24
#: Cost of one probe step (a bucket lookup or a candidate check: random memory accesses) in
#: units of one 64-bit word of the flat scan (a vectorised XOR + popcount + compare). Measured
#: on uniform and clustered codes (10^6 and 10^7 x 64 bits, 10^6 x 256 bits, k = 10 and 100,
#: queries probed without a budget): 140-240 ns per step against 0.18-0.60 ns per scanned word
#: of the compiled scan in the same process, ratios 310-990, median about 600.
PROBE_COST_IN_SCAN_WORDS = 600
#: Probe steps below which a search runs in the calling thread: starting the parallel region
#: (waking the other threads) took up to 16 ms on the loaded 2-core machine, about what
#: 50,000 steps (150-250 ns each) take on one core.
SERIAL_WORK = 50_000
#: Most queries probed first, before deciding between probing and scanning a batch (at most
#: one in :data:`_SAMPLE_EVERY` queries, so the sample costs at most a few percent of a scan).
_SAMPLE_QUERIES = 16
_SAMPLE_EVERY = 64
#: Queries probed in the first block after the sample; each later block is as large as all
#: blocks before it (few kernel calls), and after each block the decision is taken again.
_PROBE_BLOCK = 128
#: A batch is scanned once the queries probed so far cost more than this share of their
#: budget each (a scan per query; :data:`_SAMPLE_BUDGET_SHARE` of a scan in the sample).
_SCAN_SHARE = 0.8
_SAMPLE_BUDGET_SHARE = 0.5


class MultiIndexHammingIndex(BaseIndex):
    """Exact Hamming k-NN and range search by multi-index hashing.

    Parameters
    ----------
    n_bits : int
        Bits per code; codes are packed ``uint8`` of shape ``(n, ceil(n_bits / 8))``.
    m : int, optional
        Number of substrings. By default ``round(n_bits / log2(n))`` for the ``n`` items
        indexed when the tables are built (at the first search after an ``add``), at least
        ``ceil(n_bits / 24)`` (a table has ``2**bits`` buckets) and at most ``n_bits``.
    scan_fallback : bool, default True
        Scan instead of probing when probing would cost more (measured on a sample of each
        batch of queries, and per query against a budget of one scan). ``False`` always
        probes (for tests; slow on spread-out codes).

    Attributes
    ----------
    n_bits, code_size : int
    ntotal : int
        Number of searchable items (added and not removed). Ids are assigned in order of
        addition and never reused; removed ids leave gaps.

    Examples
    --------
    >>> index = MultiIndexHammingIndex(64)
    >>> index.add(db_codes)                          # doctest: +SKIP
    >>> D, I = index.search(query_codes, k=100)       # doctest: +SKIP
    >>> lims, D, I = index.range_search(query_codes, 2)  # doctest: +SKIP
    """

    def __init__(self, n_bits: int, m: int | None = None, *, scan_fallback: bool = True) -> None:
        self.n_bits = check_n_bits(n_bits)
        if m is not None:
            m = check_positive_int(m, "m")
            if m > self.n_bits or math.ceil(self.n_bits / m) > MAX_SUBSTRING_BITS:
                raise ValueError(
                    f"m={m} substrings of a {self.n_bits}-bit code is out of range: pass m "
                    f"between {math.ceil(self.n_bits / MAX_SUBSTRING_BITS)} and {self.n_bits} "
                    "(or None for the paper's choice)."
                )
        self.m = m
        self.scan_fallback = bool(scan_fallback)
        self.code_size = (self.n_bits + 7) // 8
        self.reset()

    def __repr__(self) -> str:
        return (
            f"MultiIndexHammingIndex(n_bits={self.n_bits}, m={self.substrings}, "
            f"ntotal={self.ntotal})"
        )

    # -- contents ----------------------------------------------------------------------------

    @property
    def ntotal(self) -> int:
        """Number of searchable items."""
        return self._n_alive

    @property
    def has_features(self) -> bool:
        """Whether features were added with the codes (so that searches can re-rank)."""
        return self._n_features is not None

    @property
    def substrings(self) -> int:
        """The number of substrings used (or that the next build will use)."""
        return self.m if self.m is not None else auto_substrings(self.n_bits, self._n_alive)

    def reset(self) -> None:
        """Remove every item and forget assigned ids."""
        self._word_chunks: list[np.ndarray] = []
        self._feature_chunks: list[np.ndarray] = []
        self._n_features: int | None = None
        self._feature_dtype: np.dtype | None = None
        self._alive = np.zeros(0, dtype=np.bool_)
        self._n_alive = 0
        self._invalidate()

    def add(self, codes: Any, features: Any = None) -> None:
        """Append codes (and optionally features for the exact re-ranking of ties).

        The i-th code gets id ``n_ids + i`` where ``n_ids`` counts every id ever assigned
        (removed ones included). Tables are rebuilt at the next search.

        Parameters
        ----------
        codes : numpy.ndarray of shape (n, code_size), dtype uint8
        features : array of shape (n, n_features), optional
            As in :meth:`h2q.HammingIndex.add`: give them in every call or in none.
        """
        codes = check_codes(codes, "codes", n_bits=self.n_bits)
        if (features is None) != (self._n_features is None) and len(self._alive):
            raise ValueError(
                "give features in every call to add() or in none (earlier calls "
                f"{'did' if self._n_features is not None else 'did not'}); reset() to start over."
            )
        if features is not None:
            features = normalised_features(
                features, "features", len(codes), self._n_features, self._feature_dtype
            )
            self._n_features, self._feature_dtype = features.shape[1], features.dtype
            self._feature_chunks.append(features)
        if len(self._alive) + len(codes) >= 1 << 32:
            raise ValueError("MultiIndexHammingIndex holds at most 2**32 - 1 ids.")
        self._word_chunks.append(np.array(to_words(codes), copy=True))
        self._alive = np.concatenate([self._alive, np.ones(len(codes), dtype=np.bool_)])
        self._n_alive += len(codes)
        self._invalidate()

    def remove_ids(self, ids: Any) -> int:
        """Remove items by id; return how many were present (unknown ids are ignored)."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError(
                f"ids must be a 1-D array of integer ids, got {ids.dtype} {ids.shape}."
            )
        ids = ids[(ids >= 0) & (ids < len(self._alive))].astype(np.int64)
        present = np.unique(ids[self._alive[ids]])
        if present.size:
            self._alive = self._alive.copy()  # never modify an array a kernel may share
            self._alive[present] = False
            self._n_alive -= int(present.size)
            self._scan_state = None  # the tables stay valid: probes skip removed items
        return int(present.size)

    # -- search ------------------------------------------------------------------------------

    def search(
        self,
        query_codes: Any,
        k: int,
        query_features: Any = None,
        *,
        rescore: int | None = None,
        query_vectors: Any = None,
        database_vectors: Any = None,
        metric: Metric = "ip",
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest items of each query; identical to :meth:`h2q.HammingIndex.search`.

        Parameters and returns are those of :meth:`h2q.HammingIndex.search` (with
        ``database_vectors`` holding one row per assigned id, removed ones included).
        """
        query_codes, k = check_query(query_codes, self.n_bits, self._n_alive, k=k)
        if rescore is not None:
            return search_and_rescore(
                lambda kk: self.search(query_codes, kk, query_features),
                k,
                rescore,
                query_vectors,
                database_vectors,
                metric,
                len(self._alive),
            )
        q_words = np.ascontiguousarray(to_words(query_codes))
        if query_features is not None:
            return self._search_reranked(query_codes, q_words, k, query_features)
        return self._knn(query_codes, q_words, k)

    def range_search(self, query_codes: Any, radius: int) -> RangeSearchResult:
        """Every item within Hamming distance ``radius`` of each query.

        Returns
        -------
        RangeSearchResult
            ``(lims, D, I)``, faiss's layout: query ``q``'s results are at
            ``lims[q]:lims[q + 1]``, ordered by (distance, id). Feed them to
            :func:`h2q.evaluation.metrics.within_radius_metrics` for P@H<=r and mAP@H<=r.
        """
        query_codes, radius = check_query(query_codes, self.n_bits, self._n_alive, radius=radius)
        radii = np.full(len(query_codes), radius, dtype=np.int64)
        return self._range(query_codes, np.ascontiguousarray(to_words(query_codes)), radii)

    # -- persistence and size ----------------------------------------------------------------

    def memory_bytes(self) -> int:
        """Bytes the index holds once its tables are built (codes, alive mask, tables, features).

        The tables take ``m * 4`` bytes per item (ids) plus ``4 * 2**bits`` per substring
        (bucket offsets); the codes ``8 * ceil(n_bits / 64)`` bytes per item.
        """
        n = len(self._alive)
        m = self.substrings
        lengths = substring_lengths(self.n_bits, m)
        tables = m * n * 4 + sum(4 * ((1 << int(b)) + 1) for b in lengths) + 3 * 8 * m
        words = n * 8 * ((self.n_bits + 63) // 64)
        features = sum(f.nbytes for f in self._feature_chunks)
        return int(words + n + tables + features)

    def save(self, path: str | os.PathLike) -> None:
        """Write the index (codes, removed ids, features, settings) atomically to ``path``.

        The tables are rebuilt on load (a linear-time counting sort).
        """
        words = self._words()
        codes = (
            words.view(np.uint8)[:, : self.code_size]
            if len(words)
            else np.zeros((0, self.code_size), np.uint8)
        )
        arrays = {"codes": np.ascontiguousarray(codes), "alive": self._alive}
        if self._n_features is not None:
            arrays["features"] = self._features()
        meta = {
            "n_bits": self.n_bits,
            "m": self.m,
            "scan_fallback": self.scan_fallback,
            "n_features": self._n_features,
            "n_ids": len(self._alive),
        }
        save_state(path, _FILE_KIND, _FILE_VERSION, arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> MultiIndexHammingIndex:
        """Read an index written by :meth:`save` (raises ``FileFormatError`` on a bad file)."""
        arrays, meta = load_state(path, _FILE_KIND, _FILE_VERSION)
        try:
            index = cls(meta["n_bits"], meta["m"], scan_fallback=bool(meta["scan_fallback"]))
            codes, alive = arrays["codes"], arrays["alive"]
            features = arrays.get("features")
            ok = (
                alive.dtype == np.bool_
                and codes.dtype == np.uint8
                and alive.shape == (meta["n_ids"],)
                and codes.shape == (meta["n_ids"], index.code_size)
                and (features is None) == (meta["n_features"] is None)
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FileFormatError(
                f"{path} is not a valid MultiIndexHammingIndex file ({type(exc).__name__}: "
                f"{exc}). Re-create it with MultiIndexHammingIndex.save()."
            ) from exc
        if not ok:
            raise FileFormatError(
                f"{path} holds inconsistent MultiIndexHammingIndex data; re-create it with "
                "MultiIndexHammingIndex.save()."
            )
        if len(codes):
            try:
                index.add(codes, features)
            except (TypeError, ValueError) as exc:  # e.g. NaN features in a crafted file
                raise FileFormatError(
                    f"{path} holds invalid MultiIndexHammingIndex data ({exc}); re-create it "
                    "with MultiIndexHammingIndex.save()."
                ) from exc
            index._alive = alive.copy()
            index._n_alive = int(alive.sum())
        return index

    # -- internals ---------------------------------------------------------------------------

    def _invalidate(self) -> None:
        self._tables: tuple[np.ndarray, ...] | None = None
        self._scan_state: tuple[np.ndarray, np.ndarray] | None = None

    def _words(self) -> np.ndarray:
        if len(self._word_chunks) != 1:
            n_words = (self.n_bits + 63) // 64
            joined = (
                np.concatenate(self._word_chunks)
                if self._word_chunks
                else np.zeros((0, n_words), np.uint64)
            )
            self._word_chunks = [joined]
        return self._word_chunks[0]

    def _features(self) -> np.ndarray | None:
        return None if self._n_features is None else joined_chunks(self._feature_chunks)

    def _get_tables(self) -> tuple[np.ndarray, ...]:
        if self._tables is None:
            self._tables = build_tables(self._words(), self.n_bits, self.substrings)
        return self._tables

    def _get_scan(self) -> tuple[np.ndarray, np.ndarray]:
        """Word-major codes of the searchable items and their ids, for the scan."""
        if self._scan_state is None:
            ids = np.flatnonzero(self._alive)
            words = self._words()
            words_t = np.ascontiguousarray((words if len(ids) == len(words) else words[ids]).T)
            self._scan_state = (words_t, ids)
        return self._scan_state

    def _probing(self) -> bool:
        return numba_available() or not self.scan_fallback

    def _scan_knn(self, query_codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        words_t, ids = self._get_scan()
        if numba_available():
            from . import _kernels

            D, I = _kernels.topk(words_t, to_words(query_codes), k, self.n_bits)
        else:
            codes = np.ascontiguousarray(words_t.T).view(np.uint8)[:, : self.code_size]
            D, I = Scan(codes, self.n_bits, None).topk(query_codes, k, None)
        # ids increase with position, so the (distance, id) order is kept.
        return D, np.where(I == PAD_ID, PAD_ID, ids[np.maximum(I, 0)])

    def _knn(
        self, query_codes: np.ndarray, q_words: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Probe, or scan where probing costs more (decided on a sample, then per query)."""
        if not self._probing():
            return self._scan_knn(query_codes, k)
        n_q = len(q_words)
        D = np.full((n_q, k), PAD_DISTANCE, dtype=np.int32)
        I = np.full((n_q, k), PAD_ID, dtype=np.int64)
        over = np.zeros(n_q, dtype=np.bool_)
        work = np.zeros(n_q, dtype=np.int64)
        parts = (D, I, over, work)
        if not self.scan_fallback:
            self._probe_knn(q_words, slice(0, n_q), k, np.iinfo(np.int64).max, parts)
        else:
            self._probe_or_scan(q_words, k, parts)
        if over.any():
            D[over], I[over] = self._scan_knn(query_codes[over], k)
        return D, I

    def _probe_or_scan(self, q_words: np.ndarray, k: int, parts) -> None:
        """Probe block by block while probing pays; flag the rest (and any query past one
        scan's budget) in ``over``, to be scanned.

        The first block is a small sample; after each block the mean probing work of all
        queries probed so far is compared with a scan's cost, so that a batch of spread-out
        codes is handed to the scan after a few percent of a scan's time.
        """
        n_q = len(q_words)
        over, work = parts[2], parts[3]
        scan_units = self._scan_units()
        # The sample gets half a scan per query: it runs before anything is known
        # (on spread-out codes every sample query uses its whole budget, in one thread).
        budget = max(1, int(_SAMPLE_BUDGET_SHARE * scan_units))
        start = 0
        size = min(_SAMPLE_QUERIES, max(1, n_q // _SAMPLE_EVERY))
        while start < n_q:
            stop = min(n_q, start + size)
            serial = (stop - start) * budget < SERIAL_WORK
            self._probe_knn(q_words, slice(start, stop), k, budget, parts, serial)
            if work[:stop].mean() > _SCAN_SHARE * budget:
                over[stop:] = True  # probing costs more than scanning for this batch
                return
            start, size = stop, max(_PROBE_BLOCK, stop)
            budget = scan_units

    def _scan_units(self) -> int:
        """A scan's cost per query, in probe steps (see ``PROBE_COST_IN_SCAN_WORDS``)."""
        scan_words = self._n_alive * ((self.n_bits + 63) // 64)
        return max(64, scan_words // PROBE_COST_IN_SCAN_WORDS)

    def _probe_knn(self, q_words, rows: slice, k: int, budget: int, parts, serial=False) -> None:
        D, I, over, work = (np.ascontiguousarray(a[rows]) for a in parts)
        args = (np.ascontiguousarray(q_words[rows]), self._words(), self._alive)
        args += (self._get_tables(), k, self.n_bits, budget)
        with thread_limit(None, parallel_kernels=True):  # H2Q_NUM_THREADS, when set
            if serial:  # no parallel region: waking threads can cost more than the work
                _mk().knn_queries(*args, 0, len(D), D, I, over, work)
            else:
                _mk().knn(*args, _n_chunks(len(D)), D, I, over, work)
        for target, value in zip(parts, (D, I, over, work), strict=True):
            target[rows] = value

    def _range(
        self, query_codes: np.ndarray, q_words: np.ndarray, radii: np.ndarray
    ) -> RangeSearchResult:
        if not self._probing() or (self.scan_fallback and not self._range_probe_pays(radii)):
            words_t, ids = self._get_scan()
            lims, D, I = flat_range_search(
                words_t, query_codes, radii, "numba" if numba_available() else "numpy"
            )
            return RangeSearchResult(lims, D, ids[I])
        tables = self._get_tables()
        n_q = len(q_words)
        counts = np.zeros(n_q, dtype=np.int64)
        lims = np.zeros(n_q + 1, dtype=np.int64)
        args = (q_words, self._words(), self._alive, tables, radii)
        serial = self._range_work(radii) < SERIAL_WORK
        with thread_limit(None, parallel_kernels=True):  # H2Q_NUM_THREADS, when set
            for fill in (False, True):
                if fill:
                    np.cumsum(counts, out=lims[1:])
                D = np.empty(lims[-1], dtype=np.int32)
                I = np.empty(lims[-1], dtype=np.int64)
                if serial:  # no parallel region: waking threads can cost more than the work
                    _mk().range_queries(*args, 0, n_q, counts, lims, D, I, fill)
                else:
                    _mk().range_probe(*args, _n_chunks(n_q), counts, lims, D, I, fill)
        return RangeSearchResult(lims, D, I)

    def _range_work(self, radii: np.ndarray) -> float:
        """Estimated probe steps of a range search (bucket lookups and candidate checks)."""
        m = self.substrings
        lengths = substring_lengths(self.n_bits, m)
        n = max(1, len(self._alive))
        work = 0.0
        for r in np.unique(radii):
            s_max = int(r) // m
            probes = sum(
                sum(math.comb(int(b), s) for s in range(min(s_max, b) + 1)) for b in lengths
            )
            # Expected bucket size of uniform codes, at least one item per probe.
            hits = sum(n / (1 << int(b)) for b in lengths) / m
            work += (radii == r).sum() * probes * (1 + hits)
        return work

    def _range_probe_pays(self, radii: np.ndarray) -> bool:
        """Whether probing the balls of ``radii`` is estimated cheaper than scanning."""
        scan_words = len(radii) * self._n_alive * ((self.n_bits + 63) // 64)
        return self._range_work(radii) * PROBE_COST_IN_SCAN_WORDS < scan_words

    def _search_reranked(
        self, query_codes: np.ndarray, q_words: np.ndarray, k: int, query_features: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact re-ranking of ties: every item at or below each row's k-th distance competes."""
        qf = query_features_for(
            query_features, len(query_codes), self._n_features, self._feature_dtype
        )
        D, I = self._knn(query_codes, q_words, k)
        radii = np.where(I[:, -1] == PAD_ID, self.n_bits, D[:, -1]).astype(np.int64)
        lims, d, ids = self._range(query_codes, q_words, radii)
        rows = np.repeat(np.arange(len(query_codes)), np.diff(lims))
        return rerank(rows, ids, d, self._features(), qf, k, self.n_bits)


def _mk() -> Any:
    """The kernel module, imported on first use (it imports numba when available)."""
    from . import _mih_kernels

    return _mih_kernels


def _n_chunks(n_queries: int) -> int:
    """Query chunks for the parallel kernels: a few per thread, each with its own marks."""
    if numba_available():
        import numba

        threads = numba.get_num_threads()
    else:
        threads = 1
    return max(1, min(n_queries, 4 * threads))


def auto_substrings(n_bits: int, n_items: int) -> int:
    """The paper's substring count ``round(n_bits / log2(n))``, kept in the allowed range."""
    m = round(n_bits / math.log2(max(n_items, 2)))
    return int(min(n_bits, max(m, math.ceil(n_bits / MAX_SUBSTRING_BITS), 1)))


def substring_lengths(n_bits: int, m: int) -> np.ndarray:
    """Bits per substring: ``n_bits`` split into ``m`` near-equal consecutive runs."""
    base, extra = divmod(n_bits, m)
    return np.array([base + (i < extra) for i in range(m)], dtype=np.int64)


def build_tables(words: np.ndarray, n_bits: int, m: int) -> tuple[np.ndarray, ...]:
    """The bucket tables of every substring: ``(sub_start, sub_len, table_start, offsets, ids)``."""
    n = len(words)
    sub_len = substring_lengths(n_bits, m)
    sub_start = np.concatenate([[0], np.cumsum(sub_len)[:-1]]).astype(np.int64)
    sizes = (np.int64(1) << sub_len) + 1
    table_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    offsets = np.empty(int(sizes.sum()), dtype=np.uint32)  # relative to each table
    bucket_ids = np.empty(m * n, dtype=np.uint32)
    keys = np.empty(n, dtype=np.int64)
    for i in range(m):
        n_buckets = 1 << int(sub_len[i])
        table = offsets[table_start[i] : table_start[i] + n_buckets + 1]
        if numba_available():
            _mk().sub_keys(words, sub_start[i], sub_len[i], keys)
            _mk().counting_sort(keys, n_buckets, i * n, table, bucket_ids)
        else:
            keys[:] = _numpy_keys(words, int(sub_start[i]), int(sub_len[i]))
            order = np.argsort(keys, kind="stable")
            bucket_ids[i * n : (i + 1) * n] = order
            table[0] = 0
            np.cumsum(np.bincount(keys, minlength=n_buckets), out=table[1:])
    return sub_start, sub_len, table_start, offsets, bucket_ids


def _numpy_keys(words: np.ndarray, start: int, length: int) -> np.ndarray:
    w, off = divmod(start, 64)
    key = words[:, w] >> np.uint64(off)
    if off + length > 64:
        key |= words[:, w + 1] << np.uint64(64 - off)
    return (key & np.uint64((1 << length) - 1)).astype(np.int64)
