"""Exact Hamming search over packed binary codes, with an optional exact re-ranking of ties.

Ranking rule (the same for every backend and function here)
-----------------------------------------------------------
Database items are ordered by increasing Hamming distance to the query; among equal
distances the smaller database id comes first. This holds everywhere, including at the k-th
boundary: when several items share the k-th distance, the ones with the smallest ids are
returned. faiss's ``IndexBinaryFlat`` follows the same rule (its scan visits ids in increasing
order and admits a new item only when it is strictly closer than the current k-th, and its
heap compares ``(distance, id)`` pairs), so the ``"faiss"`` and ``"numpy"`` backends return
identical ``(D, I)``. A cheap check of every faiss result row guards this; a row that breaks it
is recomputed with the numpy scan.

Re-ranking (the paper's protocol): when continuous features are given for the database and
the queries, items are ordered by (Hamming distance, then squared Euclidean distance of the
L2-normalised features, then id). The re-ranking is exact: every item whose Hamming distance
equals the k-th distance competes, not only those a top-k search returned. The feature distance
is ``((x / ||x|| - q / ||q||) ** 2).sum()`` computed in the features' dtype (float32 features
rank fastest: the three keys then pack into one integer per item).

When ``k`` exceeds the number of database items, rows are padded as faiss pads them: id ``-1``
and distance ``np.iinfo(np.int32).max``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from ._io import load_state, save_state
from ._validation import check_embeddings, check_nonzero_rows, check_positive_int
from .codes import (
    _block_distances,
    _check_chunk_size,
    _check_codes,
    _check_n_bits,
    _iter_distance_blocks,
    _KernelScratch,
    _to_words,
)
from .exceptions import FileFormatError

__all__ = ["HammingIndex", "iter_rank_database", "rank_database"]

Backend = Literal["auto", "faiss", "numpy"]

#: Distance reported for padding entries (k > number of database items), as in faiss.
PAD_DISTANCE = int(np.iinfo(np.int32).max)
#: Id reported for padding entries, as in faiss.
PAD_ID = -1

_FILE_KIND = "HammingIndex"
_FILE_VERSION = 1
#: ``uint64`` elements of the scratch block of one scan step (2 MiB).
_SCAN_BLOCK_WORDS = 1 << 18
#: Candidates beyond ``4 * n_queries * k`` tolerated before dropping those that fell behind.
_PRUNE_SLACK = 1 << 16


# ----------------------------------------------------------------------------------------------
# The index


class HammingIndex:
    """Exact (brute-force) Hamming index over packed binary codes.

    Parameters
    ----------
    n_bits : int
        Bits per code. Codes are ``uint8`` arrays of shape ``(n, ceil(n_bits / 8))``, least
        significant bit first within a byte, padding bits 0 (see :func:`h2q.pack_bits`).
    backend : {"auto", "faiss", "numpy"}, default "auto"
        ``"faiss"`` searches with ``faiss.IndexBinaryFlat`` (the optional ``faiss`` extra);
        ``"numpy"`` with a chunked numpy popcount scan; ``"auto"`` uses faiss when it can be
        imported. Both return identical results (see the module notes for the tie rule).
        Re-ranking by features always uses the numpy scan, which sees every tie.

    Attributes
    ----------
    n_bits : int
    backend : str
        The backend in use, ``"faiss"`` or ``"numpy"``.
    code_size : int
        Bytes per code, ``ceil(n_bits / 8)``.
    ntotal : int
        Number of indexed codes.

    Examples
    --------
    >>> index = HammingIndex(64)
    >>> index.add(db_codes)                     # doctest: +SKIP
    >>> D, I = index.search(query_codes, k=100)  # doctest: +SKIP
    """

    def __init__(self, n_bits: int, backend: Backend = "auto") -> None:
        self.n_bits = _check_n_bits(n_bits)
        self._requested_backend = backend
        self.backend = _resolve_backend(backend)
        self.code_size = (self.n_bits + 7) // 8
        self.reset()

    def __repr__(self) -> str:
        features = "" if self._n_features is None else f", features={self._n_features}"
        return (
            f"HammingIndex(n_bits={self.n_bits}, backend={self.backend!r}, "
            f"ntotal={self.ntotal}{features})"
        )

    @property
    def ntotal(self) -> int:
        """Number of indexed codes."""
        return self._ntotal

    @property
    def has_features(self) -> bool:
        """Whether features were added with the codes (so that searches can re-rank)."""
        return self._n_features is not None

    def reset(self) -> None:
        """Remove every indexed code (and feature)."""
        self._code_chunks: list[np.ndarray] = []
        self._feature_chunks: list[np.ndarray] = []
        self._n_features: int | None = None
        self._feature_dtype: np.dtype | None = None
        self._ntotal = 0
        self._faiss_index: Any = None
        self._scan: _Scan | None = None

    def add(self, codes: Any, features: Any = None) -> None:
        """Append codes (and optionally their continuous features) to the index.

        Ids are assigned in order: the i-th added code gets id ``ntotal + i``.

        Parameters
        ----------
        codes : numpy.ndarray of shape (n, code_size), dtype uint8
            Packed codes of ``n_bits`` bits, padding bits 0.
        features : numpy.ndarray or torch.Tensor of shape (n, n_features), optional
            Continuous features of the same items (for example the rotated embeddings), used
            to re-rank Hamming ties. They are stored L2-normalised, in their float dtype
            (that of the first call). Give them in every call to ``add`` or in none.

        Raises
        ------
        TypeError, ValueError
            On codes of the wrong dtype, shape or width, non-zero padding bits, empty input,
            or features of the wrong shape, with NaN/inf or with all-zero rows.
        """
        codes = _check_codes(codes, "codes", n_bits=self.n_bits)
        if features is None:
            if self._n_features is not None:
                raise ValueError(
                    "this index holds features (given to an earlier add), but none were given "
                    "now. Pass features for these codes too, or reset() the index."
                )
        else:
            if self._ntotal and self._n_features is None:
                raise ValueError(
                    "features were given, but earlier codes were added without them, so ties "
                    "could not be re-ranked for those. Add all codes with features (reset() "
                    "first), or leave them out."
                )
            features = _normalised_features(
                features, "features", len(codes), self._n_features, self._feature_dtype
            )
            self._n_features = features.shape[1]
            self._feature_dtype = features.dtype
            self._feature_chunks.append(features)
        if self.backend == "faiss":
            if self._faiss_index is None:
                self._faiss_index = _new_faiss_index(self.code_size)
            self._faiss_index.add(codes)
        self._code_chunks.append(codes.copy())
        self._ntotal += len(codes)
        self._scan = None

    def search(
        self, query_codes: Any, k: int, query_features: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest codes of each query in Hamming distance.

        Parameters
        ----------
        query_codes : numpy.ndarray of shape (n_queries, code_size), dtype uint8
            Packed query codes of ``n_bits`` bits.
        k : int
            Number of neighbours, >= 1. When ``k > ntotal`` the rows are padded with id -1
            and distance ``np.iinfo(np.int32).max`` (as faiss does).
        query_features : numpy.ndarray or torch.Tensor of shape (n_queries, n_features), optional
            Continuous features of the queries. When given (the index must hold features),
            ties in Hamming distance are re-ranked exactly by the squared Euclidean distance of
            the L2-normalised features, then by id. Without them, ties go by id.

        Returns
        -------
        D : numpy.ndarray of shape (n_queries, k), dtype int32
            Hamming distances, non-decreasing along each row.
        I : numpy.ndarray of shape (n_queries, k), dtype int64
            Database ids, in ranking order (see the module notes).

        Raises
        ------
        TypeError, ValueError
            On bad codes, ``k < 1``, an empty index, or bad or unexpected features.
        """
        query_codes = _check_codes(query_codes, "query_codes", n_bits=self.n_bits)
        k = check_positive_int(k, "k")
        if self._ntotal == 0:
            raise ValueError("the index is empty: add() codes before searching.")
        if query_features is not None:
            if self._n_features is None:
                raise ValueError(
                    "query_features were given, but the index holds no features to compare "
                    "them with. Pass features to add(), or search without query_features."
                )
            query_features = _normalised_features(
                query_features,
                "query_features",
                len(query_codes),
                self._n_features,
                self._feature_dtype,
            )
            return self._get_scan().topk(query_codes, k, query_features)
        if self.backend == "faiss":
            D, I = self._faiss_index.search(query_codes, k)
            bad = _misordered_rows(D, I)
            if bad.size:  # never seen with faiss <= 1.15; kept as a cheap guarantee
                D[bad], I[bad] = self._get_scan().topk(query_codes[bad], k, None)
            return D, I
        return self._get_scan().topk(query_codes, k, None)

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to ``path`` (an ``.npz`` archive, written atomically).

        The codes, the normalised features (if any), ``n_bits`` and the backend setting are
        stored; a faiss index is rebuilt on load.
        """
        arrays: dict[str, np.ndarray] = {"codes": self._codes()}
        if self._n_features is not None:
            arrays["features"] = self._features()
        meta = {
            "n_bits": self.n_bits,
            "backend": self._requested_backend,
            "n_features": self._n_features,
            "ntotal": self._ntotal,
        }
        save_state(path, _FILE_KIND, _FILE_VERSION, arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, backend: Backend | None = None) -> HammingIndex:
        """Read an index written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
        backend : {"auto", "faiss", "numpy"}, optional
            Overrides the stored backend setting.

        Raises
        ------
        FileNotFoundError
            When ``path`` does not exist.
        FileFormatError
            When the file is truncated, corrupted, of another kind or version, or its
            contents are inconsistent.
        """
        try:
            arrays, meta = load_state(path, _FILE_KIND, _FILE_VERSION)
        except NotImplementedError as exc:
            # zipfile raises this when a corrupted header names an unknown compression
            # method, zip version or flag.
            raise FileFormatError(
                f"{path} is truncated or corrupted and cannot be read (NotImplementedError: "
                f"{exc}). Re-create it with HammingIndex.save()."
            ) from exc
        try:
            n_bits = _check_n_bits(meta["n_bits"])
            codes = arrays["codes"]
            features = arrays.get("features")
            n_features = meta["n_features"]
            ok = (
                codes.dtype == np.uint8
                and codes.ndim == 2
                and codes.shape[1] == (n_bits + 7) // 8
                and codes.shape[0] == meta["ntotal"]
                and (features is None) == (n_features is None)
                and (
                    features is None
                    or (
                        features.ndim == 2
                        and features.dtype in (np.float32, np.float64)
                        and features.shape == (codes.shape[0], n_features)
                    )
                )
            )
            stored_backend = meta["backend"]
        except (KeyError, TypeError, ValueError) as exc:
            raise FileFormatError(
                f"{path} is not a valid HammingIndex file ({type(exc).__name__}: {exc}). "
                "Re-create it with HammingIndex.save()."
            ) from exc
        if not ok:
            raise FileFormatError(
                f"{path} holds inconsistent HammingIndex data (codes {codes.dtype} "
                f"{codes.shape}, n_bits {n_bits}). Re-create it with HammingIndex.save()."
            )
        index = cls(n_bits, backend=stored_backend if backend is None else backend)
        if len(codes):
            # Stored features are already normalised; they are checked and normalised again,
            # which leaves unit vectors unchanged up to rounding, so add them directly.
            codes = _check_codes(codes, "codes", n_bits=n_bits)
            if index.backend == "faiss":
                index._faiss_index = _new_faiss_index(index.code_size)
                index._faiss_index.add(codes)
            index._code_chunks = [codes]
            if features is not None:
                index._feature_chunks = [np.ascontiguousarray(features)]
                index._n_features = int(n_features)
                index._feature_dtype = features.dtype
            index._ntotal = len(codes)
        return index

    # -- internals ---------------------------------------------------------------------------

    def _codes(self) -> np.ndarray:
        if len(self._code_chunks) != 1:
            joined = (
                np.concatenate(self._code_chunks)
                if self._code_chunks
                else np.zeros((0, self.code_size), dtype=np.uint8)
            )
            self._code_chunks = [joined] if self._code_chunks else []
            return joined
        return self._code_chunks[0]

    def _features(self) -> np.ndarray | None:
        if self._n_features is None:
            return None
        if len(self._feature_chunks) != 1:
            self._feature_chunks = [np.concatenate(self._feature_chunks)]
        return self._feature_chunks[0]

    def _get_scan(self) -> _Scan:
        if self._scan is None:
            self._scan = _Scan(self._codes(), self.n_bits, self._features())
        return self._scan


# ----------------------------------------------------------------------------------------------
# Ranking a database without an index


def rank_database(
    query_codes: Any,
    db_codes: Any,
    k: int | None = None,
    *,
    query_features: Any = None,
    db_features: Any = None,
    return_distances: bool = False,
    chunk_size: int | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Rank database items for each query: the top ``k``, or the whole database.

    The order is the module's ranking rule: Hamming distance, then (when features are
    given) the squared Euclidean distance of the L2-normalised features, then database id.
    The scan is exact and identical to :meth:`HammingIndex.search`; queries are processed
    ``chunk_size`` at a time so that scratch memory stays bounded (the output itself is
    ``8 * n_queries * k`` bytes; see :func:`iter_rank_database` to consume it in chunks).

    Parameters
    ----------
    query_codes : numpy.ndarray of shape (n_queries, n_bytes), dtype uint8
    db_codes : numpy.ndarray of shape (n_db, n_bytes), dtype uint8
        Packed codes of the same width (padding bits, if any, must be 0 in both).
    k : int, optional
        Length of each ranking; None ranks the whole database (``k = n_db``). When
        ``k > n_db`` rows are padded with id -1 (and distance ``np.iinfo(np.int32).max``).
    query_features : numpy.ndarray or torch.Tensor of shape (n_queries, n_features), optional
    db_features : numpy.ndarray or torch.Tensor of shape (n_db, n_features), optional
        Continuous features for the exact tie re-ranking; give both or neither.
    return_distances : bool, default False
        Also return the Hamming distances.
    chunk_size : int, optional
        Queries per chunk; by default chosen from the database size.

    Returns
    -------
    I : numpy.ndarray of shape (n_queries, k), dtype int64
        Database ids in ranking order.
    D : numpy.ndarray of shape (n_queries, k), dtype int32
        Hamming distances; returned first, as ``(D, I)``, when ``return_distances``.
    """
    parts = list(
        iter_rank_database(
            query_codes,
            db_codes,
            k,
            query_features=query_features,
            db_features=db_features,
            chunk_size=chunk_size,
        )
    )
    D = np.concatenate([p[1] for p in parts])
    I = np.concatenate([p[2] for p in parts])
    return (D, I) if return_distances else I


