"""Asymmetric scoring: float queries against binary (or few-bit) codes, RaBitQ's estimator.

Each item is stored as its code (``bits_per_dim`` bits per rotated dimension, relative to the
nearest of ``n_centroids`` centroids) plus two half-float factors; a query stays a float vector,
quantized to ``query_bits`` bits per dimension for speed, and each item's inner product or
squared L2 distance to it is estimated without bias (see :mod:`h2q.search._rabitq` for the
equations). The first bit plane of every code is the item's sign code, so a Hamming scan
(flat or multi-index hashing) can pick candidates for the estimator (``candidates=C``), and
kept float vectors can re-rank the estimator's top ``R`` exactly (``rescore=R``).

When ``k`` exceeds the number of items, rows are padded as faiss pads them: id -1 and score
``-inf`` (``metric="ip"``) or ``+inf`` (``metric="l2"``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .. import _io
from .._validation import check_embeddings, check_positive_int
from ..exceptions import FileFormatError
from . import _rabitq
from ._pad import PAD_ID
from .base import BaseIndex
from .rescore import rescore as rescore_ids

__all__ = ["AsymmetricIndex"]

_FILE_KIND = "AsymmetricIndex"
_FILE_VERSION = 1
#: Floats of the per-centroid query work held at once (rows x centroids x dims).
_QUERY_FLOATS = 1 << 23
_ROUNDINGS = ("deterministic", "random")


class AsymmetricIndex(BaseIndex):
    """Exact scan of RaBitQ estimates: float queries scored against compact codes.

    Parameters
    ----------
    quantizer : BaseQuantizer
        A fitted h2q quantizer (:class:`~h2q.HouseholderQuantizer`, :class:`~h2q.ITQQuantizer`,
        :class:`~h2q.SignQuantizer`, :class:`~h2q.quantizers.RandomRotationQuantizer`): its
        centring, PCA and rotation map rows into the code space (its rescaling is not used).
        RaBitQ's analysis assumes a random rotation; learned ones work as well in practice.
    metric : {"ip", "l2"}, default "ip"
        Estimate the inner product (larger first) or the squared L2 distance (smaller first).
    query_bits : int, default 4
        Bits per dimension of the quantized query (1 to 8; 4 or 8 are the usual choices).
    bits_per_dim : int, default 1
        Bits per dimension of the item codes (1 to 8): 1 is the sign code, more bits pick the
        nearest point of a finer grid (extended RaBitQ) at ``bits_per_dim`` times the memory.
    keep_vectors : bool or path, default False
        Keep the float rows for ``search(..., rescore=R)``: ``True`` in memory, a path to
        keep them in that ``.npy`` file, memory-mapped (rewritten at each ``add``).
    n_centroids : int, default 64
        Codes are taken relative to the nearest of this many k-means centroids (1: the mean),
        fitted on the first ``add`` (give it a representative batch, at least a few hundred
        rows per centroid); the estimator's error scales with the item's and the query's
        distances to the centroid. At most 256. Above 1 each item costs one more byte (its
        centroid's id); 64 is the measured default (``benchmarks/results/bench_asymmetric.md``),
        1 the most compact.
    query_rounding : {"deterministic", "random"}, default "deterministic"
        Round the scaled query to the nearest level, or at random (unbiased, as the paper).
    seed : int, default 0
        Seed of k-means and of random rounding.

    Attributes
    ----------
    ntotal : int
    n_bits : int
        Dimensions of the code space (the quantizer's ``n_bits_``).

    Examples
    --------
    >>> q = h2q.quantizers.RandomRotationQuantizer().fit(X)   # doctest: +SKIP
    >>> index = h2q.AsymmetricIndex(q, metric="ip", keep_vectors=True)  # doctest: +SKIP
    >>> index.add(X)                                           # doctest: +SKIP
    >>> scores, ids = index.search(Xq, k=10, rescore=50)       # doctest: +SKIP
    """

    scoring = "asymmetric"

    def __init__(
        self,
        quantizer: Any,
        metric: Literal["ip", "l2"] = "ip",
        query_bits: int = 4,
        bits_per_dim: int = 1,
        keep_vectors: bool | str | os.PathLike = False,
        *,
        n_centroids: int = 64,
        query_rounding: str = "deterministic",
        seed: int = 0,
    ) -> None:
        self.quantizer = quantizer
        self._mean, self._M = _rabitq.linear_map(quantizer)
        self.n_features = int(self._M.shape[1])
        self.n_bits = int(self._M.shape[0])
        if metric not in ("ip", "l2"):
            raise ValueError(f"metric must be 'ip' or 'l2', got {metric!r}.")
        self.metric = metric
        self.query_bits = _check_bits(query_bits, "query_bits")
        self.bits_per_dim = _check_bits(bits_per_dim, "bits_per_dim")
        self.n_centroids = check_positive_int(n_centroids, "n_centroids")
        if self.n_centroids > 256:
            raise ValueError(f"n_centroids must be at most 256, got {n_centroids}.")
        if query_rounding not in _ROUNDINGS:
            raise ValueError(
                f"query_rounding must be 'deterministic' or 'random', got {query_rounding!r}."
            )
        self.query_rounding = query_rounding
        self.seed = int(seed)
        if not isinstance(keep_vectors, (bool, str, os.PathLike)):
            raise ValueError("keep_vectors must be True, False or a path to a .npy file.")
        self.keep_vectors = keep_vectors
        self.reset()

    def __repr__(self) -> str:
        return (
            f"AsymmetricIndex(n_bits={self.n_bits}, metric={self.metric!r}, "
            f"query_bits={self.query_bits}, bits_per_dim={self.bits_per_dim}, "
            f"n_centroids={self.n_centroids}, ntotal={self.ntotal})"
        )

    @property
    def ntotal(self) -> int:
        """Number of indexed items."""
        return self._ntotal

    @property
    def has_vectors(self) -> bool:
        """Whether the float rows are kept (so that searches can rescore)."""
        return self.keep_vectors is not False

    def reset(self) -> None:
        """Remove every item (the centroids are fitted again by the next ``add``)."""
        self._centroids: np.ndarray | None = None
        self._chunks: list[tuple[np.ndarray, ...]] = []  # (planes, A16, B16, assign), by id
        self._layout: tuple[np.ndarray, ...] | None = None  # planes, A16, B16, assign, scales
        self._scales: np.ndarray | None = None
        self._vector_chunks: list[np.ndarray] = []
        self._vectors: np.ndarray | None = None
        self._ntotal = 0
        self._mih: Any = None

    # -- adding --------------------------------------------------------------------------

    def add(self, X: Any) -> None:
        """Encode float rows and append them; the i-th row gets id ``ntotal + i``.

        Parameters
        ----------
        X : array of shape (n, n_features), float
            Rows in the quantizer's input space (finite).
        """
        X = self._check_rows(X, "X")
        parts = [
            _rabitq.rotate(X[s : s + _rabitq.CHUNK_ROWS], self._mean, self._M)
            for s in range(0, len(X), _rabitq.CHUNK_ROWS)
        ]
        if self._centroids is None:
            Y0 = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
            self._centroids = _rabitq.fit_centroids(Y0, min(self.n_centroids, len(Y0)), self.seed)
        self._unfreeze()
        for Y, e, xm in parts:
            self._chunks.append(self._encode(Y, e, xm))
        if self.has_vectors:
            self._vector_chunks.append(X.astype(np.float32))
            self._store_vectors()
        self._ntotal += len(X)

    def _encode(self, Y: np.ndarray, e: np.ndarray, xm: np.ndarray) -> tuple[np.ndarray, ...]:
        C = self._centroids
        assign = _rabitq.nearest(Y, C)
        R = Y - C[assign]
        u = _rabitq.item_codes(R, self.bits_per_dim)
        A, B = _rabitq.item_factors(R, u, self.bits_per_dim, self.metric, C[assign], e, xm)
        if self._scales is None:
            self._scales = np.array([_rabitq.half_scale(A), _rabitq.half_scale(B)], np.float32)
        A16 = _rabitq.to_half(A, float(self._scales[0]), "A")
        B16 = _rabitq.to_half(B, float(self._scales[1]), "B")
        return _rabitq.pack_planes(u, self.bits_per_dim), A16, B16, assign.astype(np.uint8)

    def _store_vectors(self) -> None:
        X = np.concatenate(
            ([] if self._vectors is None else [np.asarray(self._vectors)]) + self._vector_chunks
        )
        self._vector_chunks = []
        if self.keep_vectors is True:
            self._vectors = X
            return
        path = Path(self.keep_vectors)
        self._vectors = None  # release the old map before its file is replaced
        _io.save_npy(path, X)
        self._vectors = np.load(path, mmap_mode="r")

    # -- searching ------------------------------------------------------------------------

    def search(
        self,
        Xq: Any,
        k: int,
        rescore: int | None = None,
        candidates: int | None = None,
        *,
        candidate_index: Literal["flat", "mih"] = "flat",
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items of each float query by the estimated score.

        Parameters
        ----------
        Xq : array of shape (n_queries, n_features), float
        k : int
            Results per query, >= 1 (rows are padded when ``k > ntotal``, see the module notes).
        rescore : int, optional
            Re-rank the estimator's top ``rescore`` (>= k) by the exact score with the kept
            float vectors (``keep_vectors``); the scores returned are then exact.
        candidates : int, optional
            Score only the Hamming top ``candidates`` (>= k, and >= ``rescore``) of the sign
            codes (the first bit plane), found by ``candidate_index``.
        candidate_index : {"flat", "mih"}, default "flat"
            The flat scan or multi-index hashing (same candidates; MIH is sub-linear on
            clustered codes).

        Returns
        -------
        scores : numpy.ndarray of shape (n_queries, k), float32
            Estimated (or, with ``rescore``, exact) inner products, non-increasing, or squared
            L2 distances, non-decreasing.
        ids : numpy.ndarray of shape (n_queries, k), int64
        """
        Xq = self._check_rows(Xq, "Xq")
        k = check_positive_int(k, "k")
        if self._ntotal == 0:
            raise ValueError("the index is empty: add() rows before searching.")
        depth = self._check_depths(k, rescore, candidates, candidate_index)
        keys = np.empty((len(Xq), depth), dtype=np.float32)
        ids = np.empty((len(Xq), depth), dtype=np.int64)
        step = max(1, _QUERY_FLOATS // (len(self._centroids) * self.n_bits))
        for s in range(0, len(Xq), step):
            rows = slice(s, min(s + step, len(Xq)))
            keys[rows], ids[rows] = self._search_block(Xq[rows], depth, candidates, candidate_index)
        if rescore is not None:
            S, I = rescore_ids(ids, Xq, self._vectors, k, self.metric)
            return S.astype(np.float32), I
        return (-keys if self.metric == "ip" else keys)[:, :k], ids[:, :k]

    def _check_depths(self, k, rescore, candidates, candidate_index) -> int:
        depth = k
        if rescore is not None:
            rescore = check_positive_int(rescore, "rescore")
            if not self.has_vectors:
                raise ValueError(
                    "rescore needs the float vectors: build the index with keep_vectors=True "
                    "(or a path), or search without rescore."
                )
            if rescore < k:
                raise ValueError(f"rescore={rescore} is smaller than k={k}; pass rescore >= k.")
            depth = rescore
        if candidates is not None:
            candidates = check_positive_int(candidates, "candidates")
            if candidates < depth:
                raise ValueError(
                    f"candidates={candidates} is smaller than {depth} (k, or rescore); pass "
                    f"candidates >= {depth}."
                )
            if candidate_index not in ("flat", "mih"):
                raise ValueError(
                    f"candidate_index must be 'flat' or 'mih', got {candidate_index!r}."
                )
        return depth

    def _search_block(self, Xq, depth, candidates, candidate_index):
        from . import _asym_kernels

        layout = self._get_layout()
        q_planes, q_par, off = self._quantize(Xq)
        h = ((1 << self.bits_per_dim) - 1) / 2.0
        if candidates is None:
            return _asym_kernels.topk(layout, q_planes, q_par, off, h, depth)
        pos = self._hamming_candidates(Xq, candidates, candidate_index)
        all_keys = _asym_kernels.keys_at(layout, q_planes, q_par, off, h, pos)
        order = np.argsort(all_keys, axis=1, kind="stable")[:, :depth]
        keys = np.take_along_axis(all_keys, order, axis=1).astype(np.float32)
        pos = np.take_along_axis(pos, order, axis=1)
        if depth > pos.shape[1]:
            pad = depth - pos.shape[1]
            keys = np.pad(keys, ((0, 0), (0, pad)), constant_values=np.inf)
            pos = np.pad(pos, ((0, 0), (0, pad)), constant_values=PAD_ID)
        return keys, pos

    def _quantize(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Query bit planes (n_q, qb, n_words), ``(delta, lo, sum)`` (n_q, 3), offsets (n_q, c)."""
        Yq, e_q, xqm = _rabitq.rotate(Xq, self._mean, self._M)
        if self._mean is not None:
            xqm = xqm + float(self._mean @ self._mean)  # <x_q, m> = <x_q - m, m> + |m|^2
        rng = np.random.default_rng(self.seed)
        zero = np.zeros((1, self.n_bits))
        planes, par = _rabitq.query_planes(Yq, zero, self.query_bits, self.query_rounding, rng)
        off = _rabitq.query_constants(Yq, self._centroids, e_q, xqm, self.metric)
        off32 = np.ascontiguousarray(off, dtype=np.float32)
        return planes[:, 0], np.ascontiguousarray(par[:, 0]), off32

    def _hamming_candidates(self, Xq, candidates, candidate_index) -> np.ndarray:
        """Storage positions of the Hamming top ``candidates`` by the sign codes, -1 padded."""
        from .._popcount import to_words

        Yq = _rabitq.rotate(Xq, self._mean, self._M)[0]
        C = self._centroids
        R = Yq - C[_rabitq.nearest(Yq, C)]
        q_codes = np.packbits((R >= 0).astype(np.uint8), axis=1, bitorder="little")
        planes = self._get_layout()[0]
        if candidate_index == "mih":
            if self._mih is None:
                from .mih import MultiIndexHammingIndex

                self._mih = MultiIndexHammingIndex(self.n_bits)
                self._mih.add(self._sign_codes(planes))
            return self._mih.search(q_codes, candidates)[1]
        from ._jit import numba_available

        if numba_available():
            from . import _kernels

            return _kernels.topk(planes[0], to_words(q_codes), candidates, self.n_bits)[1]
        from .flat import HammingIndex

        flat = HammingIndex(self.n_bits, backend="numpy")
        flat.add(self._sign_codes(planes))
        return flat.search(q_codes, candidates)[1]

    def _sign_codes(self, planes: np.ndarray) -> np.ndarray:
        """The first bit plane as packed uint8 codes, shape (n, ceil(n_bits / 8))."""
        code_size = (self.n_bits + 7) // 8
        as_bytes = np.ascontiguousarray(planes[0].T).view(np.uint8)
        return np.ascontiguousarray(as_bytes[:, :code_size])

    # -- layout ---------------------------------------------------------------------------

    def _get_layout(self) -> tuple[np.ndarray, ...]:
        """Items by id: bit planes, half-float factors A and B, centroid ids, factor scales."""
        if self._layout is None:
            parts = [np.concatenate([c[0] for c in self._chunks], axis=2)]
            parts += [np.concatenate([c[i] for c in self._chunks]) for i in (1, 2, 3)]
            self._layout = (np.ascontiguousarray(parts[0]), *parts[1:], self._scales)
            self._chunks = []
        return self._layout

    def _unfreeze(self) -> None:
        """Turn the scan layout back into one chunk (before an ``add``)."""
        self._mih = None
        if self._layout is not None:
            self._chunks = [self._layout[:4]]
            self._layout = None

    def memory_bytes(self) -> int:
        """Bytes held in memory: codes, factors, scan order, centroids, map, kept vectors.

        Vectors kept in a file (memory-mapped) are not counted.
        """
        if self._ntotal:
            planes, A16, B16, assign, _ = self._get_layout()
            total = planes.nbytes + A16.nbytes + B16.nbytes
            total += assign.nbytes if self.n_centroids > 1 else 0
        else:
            total = 0
        total += self._M.nbytes + (0 if self._centroids is None else self._centroids.nbytes)
        if self.keep_vectors is True and self._vectors is not None:
            total += self._vectors.nbytes
        if self._mih is not None:
            total += self._mih.memory_bytes()
        return int(total)

    def bytes_per_item(self) -> float:
        """Code and factor bytes per item (and its centroid id when ``n_centroids > 1``)."""
        per = self.bits_per_dim * 8 * ((self.n_bits + 63) // 64) + 4
        return float(per + (1 if self.n_centroids > 1 else 0))

    # -- checks -----------------------------------------------------------------------------

    def _check_rows(self, X: Any, name: str) -> np.ndarray:
        X = check_embeddings(X, name, allow_torch=False)
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"{name} has {X.shape[1]} features, but the quantizer takes {self.n_features}; "
                "pass rows from the embedding model the quantizer was fitted on."
            )
        return X

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the index (quantizer included) to an ``.npz`` file, atomically.

        Vectors kept in memory are stored too; vectors kept in a file are referenced by path.
        """
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {
            "metric": self.metric,
            "query_bits": self.query_bits,
            "bits_per_dim": self.bits_per_dim,
            "n_centroids": self.n_centroids,
            "query_rounding": self.query_rounding,
            "seed": self.seed,
            "ntotal": self._ntotal,
            "keep_vectors": self.keep_vectors
            if isinstance(self.keep_vectors, bool)
            else str(Path(self.keep_vectors).resolve()),
        }
        meta.update(_quantizer_state(self.quantizer, arrays))
        if self._ntotal:
            planes, A16, B16, assign, scales = self._get_layout()
            arrays.update(planes=planes, A=A16, B=B16, assign=assign, scales=scales)
            arrays["centroids"] = self._centroids
            if self.keep_vectors is True:
                arrays["vectors"] = np.asarray(self._vectors)
        _io.save_state(path, _FILE_KIND, _FILE_VERSION, arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> AsymmetricIndex:
        """Read an index written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            When ``path`` does not exist.
        FileFormatError
            When the file is truncated, corrupted, of another kind or version, or inconsistent.
        """
        try:
            arrays, meta = _io.load_state(path, _FILE_KIND, _FILE_VERSION)
        except NotImplementedError as exc:
            raise FileFormatError(
                f"{path} is truncated or corrupted and cannot be read ({exc}). Re-create it "
                "with AsymmetricIndex.save()."
            ) from exc
        try:
            return cls._from_state(arrays, meta)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise FileFormatError(
                f"{path} is not a valid AsymmetricIndex file ({type(exc).__name__}: {exc}). "
                "Re-create it with AsymmetricIndex.save()."
            ) from exc

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> AsymmetricIndex:
        quantizer = _quantizer_from_state(arrays, meta)
        keep = meta["keep_vectors"]
        index = cls(
            quantizer,
            meta["metric"],
            meta["query_bits"],
            meta["bits_per_dim"],
            keep_vectors=keep,
            n_centroids=meta["n_centroids"],
            query_rounding=meta["query_rounding"],
            seed=meta["seed"],
        )
        n = int(meta["ntotal"])
        if n == 0:
            return index
        planes, A16, B16, assign = arrays["planes"], arrays["A"], arrays["B"], arrays["assign"]
        centroids, scales = arrays["centroids"], arrays["scales"]
        n_words = (index.n_bits + 63) // 64
        ok = (
            planes.dtype == np.uint64
            and planes.shape == (index.bits_per_dim, n_words, n)
            and A16.shape == B16.shape == assign.shape == (n,)
            and A16.dtype == B16.dtype == np.uint16
            and assign.dtype == np.uint8
            and centroids.shape[1:] == (index.n_bits,)
            and int(assign.max()) < len(centroids)
            and scales.shape == (2,)
        )
        if not ok:
            raise ValueError(f"arrays of inconsistent shapes for {n} items")
        index._centroids, index._scales = centroids, scales
        index._layout = (planes, A16, B16, assign, scales)
        index._ntotal = n
        if keep is True:
            index._vectors = arrays["vectors"]
        elif keep is not False:
            index._vectors = np.load(keep, mmap_mode="r")
        return index


def _check_bits(value: Any, name: str) -> int:
    value = check_positive_int(value, name)
    if value > 8:
        raise ValueError(f"{name} must be between 1 and 8, got {value}; 4 or 8 are usual.")
    return value


def _quantizer_state(quantizer: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Store a fitted h2q quantizer's arrays (prefixed) in ``arrays``; return its meta."""
    from ..quantizers.base import BaseQuantizer

    if not isinstance(quantizer, BaseQuantizer):
        raise ValueError(
            f"only h2q quantizers can be saved with the index, got {type(quantizer).__name__}."
        )
    for name in ("rotation_", "mean_", "components_", *quantizer._fitted_arrays):
        value = getattr(quantizer, name, None)
        if value is not None:
            arrays[f"quantizer.{name}"] = np.asarray(value)
    fitted = ("n_features_in_", "n_bits_", *quantizer._fitted_scalars)
    return {
        "quantizer": type(quantizer).__name__,
        "quantizer_params": quantizer.get_params(),
        "quantizer_fitted": {n: getattr(quantizer, n) for n in fitted},
    }


def _quantizer_from_state(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Any:
    from ..quantizers.registry import quantizer_class_for_kind

    cls = quantizer_class_for_kind(meta["quantizer"])
    if cls is None:
        raise ValueError(f"unknown quantizer class {meta['quantizer']!r}")
    q_arrays = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("quantizer.")}
    return cls._from_state(
        q_arrays, {"params": meta["quantizer_params"], "fitted": meta["quantizer_fitted"]}
    )