def iter_rank_database(
    query_codes: Any,
    db_codes: Any,
    k: int | None = None,
    *,
    query_features: Any = None,
    db_features: Any = None,
    chunk_size: int | None = None,
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Like :func:`rank_database`, but yield the result one chunk of queries at a time.

    Yields
    ------
    queries : slice
        The query rows of this chunk.
    D : numpy.ndarray of shape (chunk, k), dtype int32
    I : numpy.ndarray of shape (chunk, k), dtype int64
    """
    query_codes = _check_codes(query_codes, "query_codes")
    db_codes = _check_codes(db_codes, "db_codes")
    if query_codes.shape[1] != db_codes.shape[1]:
        raise ValueError(
            f"query_codes have {query_codes.shape[1]} bytes per code but db_codes have "
            f"{db_codes.shape[1]}; ranking needs codes of the same bit length. Encode both "
            "with the same quantizer."
        )
    n_db = len(db_codes)
    k = n_db if k is None else check_positive_int(k, "k")
    chunk_size = _check_chunk_size(chunk_size)
    if (query_features is None) != (db_features is None):
        given, missing = (
            ("query_features", "db_features")
            if db_features is None
            else ("db_features", "query_features")
        )
        raise ValueError(
            f"{given} were given without {missing}; re-ranking needs features for both the "
            "queries and the database. Pass both, or neither."
        )
    scan_features = None
    if db_features is not None:
        scan_features = _normalised_features(db_features, "db_features", n_db, None, None)
        query_features = _normalised_features(
            query_features,
            "query_features",
            len(query_codes),
            scan_features.shape[1],
            scan_features.dtype,
        )
    scan = _Scan(db_codes, 8 * db_codes.shape[1], scan_features)
    yield from scan.iter_topk(query_codes, k, query_features, chunk_size)


# ----------------------------------------------------------------------------------------------
# The numpy scan


class _Scan:
    """Exact chunked numpy scan over a fixed database (internal).

    Holds the codes as word-major ``uint64`` words (shape ``(n_words, n_db)``, each word
    contiguous) and, optionally, the normalised features.
    """

    def __init__(self, codes: np.ndarray, n_bits: int, features: np.ndarray | None) -> None:
        self.n_db = len(codes)
        self.n_bits = n_bits
        self.words_t = np.ascontiguousarray(_to_words(codes).T)
        self.features = features
        # Distances fit in uint8 up to 254 bits; limits go up to n_bits + 1.
        self.dist_dtype = np.uint8 if n_bits <= 254 else np.uint16

    def topk(
        self, query_codes: np.ndarray, k: int, query_features: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        parts = list(self.iter_topk(query_codes, k, query_features, None))
        return np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])

    def iter_topk(
        self,
        query_codes: np.ndarray,
        k: int,
        query_features: np.ndarray | None,
        chunk_size: int | None,
    ) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
        q_words = _to_words(query_codes)
        n_q = len(q_words)
        if k >= self.n_db:
            yield from self._iter_full(q_words, k, query_features, chunk_size)
            return
        if chunk_size is None:
            chunk_size = max(8, min(256, _SCAN_BLOCK_WORDS // max(self.n_db, 1)))
        chunk_size = min(chunk_size, n_q)
        block = max(1024, _SCAN_BLOCK_WORDS // chunk_size)
        scratch = _KernelScratch(chunk_size, min(block, self.n_db), q_words.shape[1] > 1)
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
        buffers: tuple[np.ndarray, np.ndarray, _KernelScratch],
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
            _block_distances(q_words, self.words_t, b0, b1, dist, scratch)
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
        """Top k of each row by (distance, feature distance, id) among its candidates."""
        c = len(query_features)
        small = rows.astype(np.uint16) if c <= 1 << 16 else rows
        by_row = np.argsort(small, kind="stable")  # a radix sort for uint16
        rows, ids, dists = rows[by_row], ids[by_row], dists[by_row]
        bounds = np.searchsorted(rows, np.arange(c + 1))
        buffer = np.empty((int(np.diff(bounds).max()), self.features.shape[1]), self.features.dtype)
        D = np.full((c, k), PAD_DISTANCE, dtype=np.int32)
        I = np.full((c, k), PAD_ID, dtype=np.int64)
        for r in range(c):
            seg_ids, seg_dists = ids[bounds[r] : bounds[r + 1]], dists[bounds[r] : bounds[r + 1]]
            fd = _feature_distances(self.features, seg_ids, query_features[r], buffer)
            order = self._order(seg_dists, fd, seg_ids)[:k]
            D[r, : len(order)] = seg_dists[order]
            I[r, : len(order)] = seg_ids[order]
        return D, I

    def _order(self, dists: np.ndarray, fd: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Positions that sort items by (Hamming distance, feature distance, id)."""
        id_bits = max(1, (self.n_db - 1).bit_length())
        if fd.dtype == np.float32 and self.n_bits.bit_length() + 31 + id_bits <= 63:
            # Non-negative float32 values order like their bit patterns (31 bits, sign 0), so
            # the three keys pack into one unique int64, and a plain (unstable, fast) sort
            # gives the exact lexicographic order.
            key = dists.astype(np.int64) << (31 + id_bits)
            key |= fd.view(np.uint32).astype(np.int64) << id_bits
            key |= ids
            return np.argsort(key)
        return np.lexsort((ids, fd, dists))

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
        for start, stop, dist in _iter_distance_blocks(
            q_words, self.words_t, chunk_size, self.dist_dtype
        ):
            c = stop - start
            D = np.full((c, k), PAD_DISTANCE, dtype=np.int32)
            I = np.full((c, k), PAD_ID, dtype=np.int64)
            if query_features is None:
                # Stable sort: equal distances keep increasing ids (a radix sort for uint8).
                order = np.argsort(dist, axis=1, kind="stable")
            else:
                order = np.empty((c, n), dtype=np.int64)
                buffer = np.empty_like(self.features)
                all_ids = np.arange(n)
                for r in range(c):
                    fd = _feature_distances(self.features, None, query_features[start + r], buffer)
                    order[r] = self._order(dist[r], fd, all_ids)
            I[:, :n] = order
            D[:, :n] = np.take_along_axis(dist, order, axis=1)
            yield slice(start, stop), D, I


def _prune(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], tau: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, ids, dists = (np.concatenate(x) for x in zip(*parts, strict=True))
    # Items beyond the current k-th distance can no longer enter the top k. (Items at the
    # k-th distance are kept in both modes: without ties, the earliest of them still count.)
    keep = dists <= tau[rows]
    return rows[keep], ids[keep], dists[keep]


def _feature_distances(
    db_features: np.ndarray, ids: np.ndarray | None, query: np.ndarray, buffer: np.ndarray
) -> np.ndarray:
    """``((db_features[ids] - query) ** 2).sum(axis=1)`` (all rows when ``ids`` is None).

    Every caller goes through here, so each row gets the same arithmetic whichever path
    ranks it. ``buffer`` (at least ``len(ids)`` rows) avoids a fresh allocation per query;
    the in-place steps are several times faster than the plain expression.
    """
    if ids is None:
        diff = np.subtract(db_features, query, out=buffer[: len(db_features)])
    else:
        diff = np.take(db_features, ids, axis=0, out=buffer[: len(ids)])
        np.subtract(diff, query, out=diff)
    np.square(diff, out=diff)
    return diff.sum(axis=1)


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


# ----------------------------------------------------------------------------------------------
# Helpers


def _misordered_rows(D: np.ndarray, I: np.ndarray) -> np.ndarray:
    """Rows of a faiss result not sorted by (distance, id) (padding entries excepted)."""
    if D.shape[1] < 2:
        return np.zeros(0, dtype=np.int64)
    dD = np.diff(D, axis=1)
    dI = np.diff(I, axis=1)
    ok = (dD > 0) | ((dD == 0) & (dI > 0)) | (I[:, 1:] == PAD_ID)
    return np.flatnonzero(~ok.all(axis=1))


def _normalised_features(
    features: Any,
    name: str,
    n_rows: int,
    n_features: int | None,
    dtype: np.dtype | None,
) -> np.ndarray:
    """Validate features and return them L2-normalised, C-contiguous, in ``dtype``."""
    X = check_embeddings(features, name, allow_torch=False)
    if len(X) != n_rows:
        raise ValueError(
            f"{name} has {len(X)} rows, but there are {n_rows} codes; pass one feature row "
            "per code, in the same order."
        )
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but the database features have {n_features}. "
            "Pass features from the same model (and rotation) for queries and database."
        )
    check_nonzero_rows(X, name)
    if dtype is not None and X.dtype != dtype:
        X = X.astype(dtype)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.ascontiguousarray(X / norms)


def _faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _resolve_backend(backend: Any) -> str:
    if backend == "auto":
        return "faiss" if _faiss_available() else "numpy"
    if backend == "numpy":
        return "numpy"
    if backend == "faiss":
        if not _faiss_available():
            raise ImportError(
                "backend='faiss' needs the faiss package, which is not installed. Install the "
                "extra (pip install 'h2q[faiss]'), or use backend='numpy' or 'auto'."
            )
        return "faiss"
    raise ValueError(f"backend must be 'auto', 'faiss' or 'numpy', got {backend!r}.")


def _new_faiss_index(code_size: int) -> Any:
    import faiss

    # faiss needs a whole number of bytes; padding bits are 0 in every code, so searching
    # 8 * code_size bits gives the same distances as searching n_bits.
    index = faiss.IndexBinaryFlat(8 * code_size)
    index.use_heap = True  # the exact heap path, whose tie order is documented above
    return index
